"""Normal listening behaviour for one local day, vectorised across all users.

A day is built as *sessions*: every play belongs to a session with a local clock start; the
session layout puts sessions on a real-time line (elapsed ms since the user's local midnight)
without overlaps, plays inside a session back to back. Local clock -> elapsed uses the
zoneinfo offset at that local hour (so a DST day is 23 or 25 h long and no play is created or
lost), elapsed -> UTC uses the UTC instant of the local midnight.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np

from warehouse.simulator.population import EPOCH_ORDINAL, MS_DAY, MS_HOUR, _zipf_cdf, tz_offsets
from warehouse.simulator.scenarios import Plan

BATCH_KEYS = ("seg", "clock", "sess", "order", "track", "ms", "skip", "plat", "country", "gap")
_BIG = 10**11  # ms; larger than any within-day coordinate, used for segmented scans


@dataclass
class DayContext:
    plan: Plan
    ordinal: int
    day: int  # relative to start_date
    in_period: bool
    weekend: bool
    exists: np.ndarray
    offs: np.ndarray  # (n, 25) seconds
    midnight_ms: np.ndarray  # UTC ms of each user's local midnight
    day_len_ms: np.ndarray
    country: np.ndarray  # where each user is today
    drift_off: np.ndarray
    next_session: int = 0

    def sessions(self, count: int) -> np.ndarray:
        keys = np.arange(self.next_session, self.next_session + count, dtype=np.int64)
        self.next_session += count
        return keys


def day_context(plan: Plan, ordinal: int) -> DayContext:
    config, pop = plan.config, plan.pop
    day = ordinal - config.start_date.toordinal()
    in_period = 0 <= day < config.n_days
    offs = tz_offsets(pop.tz_names, ordinal)[pop.tz_idx]
    country = pop.home_country.copy()
    if in_period:
        trav = plan.travelling(day)
        dest = plan.travel_dest[trav]
        offs[trav] = pop.dest_offset_s[dest][:, None]
        country[trav] = pop.dest_idx[dest]
    base = (ordinal - EPOCH_ORDINAL) * MS_DAY
    midnight = base - offs[:, 0] * 1000
    day_len = MS_DAY - (offs[:, 24] - offs[:, 0]) * 1000
    return DayContext(
        plan=plan,
        ordinal=ordinal,
        day=day,
        in_period=in_period,
        weekend=date.fromordinal(ordinal).weekday() >= 5,
        exists=plan.exists(day),
        offs=offs,
        midnight_ms=midnight,
        day_len_ms=day_len,
        country=country,
        drift_off=plan.drift_offset(day),
    )


def segments(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ragged groups of ``counts`` items: the group index and the position of each item."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    seg = np.repeat(np.arange(counts.size), counts)
    starts = np.cumsum(counts) - counts
    pos = np.arange(total, dtype=np.int64) - starts[seg]
    return seg, pos


def empty_batch() -> dict:
    return {k: np.zeros(0, dtype=np.int64 if k not in ("skip",) else bool) for k in BATCH_KEYS}


def concat(batches: list[dict]) -> dict:
    batches = [b for b in batches if b is not None and b["seg"].size]
    if not batches:
        return empty_batch()
    return {k: np.concatenate([b[k] for b in batches]) for k in BATCH_KEYS}


def make_batch(ctx: DayContext, users, clock, n_per_user, *, track, ms, skip, gap, plat, country=None) -> dict:
    """One session per user with ``n_per_user`` plays.

    ``clock`` and ``plat`` are per user; ``track``, ``ms``, ``skip``, ``gap`` (and ``country``
    when given) are per play, in user order then play order.
    """
    users = np.asarray(users, dtype=np.int64)
    seg, pos = segments(n_per_user)
    sess = ctx.sessions(users.size)
    pu = users[seg]
    return {
        "seg": pu,
        "clock": np.asarray(clock, dtype=np.int64)[seg],
        "sess": sess[seg],
        "order": pos,
        "track": np.asarray(track, dtype=np.int64),
        "ms": np.asarray(ms, dtype=np.int64),
        "skip": np.asarray(skip, dtype=bool),
        "plat": np.broadcast_to(np.asarray(plat, dtype=np.int64), (users.size,))[seg],
        "country": (ctx.country[pu] if country is None else np.asarray(country)).astype(np.int64),
        "gap": np.asarray(gap, dtype=np.int64),
    }


@lru_cache(maxsize=16)
def _cdf(n: int, exponent: float) -> np.ndarray:
    return _zipf_cdf(n, exponent)


def taste_tracks(ctx: DayContext, rng: np.random.Generator, taste_users: np.ndarray) -> np.ndarray:
    """Tracks from each user's favourites: Zipf over favourite artists (shifted by taste drift),
    Zipf over the artist's tracks."""
    config, pop, cat = ctx.plan.config, ctx.plan.pop, ctx.plan.cat
    m = taste_users.size
    k = config.favourite_artists
    rank = np.searchsorted(_cdf(k, config.favourite_zipf_exponent), rng.random(m), side="right").clip(0, k - 1)
    artist = pop.fav[taste_users, rank + ctx.drift_off[taste_users]]
    t_cdf = _cdf(config.tracks_per_artist, config.track_zipf_exponent)
    t = np.searchsorted(t_cdf, rng.random(m), side="right").clip(0, config.tracks_per_artist - 1)
    return cat.normal.track(artist, t).astype(np.int64)


def session_clock(ctx: DayContext, rng: np.random.Generator, persona: np.ndarray) -> np.ndarray:
    """Local clock (ms) of session starts, hour drawn from the persona's weekday/weekend profile."""
    cdf = ctx.plan.pop.persona_hour_cdf[int(ctx.weekend)]
    n_p = cdf.shape[0]
    flat = (cdf + np.arange(n_p)[:, None]).ravel()
    persona = persona.astype(np.int64)
    idx = np.searchsorted(flat, persona + rng.random(persona.size), side="right")
    hour = np.clip(idx - persona * 24, 0, 23)
    return hour * MS_HOUR + (rng.random(persona.size) * MS_HOUR).astype(np.int64)


def normal_plays(
    ctx: DayContext,
    rng: np.random.Generator,
    users: np.ndarray,
    n_plays: np.ndarray,
    *,
    taste_users: np.ndarray | None = None,
    persona: np.ndarray | None = None,
    skip_p: np.ndarray | None = None,
    skip_seconds: tuple | None = None,
    clock_min_ms: np.ndarray | None = None,
    first_clock_ms: np.ndarray | None = None,
    plat: tuple | None = None,
    superfan_mult: np.ndarray | None = None,
) -> dict:
    """A normal day of ``n_plays[i]`` plays for ``users[i]`` split into sessions."""
    plan = ctx.plan
    config, pop, cat = plan.config, plan.pop, plan.cat
    users = np.asarray(users, dtype=np.int64)
    n_plays = np.asarray(n_plays, dtype=np.int64)
    keep = n_plays > 0
    users, n_plays = users[keep], n_plays[keep]

    def sel(a):
        return None if a is None else np.asarray(a)[keep]

    taste_users, persona, skip_p = sel(taste_users), sel(persona), sel(skip_p)
    clock_min_ms, first_clock_ms, superfan_mult = sel(clock_min_ms), sel(first_clock_ms), sel(superfan_mult)
    if plat is not None:
        plat = (sel(plat[0]), sel(plat[1]))
    if users.size == 0:
        return empty_batch()
    taste_users = users if taste_users is None else taste_users
    persona = pop.persona[users] if persona is None else persona
    skip_p = pop.skip_p[users] if skip_p is None else skip_p
    p1, p2 = (pop.plat1[users], pop.plat2[users]) if plat is None else plat

    seg, pos = segments(n_plays)
    total = seg.size
    p_break = np.minimum(1.0 / config.mean_session_plays, config.max_sessions_per_day / n_plays)
    brk = (pos == 0) | (rng.random(total) < p_break[seg])
    sess_local = np.cumsum(brk) - 1
    n_sess = int(brk.sum())
    s_user = seg[brk]
    clock = session_clock(ctx, rng, persona[s_user])
    if clock_min_ms is not None:
        cmin = clock_min_ms[s_user]
        clock = cmin + (clock * ((MS_DAY - cmin) / MS_DAY)).astype(np.int64)
    if first_clock_ms is not None:
        first = (pos[brk] == 0) & (first_clock_ms[s_user] >= 0)
        clock = np.where(first, first_clock_ms[s_user], clock)
    primary = (rng.random(n_sess) < config.primary_platform_share) | (p2[s_user] < 0)
    s_plat = np.where(primary, p1[s_user], p2[s_user])

    track = taste_tracks(ctx, rng, taste_users[seg])
    if superfan_mult is not None:
        extra = rng.random(total) < (1.0 - 1.0 / superfan_mult[seg])
        top = pop.fav[taste_users[seg], ctx.drift_off[taste_users[seg]]]
        newest = config.tracks_per_artist - 1 - rng.integers(0, min(5, config.tracks_per_artist), total)
        track = np.where(extra, cat.normal.track(top, newest), track)
    dur = cat.track_dur_ms[track]
    skip = rng.random(total) < skip_p[seg]
    if skip_seconds is None:
        skipped_ms = config.skip_median_s * 1000 * rng.lognormal(0.0, 0.8, total)
    else:
        skipped_ms = rng.uniform(skip_seconds[0], skip_seconds[1], total) * 1000
    skipped_ms = np.clip(skipped_ms, 300, np.maximum(dur - 1000, 300)).astype(np.int64)
    full_ms = dur - rng.integers(0, 1000, total)
    ms = np.where(skip, skipped_ms, full_ms)
    gap = (rng.random(total) * config.max_in_session_gap_s * 1000).astype(np.int64)
    sess = ctx.sessions(n_sess)
    pu = users[seg]
    return {
        "seg": pu,
        "clock": clock[sess_local],
        "sess": sess[sess_local],
        "order": pos,
        "track": track,
        "ms": ms,
        "skip": skip,
        "plat": s_plat[sess_local].astype(np.int64),
        "country": ctx.country[pu].astype(np.int64),
        "gap": gap,
    }


def sleep_plays(ctx: DayContext, rng: np.random.Generator, users: np.ndarray) -> dict:
    """A night of sleep music: long ambient tracks played in full from 00:00-01:00 for 6-9 h."""
    plan = ctx.plan
    config, pop, cat = plan.config, plan.pop, plan.cat
    k = users.size
    if k == 0:
        return empty_batch()
    lo, hi = config.sleep_hours_range
    target = rng.uniform(lo, hi, k) * MS_HOUR
    m = int(np.ceil(hi * 60 / 8)) + 1
    a = rng.integers(0, cat.sleep.n_artists, (k, m))
    t = rng.integers(0, cat.sleep.tracks_per_artist, (k, m))
    track = cat.sleep.track(a, t)
    dur = cat.track_dur_ms[track]
    gap = rng.integers(0, 1000, (k, m))
    step = dur + gap
    excl = np.cumsum(step, axis=1) - step
    keep = excl < target[:, None]
    n = keep.sum(axis=1)
    clock = rng.integers(0, MS_HOUR, k)
    return make_batch(
        ctx,
        users,
        clock,
        n,
        track=track[keep],
        ms=dur[keep],
        skip=np.zeros(int(n.sum()), bool),
        gap=gap[keep],
        plat=pop.plat1[users],
    )


def layout(ctx: DayContext, b: dict, min_gap_ms: int) -> tuple[dict, np.ndarray]:
    """Place sessions on each user's real-time line; return the sorted batch and UTC start ms.

    Sessions start at their local clock unless the previous session is still running (then
    right after it plus ``min_gap_ms``); if the day overflows, sessions are pulled earlier so
    that the last one ends within the local day. Plays in a session are back to back.
    """
    if b["seg"].size == 0:
        return b, np.zeros(0, dtype=np.int64)
    order = np.lexsort((b["order"], b["sess"], b["clock"], b["seg"]))
    b = {k: v[order] for k, v in b.items()}
    seg, sess = b["seg"], b["sess"]
    m = seg.size
    first = np.ones(m, dtype=bool)
    first[1:] = sess[1:] != sess[:-1]
    first_idx = np.flatnonzero(first)
    sid = np.cumsum(first) - 1
    step = b["ms"] + b["gap"]
    excl = np.cumsum(step) - step
    within = excl - excl[first_idx][sid]
    length = np.add.reduceat(step, first_idx) + min_gap_ms
    s_seg = seg[first_idx]
    clock = b["clock"][first_idx]
    hour = np.clip(clock // MS_HOUR, 0, 24)
    a = clock - (ctx.offs[s_seg, hour] - ctx.offs[s_seg, 0]) * 1000
    seg_first = np.ones(s_seg.size, dtype=bool)
    seg_first[1:] = s_seg[1:] != s_seg[:-1]
    seg_first_idx = np.flatnonzero(seg_first)
    seg_id = np.cumsum(seg_first) - 1
    c_excl = np.cumsum(length) - length
    c = c_excl - c_excl[seg_first_idx][seg_id]
    shift = seg_id * _BIG
    start = np.maximum.accumulate(a - c + shift) - shift + c
    seg_total = np.add.reduceat(length, seg_first_idx)[seg_id]
    rest = seg_total - c  # this session and all later ones
    v = np.minimum(start + rest, ctx.day_len_ms[s_seg] + min_gap_ms)
    z = np.minimum.accumulate((v + shift)[::-1])[::-1] - shift
    start = z - rest
    elapsed = start[sid] + within
    return b, ctx.midnight_ms[seg] + elapsed
