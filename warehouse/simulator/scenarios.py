"""The plan: who joins when, who travels, the spike day, super-fan release days, and which user
gets which anomaly on which local day.

The plan is computed once from the seed over the whole configured period and never depends on
the window being generated. Day indices are relative to ``config.start_date``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

import numpy as np
import pyarrow as pa

from warehouse.contract import ANOMALY_LABEL_SCHEMA, BENIGN_LABEL_SCHEMA
from warehouse.simulator.config import SimulationConfig
from warehouse.simulator.population import (
    _PLAN,
    Catalogue,
    Population,
    build_catalogue,
    build_population,
    rng_for,
    tz_offsets,
)

NO_ANOMALY = -1


@dataclass
class Plan:
    config: SimulationConfig
    pop: Population
    cat: Catalogue
    join_day: np.ndarray  # 0 for users present from the start
    drift_rate: np.ndarray  # favourite-rank shift per day (0 for non-drifters)
    holiday_day: int
    holiday_mult: np.ndarray  # 1.0 for non-participants
    superfan_day: np.ndarray  # -1 when none
    superfan_mult: np.ndarray
    travel_start: np.ndarray  # -1 when none
    travel_len: np.ndarray
    travel_dest: np.ndarray  # index into config.travel_destinations
    bot_hour: np.ndarray
    bot_albums: np.ndarray  # (n, bot_albums) album-block artist indices
    farm_pool: np.ndarray
    pool_tracks: np.ndarray  # (n_pools, max_pool_size) global track indices
    pool_size: np.ndarray
    pool_platform: np.ndarray
    dst_day: np.ndarray  # (n_tz, n_days) bool: offset changes during that local day
    anomaly: np.ndarray  # (n, n_days) int8 index into config.anomaly_types, -1 none

    def exists(self, day: int) -> np.ndarray:
        """Users who have an account on relative day ``day`` (days before the period: original users)."""
        return self.join_day <= max(day, 0) if day >= 0 else self.join_day == 0

    def travelling(self, day: int) -> np.ndarray:
        return (self.travel_start >= 0) & (day >= self.travel_start) & (day < self.travel_start + self.travel_len)

    def drift_offset(self, day: int) -> np.ndarray:
        return np.floor(self.drift_rate * min(max(day, 0), self.config.n_days)).astype(np.int64)


@lru_cache(maxsize=4)
def build_plan(config: SimulationConfig) -> Plan:
    pop = build_population(config)
    cat = build_catalogue(config)
    rng = rng_for(config, _PLAN)
    n, n_days = config.n_users, config.n_days

    new = rng.random(n) < config.new_user_share
    join_day = np.where(new, rng.integers(1, max(n_days, 2), n), 0).astype(np.int64)

    drift = rng.random(n) < config.taste_drift_share
    drift_rate = np.where(drift, config.taste_drift_artists_per_week / 7.0, 0.0)

    if config.holiday_day >= 0:
        holiday_day = int(config.holiday_day)
    else:
        holiday_day = int(rng.integers(n_days // 3, max(2 * n_days // 3, n_days // 3 + 1)))
    lo, hi = config.holiday_multiplier_range
    holiday_mult = np.where(rng.random(n) < config.holiday_participation, rng.uniform(lo, hi, n), 1.0)

    superfan = rng.random(n) < config.superfan_share
    superfan_day = np.where(superfan, rng.integers(0, n_days, n), -1)
    superfan_day = np.where(superfan_day < join_day, -1, superfan_day)
    superfan_day = np.where(superfan_day == holiday_day, -1, superfan_day)
    lo, hi = config.superfan_multiplier_range
    superfan_mult = rng.uniform(lo, hi, n)

    tlo, thi = config.travel_days_range
    travel_len = rng.integers(tlo, thi + 1, n)
    travel_start = np.where(rng.random(n) < config.travel_share, rng.integers(0, max(n_days - 1, 1), n), -1)
    travel_start = np.where((travel_start >= 0) & (travel_start < join_day), -1, travel_start)
    n_dest = len(config.travel_destinations)
    travel_dest = rng.integers(0, n_dest, n)
    same = pop.dest_idx[travel_dest] == pop.home_country
    travel_dest = np.where(same, (travel_dest + 1) % n_dest, travel_dest)

    blo, bhi = config.bot_block_hours_range
    bot_hour = rng.integers(0, int(24 - np.ceil(bhi)) + 1, n)
    bot_albums = rng.integers(0, cat.album.n_artists, (n, config.bot_albums))

    # Stream-farm pools: 1-3 short-track artists each, a few dozen to a few hundred tracks.
    n_pools = config.n_farm_pools
    plo, phi = config.farm_pool_tracks_range
    max_size = phi
    pool_tracks = np.zeros((n_pools, max_size), dtype=np.int64)
    pool_size = rng.integers(plo, phi + 1, n_pools)
    pool_artists = rng.integers(1, 4, n_pools)
    for p in range(n_pools):  # a loop over pools, not users
        artists = (3 * p + np.arange(pool_artists[p])) % cat.short.n_artists
        t = rng.integers(0, cat.short.tracks_per_artist, pool_size[p])
        pool_tracks[p, : pool_size[p]] = cat.short.track(artists[rng.integers(0, len(artists), pool_size[p])], t)
    pool_platform = rng.integers(0, len(config.platforms), n_pools)
    farm_pool = rng.integers(0, n_pools, n)

    ordinals = [config.start_date.toordinal() + d for d in range(n_days)]
    offs = np.stack([tz_offsets(pop.tz_names, o) for o in ordinals], axis=1)  # (n_tz, n_days, 25)
    dst_day = offs[:, :, 0] != offs[:, :, 24]

    plan = Plan(
        config=config,
        pop=pop,
        cat=cat,
        join_day=join_day,
        drift_rate=drift_rate,
        holiday_day=holiday_day,
        holiday_mult=holiday_mult,
        superfan_day=superfan_day,
        superfan_mult=superfan_mult,
        travel_start=travel_start,
        travel_len=travel_len,
        travel_dest=travel_dest,
        bot_hour=bot_hour,
        bot_albums=bot_albums,
        farm_pool=farm_pool,
        pool_tracks=pool_tracks,
        pool_size=pool_size,
        pool_platform=pool_platform,
        dst_day=dst_day,
        anomaly=np.full((n, n_days), NO_ANOMALY, dtype=np.int8),
    )
    plan.anomaly = _schedule_anomalies(plan, rng)
    return plan


def _schedule_anomalies(plan: Plan, rng: np.random.Generator) -> np.ndarray:
    config, pop = plan.config, plan.pop
    n, n_days = config.n_users, config.n_days
    days = np.arange(n_days)[None, :]
    exists = days >= plan.join_day[:, None]
    eligible = days >= plan.join_day[:, None] + config.min_history_days
    # Benign look-alike days are kept clean so that a label means one thing.
    # Travel days and the day either side (their plays can land on the home calendar's
    # neighbouring days) are excluded.
    travel = (plan.travel_start[:, None] >= 0) & (days >= plan.travel_start[:, None] - 1) & (
        days <= (plan.travel_start + plan.travel_len)[:, None]
    )
    eligible &= ~travel
    eligible &= days != plan.holiday_day
    eligible &= days != plan.superfan_day[:, None]
    eligible &= ~plan.dst_day[pop.tz_idx]
    anomaly = np.full((n, n_days), NO_ANOMALY, dtype=np.int8)
    types = list(config.anomaly_types)
    if not types:
        return anomaly
    total = int(round(config.anomaly_rate * exists.sum()))
    per_type = np.full(len(types), total // len(types))
    per_type[: total % len(types)] += 1
    # A usual active day at the persona's lighter kind of day (weekday or weekend): a light
    # persona's intensity of 40 is 14 plays on its days, not a heavy listener.
    lighter_volume = np.asarray(config.persona_volume_factor, dtype=float).min(axis=1)[pop.persona]
    usual = pop.intensity * np.where(pop.steady, 1.0, lighter_volume)
    masks = {
        "sudden_drop": (usual >= config.sudden_drop_min_usual_plays) & ~pop.sleep,
        "night_short": (usual >= 5) & (usual <= 120) & ~pop.sleep,
        "account_takeover": ~pop.sleep,
        # A sleep-music night carries most of such a user's artists: a second listener does not double them.
        "account_sharing": (usual >= 5) & ~pop.sleep,
        "marathon": ~pop.sleep,
    }
    used = np.zeros((n, n_days), dtype=bool)
    # Rarest pools first so that restrictive types still find their days.
    order = sorted(range(len(types)), key=lambda i: masks.get(types[i], np.ones(n, bool)).sum())
    for i in order:  # a loop over anomaly types
        name = types[i]
        user_mask = masks.get(name, np.ones(n, dtype=bool))
        candidates = np.flatnonzero((eligible & ~used & user_mask[:, None]).ravel())
        k = min(per_type[i], candidates.size)
        if k == 0:
            continue
        chosen = rng.choice(candidates, size=k, replace=False)
        used.ravel()[chosen] = True
        anomaly.ravel()[chosen] = i
    # Runs of days replace the single days drawn above for the types that last, once every other type
    # has its days, from a stream of their own: every other type keeps the days it would have had.
    lasting_rng = rng_for(config, _PLAN, _LASTING_STREAM)
    for i, name in enumerate(types):  # a loop over anomaly types
        if name not in LASTING:
            continue
        single_days = np.flatnonzero((anomaly == i).ravel())
        used.ravel()[single_days] = False
        anomaly.ravel()[single_days] = NO_ANOMALY
        user_mask = masks.get(name, np.ones(n, dtype=bool))
        free = eligible & ~used & user_mask[:, None]
        runs = _lasting_days(lasting_rng, free, single_days.size, getattr(config, LASTING[name]))
        used.ravel()[runs] = True
        anomaly.ravel()[runs] = i
    return anomaly


#: Anomalies that last several days in a row, and the config field with their range of days.
LASTING = {"sudden_drop": "sudden_drop_days_range"}
#: The key, under the plan's stream, of the stream that draws those runs.
_LASTING_STREAM = 1


def _lasting_days(rng: np.random.Generator, free: np.ndarray, n_days_wanted: int, days_range: tuple) -> np.ndarray:
    """Flat (user, day) indices of runs of consecutive ``free`` days, at most ``n_days_wanted`` in all.

    Each run starts on a free day and lasts a length drawn from ``days_range``
    (inclusive), cut short at the first day that is not free or past the period; runs are drawn
    in batches until the days cut short are made up, fewer than a run's days are left, or no
    free day is.
    """
    lo, hi = days_range
    n_days = free.shape[1]
    taken = free.copy()
    chosen = [np.zeros(0, dtype=np.int64)]
    wanted = n_days_wanted
    while wanted >= lo:  # a loop over batches of runs, not over users
        open_starts = np.flatnonzero(taken)
        if open_starts.size == 0:
            break
        starts = rng.choice(open_starts, size=min(max(wanted // hi, 1), open_starts.size), replace=False)
        lengths = np.minimum(rng.integers(lo, hi + 1, starts.size), wanted)
        keep = np.cumsum(lengths) <= wanted
        starts, lengths = starts[keep], lengths[keep]
        users, first_days = np.divmod(starts, n_days)
        running = np.ones(starts.size, dtype=bool)
        for offset in range(hi):  # a loop over the days of a run
            days = np.minimum(first_days + offset, n_days - 1)
            running &= (offset < lengths) & (first_days + offset < n_days) & taken[users, days]
            flat = users[running] * n_days + days[running]
            taken.ravel()[flat] = False
            chosen.append(flat)
            wanted -= flat.size
    return np.concatenate(chosen)


def _date_array(config: SimulationConfig, day_idx: np.ndarray) -> pa.Array:
    base = (config.start_date.toordinal() - 719163)  # days since 1970-01-01
    return pa.array((base + day_idx).astype(np.int32), type=pa.date32())


def _day_range(config: SimulationConfig, start, end) -> tuple[int, int]:
    lo = max((start - config.start_date).days, 0)
    hi = min((end - config.start_date).days, config.n_days)
    return lo, hi


def anomaly_labels(plan: Plan, start, end) -> pa.Table:
    config = plan.config
    lo, hi = _day_range(config, start, end)
    if hi <= lo:
        return ANOMALY_LABEL_SCHEMA.empty_table()
    sub = plan.anomaly[:, lo:hi]
    users, days = np.nonzero(sub != NO_ANOMALY)
    codes = sub[users, days]
    names = pa.array(list(config.anomaly_types), type=pa.string())
    sev = pa.array([config.severity.get(t, "subtle") for t in config.anomaly_types], type=pa.string())
    order = np.lexsort((users, days))
    users, days, codes = users[order], days[order] + lo, codes[order]
    return pa.Table.from_arrays(
        [
            plan.pop.user_ids.take(pa.array(users)),
            _date_array(config, days),
            names.take(pa.array(codes.astype(np.int64))),
            sev.take(pa.array(codes.astype(np.int64))),
        ],
        schema=ANOMALY_LABEL_SCHEMA,
    )


def benign_labels(plan: Plan, start, end) -> pa.Table:
    config, pop = plan.config, plan.pop
    lo, hi = _day_range(config, start, end)
    if hi <= lo:
        return BENIGN_LABEL_SCHEMA.empty_table()
    days = np.arange(lo, hi)[None, :]
    exists = days >= plan.join_day[:, None]
    n = config.n_users
    parts: list[tuple[str, np.ndarray]] = []
    travel = (plan.travel_start[:, None] >= 0) & (days >= plan.travel_start[:, None]) & (
        days < (plan.travel_start + plan.travel_len)[:, None]
    )
    parts.append(("travel", travel & exists))
    parts.append(("taste_drift", (plan.drift_rate > 0)[:, None] & exists))
    parts.append(("holiday_spike", (plan.holiday_mult > 1.0)[:, None] & (days == plan.holiday_day) & exists))
    parts.append(("sleep_music", pop.sleep[:, None] & exists))
    parts.append(("superfan_release", (days == plan.superfan_day[:, None]) & exists))
    dst = plan.dst_day[pop.tz_idx][:, lo:hi]
    parts.append(("dst_change", dst & exists & ~travel))
    new = (plan.join_day > 0)[:, None] & (days >= plan.join_day[:, None]) & (
        days < plan.join_day[:, None] + config.new_account_label_days
    )
    parts.append(("new_account", new))
    parts.append(("steady_heavy", pop.steady[:, None] & exists))
    users_out, days_out, names_out = [], [], []
    for name, mask in parts:  # a loop over scenarios
        u, d = np.nonzero(mask)
        users_out.append(u)
        days_out.append(d + lo)
        names_out.append(np.full(u.size, name, dtype=object))
    u = np.concatenate(users_out) if users_out else np.zeros(0, dtype=np.int64)
    d = np.concatenate(days_out)
    s = np.concatenate(names_out)
    order = np.lexsort((u, d))
    del n
    return pa.Table.from_arrays(
        [pop.user_ids.take(pa.array(u[order])), _date_array(config, d[order]), pa.array(s[order], type=pa.string())],
        schema=BENIGN_LABEL_SCHEMA,
    )


def day_date(config: SimulationConfig, day: int):
    return config.start_date + timedelta(days=int(day))
