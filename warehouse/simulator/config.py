"""Every behavioural assumption of the simulator, as one frozen dataclass.

Each field carries its documentation in ``metadata["doc"]`` (and a ``group``); the parameter
table in ``docs/simulation.md`` is generated from these (``python -m warehouse.simulator.docs``),
so the code is the single place where an assumption and its meaning are written down.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date

PERSONAS = ("commuter", "office", "night_owl", "weekend_binger", "light")

ANOMALY_TYPES = (
    "marathon",
    "stream_farm",
    "thin_farm",
    "scheduled_bot",
    "night_short",
    "account_takeover",
    "account_sharing",
    "geo_hop",
    "skip_storm",
    "loop",
    "sudden_drop",
)

BENIGN_SCENARIOS = (
    "travel",
    "taste_drift",
    "holiday_spike",
    "sleep_music",
    "superfan_release",
    "dst_change",
    "new_account",
    "steady_heavy",
)


def _p(default, doc: str, group: str):
    return field(default=default, metadata={"doc": doc, "group": group})


# Hour-of-day weights (local clock, hours 0..23). A zero means the persona never *starts* a
# session in that hour; sessions may still run into it.
_COMMUTER_WD = (0, 0, 0, 0, 0, 0, 2, 9, 10, 5, 1, 1, 2, 1, 1, 1, 3, 9, 10, 5, 3, 3, 2, 1)
_COMMUTER_WE = (1, 0, 0, 0, 0, 0, 0, 0, 1, 2, 4, 5, 5, 5, 5, 5, 4, 4, 4, 5, 5, 4, 3, 2)
_OFFICE_WD = (0, 0, 0, 0, 0, 0, 0, 1, 2, 6, 8, 8, 5, 6, 8, 8, 7, 4, 2, 2, 2, 2, 1, 1)
_OFFICE_WE = (1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 3, 3, 2, 1)
_NIGHT_OWL = (8, 7, 6, 4, 2, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 3, 4, 5, 6, 8, 9, 9)
_BINGER_WD = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 4, 5, 5, 3, 1)
_BINGER_WE = (2, 1, 0, 0, 0, 0, 0, 0, 0, 1, 4, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 5, 3)
_LIGHT = (0, 0, 0, 0, 0, 0, 0, 1, 2, 1, 1, 1, 3, 2, 1, 1, 1, 2, 4, 5, 5, 4, 2, 1)


@dataclass(frozen=True)
class SimulationConfig:
    """Configuration of the synthetic listening population (all fields documented)."""

    # -- general -------------------------------------------------------------------------
    n_users: int = _p(1000, "Number of users in the population (including those who join mid-period).", "general")
    start_date: date = _p(date(2024, 1, 1), "First local day of the simulated period.", "general")
    n_days: int = _p(60, "Length of the period in days; the scenario and anomaly plan covers [start_date, start_date + n_days).", "general")
    seed: int = _p(7, "Master seed; every random stream is derived from it (per day, per purpose).", "general")
    anomaly_rate: float = _p(0.02, "Share of existing user-days in the period that carry an injected anomaly (target 1-3 %).", "general")

    # -- population ----------------------------------------------------------------------
    timezones: tuple = _p(
        (
            ("America/New_York", "US", 0.18),
            ("America/Los_Angeles", "US", 0.08),
            ("America/Sao_Paulo", "BR", 0.12),
            ("Europe/London", "GB", 0.12),
            ("Europe/Berlin", "DE", 0.16),
            ("Asia/Tokyo", "JP", 0.10),
            ("Australia/Sydney", "AU", 0.08),
            ("Asia/Kolkata", "IN", 0.08),
            ("UTC", "IS", 0.08),
        ),
        "(IANA zone, home country, share of users). Behaviour is defined in local time and converted with zoneinfo offsets (DST included).",
        "population",
    )
    platforms: tuple = _p(
        ("ios", "android", "desktop", "web", "smart_speaker", "tv", "car"),
        "Platform names a play can come from.",
        "population",
    )
    platform_weights: tuple = _p((0.3, 0.3, 0.2, 0.08, 0.06, 0.03, 0.03), "Popularity of each platform when drawing a user's usual platforms.", "population")
    second_platform_prob: float = _p(0.6, "Probability that a user has a second usual platform.", "population")
    primary_platform_share: float = _p(0.8, "Share of a two-platform user's sessions on the primary platform.", "population")
    persona_weights: tuple = _p((0.25, 0.22, 0.15, 0.16, 0.22), f"Share of users per persona, in the order {PERSONAS}.", "population")
    persona_active_prob: tuple = _p(
        ((0.9, 0.75), (0.88, 0.7), (0.85, 0.85), (0.5, 0.95), (0.4, 0.5)),
        "Per persona (weekday, weekend) probability that the user listens at all that day (inactive days otherwise).",
        "population",
    )
    persona_volume_factor: tuple = _p(
        ((1.0, 0.7), (1.0, 0.6), (1.0, 1.1), (0.5, 2.5), (0.35, 0.5)),
        "Per persona (weekday, weekend) multiplier of the user's intensity: weekly seasonality.",
        "population",
    )
    persona_hour_weekday: tuple = _p(
        (_COMMUTER_WD, _OFFICE_WD, _NIGHT_OWL, _BINGER_WD, _LIGHT),
        "Per persona, 24 weights of the local hour in which a weekday session starts (commuter: 7-9 and 17-19 peaks; office: daytime; night owl: 20-03).",
        "population",
    )
    persona_hour_weekend: tuple = _p(
        (_COMMUTER_WE, _OFFICE_WE, _NIGHT_OWL, _BINGER_WE, _LIGHT),
        "Per persona, 24 weights of the local hour in which a weekend session starts.",
        "population",
    )
    persona_skip_prob: tuple = _p((0.25, 0.15, 0.2, 0.3, 0.1), "Per persona probability that a play is skipped (a per-user factor 0.5-1.5x is applied).", "population")

    # -- volume and sessions -------------------------------------------------------------
    mean_daily_plays: float = _p(30.0, "Population average plays per user per calendar day, inactive days included (before scenarios and anomalies).", "volume")
    intensity_sigma: float = _p(1.0, "Sigma of the lognormal law of a user's intensity (heavy tail across users).", "volume")
    day_volume_sigma: float = _p(0.35, "Sigma of the lognormal day-to-day noise of a user's volume.", "volume")
    max_daily_plays: int = _p(300, "Cap on a normal day's plays (about 17 h of music).", "volume")
    mean_session_plays: float = _p(8.0, "Mean plays per session (session lengths are geometric).", "volume")
    max_sessions_per_day: int = _p(10, "Heavy users make longer sessions rather than more than this many.", "volume")
    min_session_gap_s: int = _p(300, "Minimum pause between two sessions, seconds.", "volume")
    max_in_session_gap_s: float = _p(3.0, "Plays inside a session are back to back: next start = previous start + ms_played + U(0, this) s.", "volume")

    # -- catalogue and taste -------------------------------------------------------------
    n_artists: int = _p(4000, "Mainstream artists in the catalogue (favourites are drawn from these).", "catalogue")
    tracks_per_artist: int = _p(20, "Tracks per mainstream artist.", "catalogue")
    artist_popularity_exponent: float = _p(1.0, "Zipf exponent of artist popularity when drawing favourites.", "catalogue")
    favourite_artists: int = _p(40, "Size of a user's personal catalogue of favourite artists.", "catalogue")
    favourite_zipf_exponent: float = _p(1.1, "Zipf exponent over a user's favourites (long tail of the personal catalogue).", "catalogue")
    track_zipf_exponent: float = _p(0.9, "Zipf exponent over an artist's tracks.", "catalogue")
    track_duration_median_s: float = _p(210.0, "Median track length, seconds (lognormal, clipped to 60-900 s).", "catalogue")
    track_duration_sigma: float = _p(0.25, "Sigma of the lognormal track length.", "catalogue")
    skip_median_s: float = _p(20.0, "Median listened time of a skipped play, seconds (lognormal sigma 0.8, below the track length).", "catalogue")
    n_obscure_artists: int = _p(3000, "Long-tail artists nobody has as a favourite (only thin farms play them).", "catalogue")
    tracks_per_obscure_artist: int = _p(8, "Tracks per long-tail artist.", "catalogue")
    n_short_artists: int = _p(60, "Artists of 31-45 s filler tracks (farm pools and takeover intruders).", "catalogue")
    tracks_per_short_artist: int = _p(120, "Tracks per short-track artist.", "catalogue")
    n_album_artists: int = _p(40, "Artists of bot albums (tracks of 51-73 s).", "catalogue")
    tracks_per_album: int = _p(12, "Tracks per bot album.", "catalogue")
    n_sleep_artists: int = _p(30, "Ambient artists with long sleep tracks.", "catalogue")
    tracks_per_sleep_artist: int = _p(20, "Tracks per ambient artist.", "catalogue")
    sleep_track_median_min: float = _p(20.0, "Median sleep track length, minutes (lognormal sigma 0.5, clipped 8-60 min).", "catalogue")

    # -- benign scenarios ----------------------------------------------------------------
    taste_drift_share: float = _p(0.06, "Share of users whose favourites drift gradually over weeks.", "scenarios")
    taste_drift_artists_per_week: float = _p(3.0, "How many new favourite artists enter a drifting user's ranking per week.", "scenarios")
    holiday_day: int = _p(-1, "Day index (from start_date) of the population-wide spike (holiday / big release); -1 picks one from the seed in the middle of the period.", "scenarios")
    holiday_participation: float = _p(0.8, "Share of users who listen more on the spike day.", "scenarios")
    holiday_multiplier_range: tuple = _p((1.5, 3.0), "Uniform range of the spike-day volume multiplier.", "scenarios")
    new_user_share: float = _p(0.1, "Share of users who join mid-period (no events before their join day).", "scenarios")
    new_account_label_days: int = _p(7, "A new user's first this-many days are labelled new_account.", "scenarios")
    travel_share: float = _p(0.08, "Share of users who travel once during the period.", "scenarios")
    travel_days_range: tuple = _p((3, 7), "Inclusive range of trip length, days.", "scenarios")
    travel_destinations: tuple = _p(
        (("ES", 1), ("FR", 1), ("IT", 1), ("GR", 2), ("TH", 7), ("ID", 8), ("MX", -6), ("CA", -5), ("AE", 4), ("ZA", 2), ("AR", -3), ("PT", 0), ("NZ", 12), ("KR", 9)),
        "(country, fixed UTC offset hours) a traveller may visit; the local clock follows the destination offset.",
        "scenarios",
    )
    sleep_music_share: float = _p(0.03, "Share of users who play sleep music every night.", "scenarios")
    sleep_hours_range: tuple = _p((6.0, 9.0), "Uniform range of a night's sleep-music hours (starts 00:00-01:00 local).", "scenarios")
    sleep_user_max_daily_plays: int = _p(100, "Cap on a sleep-music user's daytime plays, so that the night fits in the day.", "scenarios")
    superfan_share: float = _p(0.05, "Share of users who are super-fans with one release day in the period.", "scenarios")
    superfan_multiplier_range: tuple = _p((3.0, 5.0), "Uniform range of the release-day volume multiplier; the extra plays are the top artist's newest tracks.", "scenarios")
    steady_heavy_share: float = _p(0.03, "Share of steady heavy listeners (every day, low variance).", "scenarios")
    steady_heavy_plays_range: tuple = _p((120.0, 200.0), "Uniform range of a steady heavy listener's daily plays.", "scenarios")
    steady_heavy_day_sigma: float = _p(0.08, "Day-to-day lognormal sigma of a steady heavy listener.", "scenarios")

    # -- anomalies -----------------------------------------------------------------------
    anomaly_types: tuple = _p(ANOMALY_TYPES, "Anomaly types injected, in roughly equal numbers.", "anomalies")
    anomaly_severity: tuple = _p(
        (
            ("marathon", "obvious"),
            ("stream_farm", "obvious"),
            ("thin_farm", "obvious"),
            ("scheduled_bot", "subtle"),
            ("night_short", "subtle"),
            ("account_takeover", "obvious"),
            ("account_sharing", "subtle"),
            ("geo_hop", "subtle"),
            ("skip_storm", "obvious"),
            ("loop", "obvious"),
            ("sudden_drop", "subtle"),
        ),
        "Severity tag of each anomaly type.",
        "anomalies",
    )
    min_history_days: int = _p(14, "An anomaly is injected only after this many days of the user's history in the period.", "anomalies")
    marathon_hours_range: tuple = _p((20.0, 23.0), "marathon: hours of continuous full plays.", "anomalies")
    farm_plays_range: tuple = _p((1000, 2800), "stream_farm: plays in the day (capped by what fits in the active hours).", "anomalies")
    farm_active_hours_range: tuple = _p((18.0, 24.0), "stream_farm: active hours in the day.", "anomalies")
    farm_track_seconds_range: tuple = _p((31, 45), "Length of short filler tracks, seconds: just above the 30 s a play needs to count as a stream.", "anomalies")
    n_farm_pools: int = _p(4, "stream_farm: number of track pools; several farm accounts share one pool.", "anomalies")
    farm_pool_tracks_range: tuple = _p((30, 300), "stream_farm: tracks per pool (from 1-3 artists).", "anomalies")
    thin_farm_plays_range: tuple = _p((500, 700), "thin_farm: plays spread around the clock over long-tail tracks.", "anomalies")
    thin_farm_play_seconds_range: tuple = _p((35, 100), "thin_farm: seconds each play lasts.", "anomalies")
    thin_farm_repeat_share: float = _p(0.15, "thin_farm: share of plays that repeat the previous track (tracks are played once or twice).", "anomalies")
    bot_block_hours_range: tuple = _p((4.0, 6.0), "scheduled_bot: length of the daily block, hours, starting on the hour at a fixed clock time per account.", "anomalies")
    bot_plays_range: tuple = _p((90, 110), "scheduled_bot: plays in the block, evenly spaced.", "anomalies")
    bot_track_seconds: tuple = _p((51, 56, 62, 68, 73), "scheduled_bot: the few distinct track lengths of bot albums, seconds.", "anomalies")
    bot_albums: int = _p(3, "scheduled_bot: albums the bot cycles through.", "anomalies")
    night_short_hours: tuple = _p((1, 5), "night_short: local hours [from, to) of the short-play block.", "anomalies")
    night_short_play_seconds_range: tuple = _p((31, 39), "night_short: seconds each night play lasts (stopped before 40 s).", "anomalies")
    night_short_minutes_share: float = _p(0.5, "night_short: share of the user's usual minutes moved into the night block (total minutes stay usual).", "anomalies")
    takeover_plays_range: tuple = _p((40, 120), "account_takeover: intruder plays, spread over a block in the owner's quiet hours.", "anomalies")
    takeover_block_hours: float = _p(2.5, "account_takeover: maximum length of the intruder block, hours.", "anomalies")
    geo_hop_countries_range: tuple = _p((2, 4), "geo_hop: unseen countries in the day.", "anomalies")
    skip_storm_skip_prob: float = _p(0.97, "skip_storm: probability that a play is skipped.", "anomalies")
    skip_storm_seconds_range: tuple = _p((1.0, 8.0), "skip_storm: seconds before a skip.", "anomalies")
    skip_storm_volume_range: tuple = _p((1.5, 3.0), "skip_storm: plays as a multiple of the usual count.", "anomalies")
    loop_hours_range: tuple = _p((3.0, 8.0), "loop: hours of one track on repeat.", "anomalies")
    sudden_drop_plays_range: tuple = _p((1, 5), "sudden_drop: plays on each dropped day.", "anomalies")
    sudden_drop_days_range: tuple = _p(
        (3, 10),
        "sudden_drop: consecutive days an account stays near silent (cut short by a day that cannot take it: "
        "travel, the holiday, another anomaly, the period's end).",
        "anomalies",
    )
    sudden_drop_min_usual_plays: float = _p(40.0, "sudden_drop: only users whose usual active day has at least this many plays, on the persona's lighter kind of day.", "anomalies")

    def __post_init__(self) -> None:
        if self.n_users < 1 or self.n_days < 1:
            raise ValueError("n_users and n_days must be positive")
        if not 0.0 <= self.anomaly_rate <= 0.2:
            raise ValueError("anomaly_rate must be within [0, 0.2]")
        unknown = set(self.anomaly_types) - set(ANOMALY_TYPES)
        if unknown:
            raise ValueError(f"unknown anomaly types: {sorted(unknown)}")
        if len(self.persona_weights) != len(PERSONAS):
            raise ValueError("persona_weights needs one weight per persona")
        if len(self.platform_weights) != len(self.platforms):
            raise ValueError("platform_weights needs one weight per platform")
        for name in ("persona_hour_weekday", "persona_hour_weekend"):
            if any(len(p) != 24 for p in getattr(self, name)):
                raise ValueError(f"{name}: 24 weights per persona")

    @property
    def end_date(self) -> date:
        from datetime import timedelta

        return self.start_date + timedelta(days=self.n_days)

    @property
    def severity(self) -> dict:
        return dict(self.anomaly_severity)


def config_fields():
    """The documented fields of :class:`SimulationConfig`, in declaration order."""
    return [f for f in fields(SimulationConfig)]
