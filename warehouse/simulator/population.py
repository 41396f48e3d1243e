"""The catalogue, the users and their static traits, and time-zone offsets.

Everything here is drawn once from the seed (independent of any window) and cached per config.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from warehouse.simulator.config import PERSONAS, SimulationConfig

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
MS_HOUR = 3_600_000
MS_DAY = 86_400_000

# Stream keys under the master seed.
_CATALOGUE, _POPULATION, _PLAN, _DAY = 1, 2, 3, 4


def rng_for(config: SimulationConfig, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy=config.seed, spawn_key=tuple(key)))


def day_rng(config: SimulationConfig, ordinal: int) -> np.random.Generator:
    return rng_for(config, _DAY, ordinal)


@dataclass
class Block:
    """A contiguous block of artists, each with the same number of tracks."""

    artist_start: int
    n_artists: int
    track_start: int
    tracks_per_artist: int

    def track(self, artist_local, track_local):
        return self.track_start + np.asarray(artist_local) * self.tracks_per_artist + np.asarray(track_local)

    @property
    def n_tracks(self) -> int:
        return self.n_artists * self.tracks_per_artist


@dataclass
class Catalogue:
    track_artist: np.ndarray  # int32 artist index per track
    track_dur_ms: np.ndarray  # int64
    normal: Block
    obscure: Block
    short: Block
    album: Block
    sleep: Block
    track_ids: pa.Array
    artist_ids: pa.Array


def _zipf_cdf(n: int, exponent: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** exponent
    c = np.cumsum(w)
    return c / c[-1]


def build_catalogue(config: SimulationConfig) -> Catalogue:
    rng = rng_for(config, _CATALOGUE)
    specs = [
        (config.n_artists, config.tracks_per_artist),
        (config.n_obscure_artists, config.tracks_per_obscure_artist),
        (config.n_short_artists, config.tracks_per_short_artist),
        (config.n_album_artists, config.tracks_per_album),
        (config.n_sleep_artists, config.tracks_per_sleep_artist),
    ]
    blocks, a0, t0 = [], 0, 0
    for n_a, n_t in specs:
        blocks.append(Block(a0, n_a, t0, n_t))
        a0 += n_a
        t0 += n_a * n_t
    normal, obscure, short, album, sleep = blocks
    track_artist = np.empty(t0, dtype=np.int32)
    dur_s = np.empty(t0, dtype=np.float64)
    for b in blocks:
        track_artist[b.track_start : b.track_start + b.n_tracks] = b.artist_start + np.repeat(
            np.arange(b.n_artists), b.tracks_per_artist
        )
    for b in (normal, obscure):
        sl = slice(b.track_start, b.track_start + b.n_tracks)
        dur_s[sl] = np.clip(
            config.track_duration_median_s * rng.lognormal(0.0, config.track_duration_sigma, b.n_tracks), 60, 900
        )
    lo, hi = config.farm_track_seconds_range
    dur_s[short.track_start : short.track_start + short.n_tracks] = rng.uniform(lo, hi, short.n_tracks)
    dur_s[album.track_start : album.track_start + album.n_tracks] = rng.choice(
        np.asarray(config.bot_track_seconds, dtype=float), album.n_tracks
    )
    dur_s[sleep.track_start : sleep.track_start + sleep.n_tracks] = 60 * np.clip(
        config.sleep_track_median_min * rng.lognormal(0.0, 0.5, sleep.n_tracks), 8, 60
    )
    track_dur_ms = np.floor(dur_s * 1000).astype(np.int64)
    # Album tracks keep exactly the few configured lengths.
    sl = slice(album.track_start, album.track_start + album.n_tracks)
    track_dur_ms[sl] = np.round(dur_s[sl]).astype(np.int64) * 1000
    track_ids = pa.array([f"t{i:06d}" for i in range(t0)], type=pa.string())
    artist_ids = pa.array([f"a{i:04d}" for i in range(a0)], type=pa.string())
    return Catalogue(track_artist, track_dur_ms, normal, obscure, short, album, sleep, track_ids, artist_ids)


@lru_cache(maxsize=50_000)
def _offsets_for(tz: str, ordinal: int) -> tuple:
    """UTC offsets (seconds) at local hours 0..23 of the day and at the next midnight (fold=0)."""
    zone = ZoneInfo(tz)
    d = date.fromordinal(ordinal)
    n = date.fromordinal(ordinal + 1)
    out = [int(datetime(d.year, d.month, d.day, h, tzinfo=zone).utcoffset().total_seconds()) for h in range(24)]
    out.append(int(datetime(n.year, n.month, n.day, tzinfo=zone).utcoffset().total_seconds()))
    return tuple(out)


def tz_offsets(tz_names: tuple, ordinal: int) -> np.ndarray:
    """(n_tz, 25) int64 offsets in seconds for one local day."""
    return np.array([_offsets_for(tz, ordinal) for tz in tz_names], dtype=np.int64)


@dataclass
class Population:
    n: int
    user_ids: pa.Array
    tz_names: tuple
    countries: tuple
    dest_idx: np.ndarray  # country index of each travel destination
    dest_offset_s: np.ndarray
    persona: np.ndarray
    tz_idx: np.ndarray
    home_country: np.ndarray
    plat1: np.ndarray
    plat2: np.ndarray  # -1 when the user has one platform
    intensity: np.ndarray  # expected plays on an active day before weekday/holiday factors
    skip_p: np.ndarray
    fav: np.ndarray  # (n, favourite_artists + drift headroom) normal-block artist indices
    ms_per_play: np.ndarray  # expected ms_played of one play
    steady: np.ndarray
    sleep: np.ndarray
    quiet_start_h: np.ndarray  # per persona: start of the longest run of zero-weight weekday+weekend hours
    quiet_len_h: np.ndarray
    persona_hour_cdf: np.ndarray  # (2 [weekday/weekend], n_personas, 24)


def _quiet_window(weights_a, weights_b) -> tuple[int, int]:
    zero = [(a == 0 and b == 0) for a, b in zip(weights_a, weights_b)]
    best_start, best_len = 0, 0
    for start in range(24):
        length = 0
        while length < 24 and zero[(start + length) % 24]:
            length += 1
        if length > best_len:
            best_start, best_len = start, length
    # Leave an hour of margin after the last active hour (sessions run on).
    return (best_start + 1) % 24, max(best_len - 1, 0)


def build_population(config: SimulationConfig) -> Population:
    rng = rng_for(config, _POPULATION)
    n = config.n_users
    tz_names = tuple(t[0] for t in config.timezones)
    home_codes = [t[1] for t in config.timezones]
    countries = tuple(dict.fromkeys(home_codes + [d[0] for d in config.travel_destinations]))
    cindex = {c: i for i, c in enumerate(countries)}
    dest_idx = np.array([cindex[d[0]] for d in config.travel_destinations], dtype=np.int16)
    dest_offset_s = np.array([int(d[1] * 3600) for d in config.travel_destinations], dtype=np.int64)

    tzw = np.array([t[2] for t in config.timezones], dtype=float)
    tz_idx = rng.choice(len(tz_names), n, p=tzw / tzw.sum()).astype(np.int16)
    home_country = np.array([cindex[c] for c in home_codes], dtype=np.int16)[tz_idx]
    pw = np.asarray(config.persona_weights, dtype=float)
    persona = rng.choice(len(PERSONAS), n, p=pw / pw.sum()).astype(np.int8)

    plw = np.asarray(config.platform_weights, dtype=float)
    plw = plw / plw.sum()
    n_pl = len(config.platforms)
    plat1 = rng.choice(n_pl, n, p=plw).astype(np.int16)
    plat2 = rng.choice(n_pl, n, p=plw).astype(np.int16)
    plat2 = np.where(plat2 == plat1, (plat2 + 1) % n_pl, plat2)
    plat2 = np.where(rng.random(n) < config.second_platform_prob, plat2, -1).astype(np.int16)

    # Intensity: heavy-tailed (lognormal) and calibrated to the population mean.
    act = np.asarray(config.persona_active_prob, dtype=float)
    vol = np.asarray(config.persona_volume_factor, dtype=float)
    weekly = (5 * act[:, 0] * vol[:, 0] + 2 * act[:, 1] * vol[:, 1]) / 7  # per persona
    raw = rng.lognormal(0.0, config.intensity_sigma, n)
    expected = raw * weekly[persona] * np.exp(config.day_volume_sigma**2 / 2)
    intensity = raw * config.mean_daily_plays / max(expected.mean(), 1e-9)

    steady = rng.random(n) < config.steady_heavy_share
    lo, hi = config.steady_heavy_plays_range
    intensity = np.where(steady, rng.uniform(lo, hi, n), intensity)
    sleep = (rng.random(n) < config.sleep_music_share) & ~steady
    intensity = np.where(sleep, np.minimum(intensity, config.sleep_user_max_daily_plays * 0.6), intensity)

    skip_p = np.clip(np.asarray(config.persona_skip_prob)[persona] * rng.uniform(0.5, 1.5, n), 0.0, 0.9)

    # Favourite artists: popularity-weighted, with headroom for taste drift.
    headroom = int(np.ceil(config.n_days / 7 * config.taste_drift_artists_per_week)) + 2
    k = config.favourite_artists + headroom
    pop_cdf = _zipf_cdf(config.n_artists, config.artist_popularity_exponent)
    # Shuffle which artist id is popular so that ids carry no meaning.
    perm = rng.permutation(config.n_artists)
    fav = perm[np.searchsorted(pop_cdf, rng.random((n, k)), side="right").clip(0, config.n_artists - 1)].astype(np.int32)

    mean_dur = config.track_duration_median_s * np.exp(config.track_duration_sigma**2 / 2) * 1000
    ms_per_play = (1 - skip_p) * mean_dur + skip_p * config.skip_median_s * 1400

    qs, ql = zip(*(_quiet_window(a, b) for a, b in zip(config.persona_hour_weekday, config.persona_hour_weekend)))
    cdf = np.zeros((2, len(PERSONAS), 24))
    for w, profiles in enumerate((config.persona_hour_weekday, config.persona_hour_weekend)):
        for p, prof in enumerate(profiles):
            c = np.cumsum(np.asarray(prof, dtype=float))
            cdf[w, p] = c / c[-1]
    user_ids = pa.array([f"u{i:05d}" for i in range(n)], type=pa.string())
    return Population(
        n=n,
        user_ids=user_ids,
        tz_names=tz_names,
        countries=countries,
        dest_idx=dest_idx,
        dest_offset_s=dest_offset_s,
        persona=persona,
        tz_idx=tz_idx,
        home_country=home_country,
        plat1=plat1,
        plat2=plat2,
        intensity=intensity,
        skip_p=skip_p,
        fav=fav,
        ms_per_play=ms_per_play,
        steady=steady,
        sleep=sleep,
        quiet_start_h=np.asarray(qs, dtype=np.int64),
        quiet_len_h=np.asarray(ql, dtype=np.int64),
        persona_hour_cdf=cdf,
    )
