"""Day assembly and the public entry points."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np
import pyarrow as pa

from warehouse.contract import EVENT_SCHEMA, USER_SCHEMA
from warehouse.simulator import anomalies as an
from warehouse.simulator.behaviour import concat, day_context, layout, normal_plays, sleep_plays
from warehouse.simulator.config import SimulationConfig
from warehouse.simulator.population import EPOCH_ORDINAL, MS_DAY, MS_HOUR, day_rng
from warehouse.simulator.scenarios import NO_ANOMALY, anomaly_labels, benign_labels, build_plan


@dataclass(frozen=True)
class SimulatedWindow:
    """Plays whose UTC start is in ``[start, end)`` and the labels of local days in ``[start, end)``."""

    events: pa.Table
    anomaly_labels: pa.Table
    benign_labels: pa.Table


@dataclass
class DayPlays:
    user: np.ndarray
    utc_ms: np.ndarray
    ms: np.ndarray
    track: np.ndarray
    skip: np.ndarray
    plat: np.ndarray
    country: np.ndarray

    def take(self, mask) -> "DayPlays":
        return DayPlays(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


def generate_day(config: SimulationConfig, ordinal: int) -> DayPlays:
    """Every play of every user for the local calendar day ``ordinal`` (whatever UTC day it falls on)."""
    plan = build_plan(config)
    pop = plan.pop
    ctx = day_context(plan, ordinal)
    rng = day_rng(config, ordinal)
    n = pop.n
    w = int(ctx.weekend)
    act = np.asarray(config.persona_active_prob, dtype=float)[pop.persona, w]
    vol = np.asarray(config.persona_volume_factor, dtype=float)[pop.persona, w]
    act = np.where(pop.steady, 1.0, act)
    vol = np.where(pop.steady, 1.0, vol)
    sigma = np.where(pop.steady, config.steady_heavy_day_sigma, config.day_volume_sigma)
    usual = pop.intensity * vol
    lam = usual * np.exp(sigma * rng.standard_normal(n) - sigma**2 / 2)
    active = rng.random(n) < act
    mult = np.ones(n)
    superfan = np.ones(n)
    if ctx.in_period:
        if ctx.day == plan.holiday_day:
            mult *= plan.holiday_mult
        sf = plan.superfan_day == ctx.day
        superfan[sf] = plan.superfan_mult[sf]
        mult *= superfan
    n_plays = np.minimum(rng.poisson(lam * mult), np.where(pop.sleep, config.sleep_user_max_daily_plays, config.max_daily_plays))
    n_plays = np.where(active & ctx.exists, n_plays, 0)

    code = plan.anomaly[:, ctx.day] if ctx.in_period else np.full(n, NO_ANOMALY, dtype=np.int8)
    types = list(config.anomaly_types)
    users_of = {t: np.flatnonzero(code == i) for i, t in enumerate(types)}
    empty = np.zeros(0, dtype=np.int64)

    def of(name):
        return users_of.get(name, empty)

    for name in an.REPLACE:
        n_plays[of(name)] = 0
    u = of("sudden_drop")
    lo, hi = config.sudden_drop_plays_range
    n_plays[u] = rng.integers(lo, hi + 1, u.size)
    u = of("night_short")
    n_plays[u] = np.maximum(np.round(usual[u] * (1 - config.night_short_minutes_share)), 1).astype(np.int64)
    u = of("geo_hop")
    n_plays[u] = np.maximum(n_plays[u], 12)
    for name in an.OVERLAY:
        u = of(name)
        n_plays[u] = np.maximum(n_plays[u], 5)
    u = of("account_sharing")  # the owner has a usual day under the second listener
    n_plays[u] = np.maximum(n_plays[u], np.round(usual[u])).astype(np.int64)

    clock_min = np.zeros(n, dtype=np.int64)
    clock_min[of("night_short")] = (config.night_short_hours[1] + 1) * MS_HOUR
    listeners = np.flatnonzero(n_plays > 0)
    main = [
        normal_plays(ctx, rng, listeners, n_plays[listeners], clock_min_ms=clock_min[listeners],
                     superfan_mult=superfan[listeners])
    ]
    sleepers = pop.sleep & ctx.exists
    for name in an.REPLACE:
        sleepers[of(name)] = False
    main.append(sleep_plays(ctx, rng, np.flatnonzero(sleepers)))

    # Replacing anomalies join the main timeline (no overlap with anything else that day).
    if of("marathon").size:
        main.append(an.marathon(ctx, rng, of("marathon")))
    if of("stream_farm").size:
        main.append(an.stream_farm(ctx, rng, of("stream_farm")))
    if of("thin_farm").size:
        main.append(an.thin_farm(ctx, rng, of("thin_farm")))
    if of("loop").size:
        main.append(an.loop(ctx, rng, of("loop")))
    if of("skip_storm").size:
        u = of("skip_storm")
        main.append(an.skip_storm(ctx, rng, u, usual[u]))
    if of("night_short").size:
        u = of("night_short")
        main.append(an.night_short_block(ctx, rng, u, usual[u]))

    gap_ms = config.min_session_gap_s * 1000
    batch, utc = layout(ctx, concat(main), gap_ms)
    an.apply_geo_hop(ctx, rng, of("geo_hop"), batch)
    parts = [(batch, utc)]

    if of("scheduled_bot").size:
        parts.append(layout(ctx, an.scheduled_bot(ctx, rng, of("scheduled_bot")), gap_ms))
    if of("account_takeover").size:
        parts.append(layout(ctx, an.account_takeover(ctx, rng, of("account_takeover")), gap_ms))
    if of("account_sharing").size:
        u = of("account_sharing")
        first = np.full(n, -1, dtype=np.int64)
        seg = batch["seg"]
        if seg.size:
            # Plays are grouped by user in time order: the owner's first play of the day.
            firsts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
            first[seg[firsts]] = utc[firsts] - ctx.midnight_ms[seg[firsts]]
        parts.append(layout(ctx, an.account_sharing(ctx, rng, u, first[u]), gap_ms))

    b = concat([p[0] for p in parts])
    utc = np.concatenate([p[1] for p in parts])
    order = np.lexsort((b["seg"], utc))
    return DayPlays(
        user=b["seg"][order].astype(np.int32),
        utc_ms=utc[order],
        ms=b["ms"][order],
        track=b["track"][order],
        skip=b["skip"][order],
        plat=b["plat"][order].astype(np.int16),
        country=b["country"][order].astype(np.int16),
    )


@lru_cache(maxsize=3)
def _cached_day(config: SimulationConfig, ordinal: int) -> DayPlays:
    return generate_day(config, ordinal)


def _to_ms(d: date) -> int:
    return (d.toordinal() - EPOCH_ORDINAL) * MS_DAY


def events_table(config: SimulationConfig, plays: DayPlays) -> pa.Table:
    plan = build_plan(config)
    cat = plan.cat
    n = plays.user.size
    track = pa.array(plays.track)
    return pa.Table.from_arrays(
        [
            pa.nulls(n, type=pa.string()),
            plan.pop.user_ids.take(pa.array(plays.user)),
            pa.array(plays.utc_ms * 1000, type=pa.timestamp("us")),
            pa.array(plays.ms, type=pa.int64()),
            cat.track_ids.take(track),
            cat.artist_ids.take(pa.array(cat.track_artist[plays.track])),
            pa.array(cat.track_dur_ms[plays.track], type=pa.int64()),
            pa.array(plays.skip, type=pa.bool_()),
            pa.array(list(config.platforms), type=pa.string()).take(pa.array(plays.plat)),
            pa.array(list(plan.pop.countries), type=pa.string()).take(pa.array(plays.country)),
        ],
        schema=EVENT_SCHEMA,
    )


def window_plays(config: SimulationConfig, start: date, end: date) -> DayPlays:
    """Raw arrays of the plays whose UTC start is in [start, end) (local days start-1 .. end)."""
    lo, hi = _to_ms(start), _to_ms(end)
    parts = []
    for ordinal in range(start.toordinal() - 1, end.toordinal() + 1):  # a loop over days
        day = _cached_day(config, ordinal)
        parts.append(day.take((day.utc_ms >= lo) & (day.utc_ms < hi)))
    return DayPlays(*(np.concatenate([getattr(p, f) for p in parts]) for f in DayPlays.__dataclass_fields__))


def simulate_window(config: SimulationConfig, start: date, end: date) -> SimulatedWindow:
    """Plays whose UTC start lies in ``[start, end)`` and the labels of local days in ``[start, end)``."""
    if end <= start:
        raise ValueError("end must be after start")
    plan = build_plan(config)
    return SimulatedWindow(
        events=events_table(config, window_plays(config, start, end)),
        anomaly_labels=anomaly_labels(plan, start, end),
        benign_labels=benign_labels(plan, start, end),
    )


def simulate_users(config: SimulationConfig) -> pa.Table:
    """All users of the population (including those who join mid-period) and their IANA zone."""
    plan = build_plan(config)
    tz = pa.array(list(plan.pop.tz_names), type=pa.string()).take(pa.array(plan.pop.tz_idx.astype(np.int64)))
    return pa.Table.from_arrays([plan.pop.user_ids, tz], schema=USER_SCHEMA)
