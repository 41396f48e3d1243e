"""Anomaly generators. Each builds the anomalous plays of all users that have that anomaly on
one local day, vectorised across those users.

Replacing types (marathon, stream_farm, thin_farm, loop, skip_storm, and the night block of
night_short) go into the day's main batch instead of the user's normal plays; overlay types
(scheduled_bot, account_takeover, account_sharing) are laid out on their own timeline on top of
the owner's normal day; geo_hop rewrites the countries of an otherwise normal day; sudden_drop
and night_short also shrink the normal part (see ``simulate.generate_day``).
"""

from __future__ import annotations

import numpy as np

from warehouse.simulator.behaviour import DayContext, make_batch, normal_plays, segments, taste_tracks
from warehouse.simulator.population import MS_DAY, MS_HOUR

REPLACE = {"marathon", "stream_farm", "thin_farm", "loop", "skip_storm"}
OVERLAY = {"scheduled_bot", "account_takeover", "account_sharing"}


def _uniform_ms(rng, lo_s, hi_s, size):
    return (rng.uniform(lo_s, hi_s, size) * 1000).astype(np.int64)


def _new_platform(rng, plan, users):
    n_pl = len(plan.config.platforms)
    p1, p2 = plan.pop.plat1[users], plan.pop.plat2[users]
    r = rng.integers(0, n_pl, users.size)
    for _ in range(2):
        r = np.where((r == p1) | (r == p2), (r + 1) % n_pl, r)
    return r


def unseen_countries(rng, plan, users, k_max: int) -> np.ndarray:
    """(len(users), k_max) distinct destination countries, excluding home and the travel country."""
    pop = plan.pop
    dest = pop.dest_idx
    scores = rng.random((users.size, dest.size))
    excluded = (dest[None, :] == pop.home_country[users][:, None]) | (
        (plan.travel_start[users] >= 0)[:, None] & (dest[None, :] == dest[plan.travel_dest[users]][:, None])
    )
    scores[excluded] = np.inf
    return dest[np.argsort(scores, axis=1)[:, :k_max]].astype(np.int64)


def marathon(ctx: DayContext, rng, users):
    """20-23 h of continuous full plays of the user's own taste, starting just after midnight."""
    config = ctx.plan.config
    lo, hi = config.marathon_hours_range
    k = users.size
    target = rng.uniform(lo, hi, k) * MS_HOUR
    m = int(hi * 3600 / 100) + 20
    track = taste_tracks(ctx, rng, np.repeat(users, m)).reshape(k, m)
    dur = ctx.plan.cat.track_dur_ms[track]
    gap = rng.integers(0, 1500, (k, m))
    step = dur + gap
    keep = (np.cumsum(step, axis=1) - step) < target[:, None]
    clock = rng.integers(0, MS_HOUR // 2, k)
    return make_batch(ctx, users, clock, keep.sum(axis=1), track=track[keep], ms=dur[keep],
                      skip=np.zeros(int(keep.sum()), bool), gap=gap[keep], plat=ctx.plan.pop.plat1[users])


def stream_farm(ctx: DayContext, rng, users):
    """The 30-second farmer: 1,000-2,800 full plays of 31-45 s tracks from a shared pool, one platform."""
    plan = ctx.plan
    config, cat = plan.config, plan.cat
    k = users.size
    pool = plan.farm_pool[users]
    size = plan.pool_size[pool]
    mean_dur = np.array([cat.track_dur_ms[plan.pool_tracks[p, : plan.pool_size[p]]].mean() for p in range(plan.pool_size.size)])
    active = rng.uniform(*config.farm_active_hours_range, k) * MS_HOUR
    lo, hi = config.farm_plays_range
    n = rng.integers(lo, hi + 1, k)
    # What fits in a day bounds the count; the active span stretches (up to ~24 h) to hold it.
    fits = np.floor(0.97 * MS_DAY / (mean_dur[pool] + 150)).astype(np.int64)
    n = np.clip(n, min(lo, fits.min()), fits)
    active = np.clip(active, n * (mean_dur[pool] + 150), 0.97 * MS_DAY)
    gap_mean = np.maximum(active / n - mean_dur[pool], 100)
    seg, _ = segments(n)
    track = plan.pool_tracks[pool[seg], (rng.random(seg.size) * size[seg]).astype(np.int64)]
    dur = cat.track_dur_ms[track]
    gap = np.maximum(gap_mean[seg] + rng.integers(-100, 100, seg.size), 50).astype(np.int64)
    clock = (rng.random(k) * np.maximum(MS_DAY - active - 15 * 60_000, 0)).astype(np.int64)
    return make_batch(ctx, users, clock, n, track=track, ms=dur, skip=np.zeros(seg.size, bool), gap=gap,
                      plat=plan.pool_platform[pool])


def thin_farm(ctx: DayContext, rng, users):
    """500-700 plays around the clock over long-tail tracks the user never played (once or twice each)."""
    plan = ctx.plan
    config, cat = plan.config, plan.cat
    k = users.size
    lo, hi = config.thin_farm_plays_range
    n = rng.integers(lo, hi + 1, k)
    seg, pos = segments(n)
    m = seg.size
    # Distinct tracks per account: a random start and a stride coprime with the block size.
    n_obscure = cat.obscure.n_tracks
    strides = np.array([p for p in (7919, 7927, 7933, 7937, 7949, 7951) if np.gcd(p, n_obscure) == 1] or [1])
    first = rng.integers(0, n_obscure, k)
    stride = strides[rng.integers(0, strides.size, k)]
    track = cat.obscure.track_start + (first[seg] + pos * stride[seg]) % n_obscure
    repeat = (rng.random(m) < config.thin_farm_repeat_share) & (pos > 0)
    prev = np.roll(track, 1)
    repeat &= ~np.roll(repeat, 1)  # at most two plays in a row of one track
    track = np.where(repeat, prev, track)
    dur = cat.track_dur_ms[track]
    ms = np.minimum(_uniform_ms(rng, *config.thin_farm_play_seconds_range, m), dur)
    spacing = (MS_DAY - 20 * 60_000) // n
    gap = np.maximum(spacing[seg] - ms + rng.integers(-5000, 5000, m), 200)
    clock = rng.integers(0, 10 * 60_000, k)
    return make_batch(ctx, users, clock, n, track=track, ms=ms, skip=ms < dur, gap=gap, plat=plan.pop.plat1[users])


def scheduled_bot(ctx: DayContext, rng, users):
    """A 4-6 h block starting on the hour at the account's fixed clock time: ~100 evenly spaced
    full plays of 51-73 s album tracks."""
    plan = ctx.plan
    config, cat = plan.config, plan.cat
    k = users.size
    block = rng.uniform(*config.bot_block_hours_range, k) * MS_HOUR
    lo, hi = config.bot_plays_range
    n = rng.integers(lo, hi + 1, k)
    period = (block // n).astype(np.int64)
    seg, _ = segments(n)
    album = plan.bot_albums[users[seg], rng.integers(0, config.bot_albums, seg.size)]
    track = cat.album.track(album, rng.integers(0, cat.album.tracks_per_artist, seg.size))
    dur = cat.track_dur_ms[track]
    gap = period[seg] - dur
    clock = plan.bot_hour[users] * MS_HOUR
    return make_batch(ctx, users, clock, n, track=track, ms=dur, skip=np.zeros(seg.size, bool), gap=gap,
                      plat=plan.pop.plat1[users])


def night_short_block(ctx: DayContext, rng, users, usual_plays: np.ndarray):
    """The night block of night_short: plays of the user's own tracks stopped at 31-39 s,
    back to back from 01:00, carrying about half the user's usual minutes."""
    plan = ctx.plan
    config = plan.config
    k = users.size
    h0, h1 = config.night_short_hours
    lo, hi = config.night_short_play_seconds_range
    mean_step = (lo + hi) / 2 * 1000 + 1150
    capacity = int((h1 - h0) * MS_HOUR * 0.95 // (hi * 1000 + 2000))
    target = config.night_short_minutes_share * usual_plays * plan.pop.ms_per_play[users]
    n = np.clip(np.round(target / mean_step), 12, capacity).astype(np.int64)
    seg, _ = segments(n)
    track = taste_tracks(ctx, rng, users[seg])
    dur = plan.cat.track_dur_ms[track]
    ms = np.minimum(_uniform_ms(rng, lo, hi + 0.999, seg.size), dur - 1)
    gap = rng.integers(300, 2000, seg.size)
    clock = h0 * MS_HOUR + rng.integers(0, 5 * 60_000, k)
    return make_batch(ctx, users, clock, n, track=track, ms=ms, skip=ms < dur, gap=gap, plat=plan.pop.plat1[users])


def account_takeover(ctx: DayContext, rng, users):
    """An intruder: short tracks by artists the owner never played, from a new platform and a new
    country, in the owner's quiet hours, interleaved with the owner's own normal day."""
    plan = ctx.plan
    config, pop, cat = plan.config, plan.pop, plan.cat
    k = users.size
    lo, hi = config.takeover_plays_range
    n = rng.integers(lo, hi + 1, k)
    qs = pop.quiet_start_h[pop.persona[users]]
    ql = pop.quiet_len_h[pop.persona[users]]
    block_h = np.minimum(ql, config.takeover_block_hours)
    clock = ((qs + rng.random(k) * (ql - block_h)) * MS_HOUR).astype(np.int64)
    period = (block_h * MS_HOUR // n).astype(np.int64)
    seg, _ = segments(n)
    first_free = min(3 * config.n_farm_pools + 3, cat.short.n_artists - 1)
    artist = rng.integers(first_free, cat.short.n_artists, seg.size)
    track = cat.short.track(artist, rng.integers(0, cat.short.tracks_per_artist, seg.size))
    dur = cat.track_dur_ms[track]
    gap = np.maximum(period[seg] - dur, 200)
    country = unseen_countries(rng, plan, users, 1)[:, 0]
    return make_batch(ctx, users, clock, n, track=track, ms=dur, skip=np.zeros(seg.size, bool), gap=gap,
                      plat=_new_platform(rng, plan, users), country=country[seg])


def account_sharing(ctx: DayContext, rng, users, owner_first_clock: np.ndarray):
    """A second listener on the same account: another person's taste, same hours as the owner
    (first session starts with the owner's), on the owner's other device."""
    plan = ctx.plan
    pop = plan.pop
    k = users.size
    partner = (users + 1 + rng.integers(0, max(pop.n - 1, 1), k)) % pop.n
    lam = np.clip(pop.intensity[users], 10, 150)
    n = np.clip(rng.poisson(lam), 10, 150)
    other = np.where(pop.plat2[users] >= 0, pop.plat2[users], _new_platform(rng, plan, users))
    return normal_plays(ctx, rng, users, n, taste_users=partner, persona=pop.persona[users],
                        first_clock_ms=owner_first_clock, plat=(other, np.full(k, -1)))


def skip_storm(ctx: DayContext, rng, users, usual_plays: np.ndarray):
    """Almost every play skipped within seconds; more plays than usual."""
    config = ctx.plan.config
    k = users.size
    n = np.clip(np.round(usual_plays * rng.uniform(*config.skip_storm_volume_range, k)), 20, config.max_daily_plays)
    return normal_plays(ctx, rng, users, n.astype(np.int64), skip_p=np.full(k, config.skip_storm_skip_prob),
                        skip_seconds=config.skip_storm_seconds_range)


def loop(ctx: DayContext, rng, users):
    """One track of the user's taste on repeat for 3-8 hours."""
    plan = ctx.plan
    config = plan.config
    k = users.size
    hours = rng.uniform(*config.loop_hours_range, k)
    track1 = taste_tracks(ctx, rng, users)
    dur1 = plan.cat.track_dur_ms[track1]
    n = np.ceil(hours * MS_HOUR / (dur1 + 700)).astype(np.int64)
    latest = np.maximum(24 - hours - 0.5, 8.5)
    clock = ((8 + rng.random(k) * (latest - 8)) * MS_HOUR).astype(np.int64)
    seg, _ = segments(n)
    gap = rng.integers(200, 1200, seg.size)
    return make_batch(ctx, users, clock, n, track=track1[seg], ms=dur1[seg], skip=np.zeros(seg.size, bool),
                      gap=gap, plat=plan.pop.plat1[users])


def apply_geo_hop(ctx: DayContext, rng, users, batch: dict, seg_sorted: bool = True) -> None:
    """Rewrite the countries of ``users``' plays (batch sorted by user then time): the day is cut
    into 1 + k chunks, the first at home, each other chunk in a country the user never visited."""
    config = ctx.plan.config
    if users.size == 0 or batch["seg"].size == 0:
        return
    lo, hi = config.geo_hop_countries_range
    k = rng.integers(lo, hi + 1, users.size)
    chosen = unseen_countries(rng, ctx.plan, users, hi)
    lookup = np.full(ctx.plan.pop.n, -1, dtype=np.int64)
    lookup[users] = np.arange(users.size)
    row = lookup[batch["seg"]]
    idx = np.flatnonzero(row >= 0)
    if idx.size == 0:
        return
    r = row[idx]
    # rank within user (batch is grouped by user, in time order)
    first = np.ones(idx.size, dtype=bool)
    first[1:] = r[1:] != r[:-1]
    grp = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    rank = np.arange(idx.size) - starts[grp]
    count = np.bincount(grp)[grp]
    chunk = (rank * (k[r] + 1)) // count
    new_country = np.where(chunk == 0, batch["country"][idx], chosen[r, np.maximum(chunk - 1, 0)])
    batch["country"][idx] = new_country
