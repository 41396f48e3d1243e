"""Named simulation profiles: whole sets of assumptions, so detection is measured on more than the
parameters it was developed on.

``default`` is :class:`SimulationConfig` as documented in ``docs/simulation.md``. ``gentle``
changes the world the other way a stranger's simulation might: quieter and noisier listeners
(20 plays a day on average, a wider spread of intensities and of day-to-day volume), twice the
travellers, super-fans and sleep-music users, and every anomaly at the gentle end (16-20 h
marathons, farms of 400-1,000 plays, 2-4 h loops, bots of 50-80 plays, takeovers of 20-60
plays, skip storms at no extra volume, drops to 2-8 plays), at 3 % of user-days.
"""

from __future__ import annotations

import dataclasses

from warehouse.simulator.config import SimulationConfig

SIMULATION_PROFILES: dict[str, dict] = {
    "default": {},
    "gentle": {
        "anomaly_rate": 0.03,
        "mean_daily_plays": 20.0,
        "intensity_sigma": 1.3,
        "day_volume_sigma": 0.5,
        "travel_share": 0.15,
        "superfan_share": 0.1,
        "sleep_music_share": 0.06,
        "taste_drift_share": 0.12,
        "marathon_hours_range": (16.0, 20.0),
        "farm_plays_range": (400, 1000),
        "farm_active_hours_range": (12.0, 20.0),
        "thin_farm_plays_range": (250, 400),
        "bot_plays_range": (50, 80),
        "night_short_minutes_share": 0.35,
        "takeover_plays_range": (20, 60),
        "geo_hop_countries_range": (2, 3),
        "skip_storm_volume_range": (1.0, 1.5),
        "loop_hours_range": (2.0, 4.0),
        "sudden_drop_plays_range": (2, 8),
        "sudden_drop_days_range": (3, 5),
        "sudden_drop_min_usual_plays": 30.0,
    },
}


def profile_config(profile: str = "default", **fields) -> SimulationConfig:
    """The :class:`SimulationConfig` of a named profile, with ``fields`` (n_users, seed, ...) on top.

    Raises
    ------
    ValueError
        When ``profile`` is not one of :data:`SIMULATION_PROFILES` (the names are listed).
    """
    if profile not in SIMULATION_PROFILES:
        raise ValueError(f"unknown simulation profile {profile!r}: choose one of {', '.join(SIMULATION_PROFILES)}")
    return dataclasses.replace(SimulationConfig(), **{**SIMULATION_PROFILES[profile], **fields})
