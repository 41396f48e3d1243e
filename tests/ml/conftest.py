"""Small synthetic ``user_day_rule_flags`` frames, built in memory."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from ml.features import BASELINED_METRICS


def make_flags(n_users: int = 60, n_days: int = 20, *, seed: int = 0, start: date = date(2024, 1, 1)) -> pd.DataFrame:
    """Ordinary listening days: daytime, mostly full plays, users differing in volume."""
    rng = np.random.default_rng(seed)
    users = np.repeat([f"u{i:03d}" for i in range(n_users)], n_days)
    day_index = np.tile(np.arange(n_days), n_users)
    n = users.size
    level = np.repeat(rng.lognormal(np.log(30), 0.5, n_users), n_days)
    plays = np.maximum(1, rng.poisson(level)).astype(float)
    frame = pd.DataFrame(
        {
            "user_id": users,
            "listen_date": [start + timedelta(days=int(d)) for d in day_index],
            "timezone": "Europe/Berlin",
            "baseline_days": np.minimum(day_index, 28),
            "play_count": plays,
            "minutes_played": plays * rng.uniform(2.5, 3.8, n),
            "distinct_tracks": np.maximum(1, np.round(plays * rng.uniform(0.6, 0.95, n))),
            "distinct_artists": np.maximum(1, np.round(plays * rng.uniform(0.3, 0.6, n))),
            "skip_rate": rng.beta(2, 12, n),
            "short_play_share": rng.beta(1.5, 20, n),
            "median_play_seconds": rng.normal(190, 20, n),
            "night_share": rng.beta(1, 30, n),
            "active_hours": rng.integers(3, 10, n).astype(float),
            "longest_session_minutes": rng.uniform(20, 90, n),
            "top_track_share": rng.beta(2, 25, n),
            "top_artist_share": rng.beta(3, 15, n),
            "new_track_share": rng.beta(2, 10, n),
            "new_artist_share": rng.beta(1.5, 15, n),
            "new_country_count": 0,
            "new_platform_count": 0,
            "country_count": 1,
            "platform_count": rng.integers(1, 3, n),
            "inter_play_gap_cv": rng.uniform(0.8, 2.0, n),
            "distinct_play_length_share": rng.uniform(0.8, 1.0, n),
            "unusual_hour_share": rng.beta(1, 15, n),
            "overlapping_play_share": np.zeros(n),
        }
    )
    for m in BASELINED_METRICS:
        frame[f"usual_{m}"] = frame.groupby("user_id")[m].transform("median")
        frame[f"{m}_z"] = np.where(frame["baseline_days"] >= 3, rng.normal(0, 1, n), np.nan)
    frame.loc[frame["baseline_days"] == 0, [f"usual_{m}" for m in BASELINED_METRICS]] = np.nan
    frame["is_cold_start"] = frame["baseline_days"] < 7
    for family in ("volume", "continuity", "timing", "content", "engagement", "context"):
        frame[f"is_{family}_signal"] = False
    frame["rule_signal_count"] = 0
    frame["rule_signals"] = ""
    frame["rule_flag"] = False
    frame["rule_reasons"] = ""
    frame["observed_until_hour"] = 24
    return frame


def plant_night_short(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """Normal volume, but mostly short plays at night: no single volume threshold catches it."""
    out = frame.copy()
    idx = out.index[rows]
    out.loc[idx, "short_play_share"] = 0.9
    out.loc[idx, "night_share"] = 0.85
    out.loc[idx, "median_play_seconds"] = 33.0
    out.loc[idx, "skip_rate"] = 0.1
    out.loc[idx, "short_play_share_z"] = 6.0
    out.loc[idx, "night_share_z"] = 7.0
    out.loc[idx, "median_play_seconds_z"] = -7.0
    out.loc[idx, "unusual_hour_share"] = 0.8
    out.loc[idx, "unusual_hour_share_z"] = 6.0
    return out


@pytest.fixture
def flags() -> pd.DataFrame:
    return make_flags()


@pytest.fixture
def flags_factory():
    """:func:`make_flags`, for tests that need other sizes or seeds."""
    return make_flags


@pytest.fixture
def planter():
    """:func:`plant_night_short`."""
    return plant_night_short
