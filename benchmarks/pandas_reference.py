"""REFERENCE ONLY: the user-day features, baselines and rule flags as a data scientist's pandas notebook.

This is *not* part of the pipeline. It is the baseline the benchmark compares the dbt models
against: load every event into one DataFrame, ``groupby`` per user and local day, time-based
``rolling`` windows per user for the point-in-time median/IQR baselines, and the ">= 2
independent families" rule. It follows the semantics of the dbt models
(``stg_listening__events``, ``int_user_entities_first_seen``, ``int_user_day_hours``,
``user_day_features``, ``user_day_baselines``, ``user_day_rule_flags``) closely enough that
:func:`compare_features` can check it against dbt's output on the same events.

The thresholds are read from ``dbt_project/dbt_project.yml`` (vars) and the signal list from
``dbt_project/macros/signals.sql``, so the reference and the models never disagree on
configuration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from ml.signals import DBT_PROJECT_DIR, dbt_var_defaults, deviation_signals

EVENT_COLUMNS = [
    "event_id", "user_id", "played_at", "ms_played", "track_id", "artist_id", "track_duration_ms", "skipped",
    "platform", "country",
]

# Features compared with dbt's user_day_features by the sanity check.
SIMPLE_FEATURES = [
    "play_count", "minutes_played", "distinct_tracks", "distinct_artists", "skip_rate", "short_play_share",
    "night_share", "active_hours", "median_play_seconds", "top_track_share",
]
DERIVED_FEATURES = [
    "longest_session_minutes", "new_track_share", "new_artist_share", "top_artist_share", "country_count",
    "platform_count", "new_country_count", "new_platform_count", "day_old_country_count", "inter_play_gap_cv",
    "distinct_play_length_share",
    "distinct_stream_length_share",
    "overlapping_play_share", "unusual_hour_share", "abroad_play_share", "new_context_age_days", "new_context_new_artist_share",
    "recent_platform_age_days", "recent_platform_play_count", "recent_platform_new_artist_play_count",
    "observed_until_hour",
    "back_to_back_repeat_minutes",
]


# --------------------------------------------------------------------------- configuration


def _scale(signal: dict, values):
    """ln(1 + x) for log-scale signals (amounts vary by factors), x otherwise."""
    return np.log1p(values) if signal["log_scale"] else values


FAMILIES = ["volume", "continuity", "timing", "content", "engagement", "context"]


# --------------------------------------------------------------------------- the notebook


@dataclass
class ReferenceResult:
    features: pd.DataFrame
    baselines: pd.DataFrame
    flags: pd.DataFrame
    seconds: dict = field(default_factory=dict)


def localise(events: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    """Cell 1: plays in local time (stg_listening__events): the day on the user's clock, the hour on
    the clock of the play's country when that is known and not the user's home country."""
    df = events.merge(users[["user_id", "timezone"]], on="user_id", how="left")
    df["timezone"] = df["timezone"].fillna("UTC")
    zones = pd.read_csv(DBT_PROJECT_DIR / "seeds" / "time_zone_countries.csv", keep_default_na=False)
    home = df["timezone"].map(zones.set_index("time_zone")["country_code"])
    abroad_zone = df["country"].map(zones[zones["is_main_zone_of_country"]].set_index("country_code")["time_zone"])
    abroad = home.notna() & abroad_zone.notna() & (df["country"] != home)
    clock = df["timezone"].where(~abroad, abroad_zone)
    utc = df["played_at"].dt.tz_localize("UTC")

    def wall_clock(zone_of_row: pd.Series) -> pd.Series:
        local = pd.Series(pd.NaT, index=df.index, dtype="datetime64[us]")
        for zone, rows in df.groupby(zone_of_row).groups.items():
            local.loc[rows] = utc.loc[rows].dt.tz_convert(zone).dt.tz_localize(None).astype("datetime64[us]")
        return local

    df["played_at_local"] = wall_clock(df["timezone"])
    df["listen_date"] = df["played_at_local"].dt.normalize()
    df["local_hour"] = wall_clock(clock).dt.hour
    df["abroad"] = abroad
    df["play_seconds"] = df["ms_played"] / 1000.0
    df["started"] = (df["played_at"] - pd.Timestamp("1970-01-01")).dt.total_seconds()
    df["ended"] = df["started"] + df["play_seconds"]
    df["artist_id"] = df["artist_id"].fillna("unknown-artist:" + df["track_id"])
    # Unknown (a client that does not report skips) stays unknown: NaN, which means and counts skip.
    df["skipped"] = df["skipped"].astype("boolean").astype("Float64").astype(float)
    # A platform or country the source does not name (or names ZZ, the unknown region) is none at
    # all: never new, never one more in a day (the dbt macro unknown_context). Pandas groupings skip NaN.
    df["country"] = df["country"].mask(df["country"].str.upper() == "ZZ")
    return df


def window(df: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    """The plays a dbt run over UTC partitions [start, end) sees: local days [start - 1, end), and
    when they are known until (the hour after the latest play it reads)."""
    ts = lambda d: pd.Timestamp(d)  # noqa: E731
    read = (df["played_at"] >= ts(start - timedelta(days=2))) & (df["played_at"] < ts(end + timedelta(days=1)))
    keep = read & (df["listen_date"] >= ts(start - timedelta(days=1))) & (df["listen_date"] < ts(end))
    df = df.loc[keep].copy()
    df["plays_known_until"] = df["played_at"].max().floor("h") + pd.Timedelta(hours=1) if keep.any() else pd.NaT
    return df


def user_day_features(df: pd.DataFrame, v: dict) -> pd.DataFrame:
    """Cell 2: one row per user and local day (user_day_features)."""
    keys = ["user_id", "listen_date"]

    # novelty: the first local day each user played each track / artist / country / platform
    for entity in ["track_id", "artist_id", "country", "platform"]:
        first = df.groupby(["user_id", entity])["listen_date"].transform("min")
        df[f"is_new_{entity}"] = first == df["listen_date"]
        if entity in ("artist_id", "country", "platform"):  # kept for the pair of a new device and a new place
            df[f"first_{entity}"] = first

    # sequence within the day: gaps, sessions, overlaps
    # Plays starting in the same second: longest first, as the dbt model orders them.
    df = df.sort_values(["user_id", "listen_date", "started", "ended", "event_id"], ascending=[True, True, True, False, True])
    g = df.groupby(keys, sort=False)
    df["gap"] = g["started"].diff()
    df["latest_end"] = g["ended"].cummax()
    df["prev_end"] = df.groupby(keys, sort=False)["latest_end"].shift()
    df["session_start"] = df["prev_end"].isna() | (df["started"] - df["prev_end"] > v["session_gap_minutes"] * 60)
    # ends stamped to the whole minute (Spotify's account data) may seem to overlap by up to a minute
    stamped_to_the_minute = (df["prev_end"].round() % 60 == 0) & (df["ended"].round() % 60 == 0)
    shared_until = np.minimum(df["prev_end"], df["ended"])  # NaN (no play before) compares False
    df["overlapping"] = shared_until > df["started"] + v["overlap_tolerance_seconds"] + np.where(stamped_to_the_minute, 60, 0)
    # on a schedule: the same interval as the one before although the two plays before differ in
    # length, or are different tracks both stopped before their end (or of unknown lengths)
    df["length"] = df["ended"] - df["started"]
    df["may_be_cut_short"] = df["track_duration_ms"].isna() | (df["play_seconds"] < df["track_duration_ms"] / 1000.0 - 1)
    g = df.groupby(keys, sort=False)
    previous_interval = g["gap"].shift()
    previous_length_change = g["length"].shift() - g["length"].shift(2)
    previous_plays_may_be_cut_short = (
        g["may_be_cut_short"].shift(fill_value=False)
        & g["may_be_cut_short"].shift(2, fill_value=False)
        & (g["track_id"].shift() != g["track_id"].shift(2))
    )
    # not a play stamped into the same minute as the one before: the interval is a difference of lengths
    same_stamped_minute = stamped_to_the_minute & (df["ended"].round() == df["prev_end"].round())
    df["metronomic"] = ~same_stamped_minute & (df["gap"] > 1) & ((df["gap"] - previous_interval).abs() <= 1) & (
        (previous_length_change.abs() > 1)
        | (previous_plays_may_be_cut_short & (df["gap"] >= v["min_stopped_schedule_seconds"]))
    )
    # on repeat: the time of a play of the same track as the play just before it
    df["back_to_back_repeat_seconds"] = df["length"].where(df["track_id"] == g["track_id"].shift(), 0.0)
    df["session"] = df.groupby(keys, sort=False)["session_start"].cumsum()
    sessions = df.groupby(keys + ["session"]).agg(first=("started", "min"), last=("ended", "max"))
    sessions["minutes"] = (sessions["last"] - sessions["first"]) / 60.0
    longest = sessions.groupby(level=[0, 1])["minutes"].max().rename("longest_session_minutes")

    df["short"] = df["play_seconds"] < v["short_play_seconds"]
    df["night"] = (df["local_hour"] >= v["night_start_hour"]) & (df["local_hour"] < v["night_end_hour"])
    df["play_second_bucket"] = np.floor(df["play_seconds"])
    # for the rules, lengths only among plays that count as streams: quick skips share a few lengths
    streamed = df["play_seconds"] >= v["royalty_play_seconds"]
    df["streamed_play_second_bucket"] = df["play_second_bucket"].where(streamed)
    df["streamed_track_id"] = df["track_id"].where(streamed)

    daily = df.groupby(keys).agg(
        timezone=("timezone", "max"),
        play_count=("track_id", "size"),
        ms_played=("ms_played", "sum"),
        distinct_tracks=("track_id", "nunique"),
        distinct_artists=("artist_id", "nunique"),
        skip_rate=("skipped", "mean"),
        skip_reported=("skipped", "count"),
        short_play_share=("short", "mean"),
        median_play_seconds=("play_seconds", "median"),
        night_share=("night", "mean"),
        active_hours=("local_hour", "nunique"),
        new_track_share=("is_new_track_id", "mean"),
        new_artist_share=("is_new_artist_id", "mean"),
        country_count=("country", "nunique"),
        platform_count=("platform", "nunique"),
        abroad_play_share=("abroad", "mean"),
        gap_std=("gap", "std"),
        gap_mean=("gap", "mean"),
        distinct_lengths=("play_second_bucket", "nunique"),
        distinct_streamed_lengths=("streamed_play_second_bucket", "nunique"),
        distinct_streamed_tracks=("streamed_track_id", "nunique"),
        overlapping_play_share=("overlapping", "mean"),
        metronomic_play_count=("metronomic", "sum"),
        back_to_back_repeat_seconds=("back_to_back_repeat_seconds", "sum"),
        session_count=("session_start", "sum"),
        first_play_started_epoch_seconds=("started", "min"),
        last_play_ended_epoch_seconds=("ended", "max"),
    )
    daily["minutes_played"] = daily.pop("ms_played") / 60000.0
    daily["skip_rate"] = daily["skip_rate"].where(daily.pop("skip_reported") >= v["min_skip_reported_share"] * daily["play_count"])
    daily["back_to_back_repeat_minutes"] = (daily.pop("back_to_back_repeat_seconds") / 60.0).round(6)
    daily["inter_play_gap_cv"] = (daily.pop("gap_std") / daily.pop("gap_mean").replace(0, np.nan)).round(6)
    # against the different lengths as many tracks have by chance, not one each
    spread = v["play_length_spread_seconds"]

    def lengths_beyond_chance(lengths: pd.Series, tracks: pd.Series) -> pd.Series:
        return (lengths / (spread * (1 - np.exp(-tracks / spread))).replace(0, np.nan)).clip(upper=1.0).round(6)

    daily["distinct_play_length_share"] = lengths_beyond_chance(daily.pop("distinct_lengths"), daily["distinct_tracks"])
    daily["distinct_stream_length_share"] = lengths_beyond_chance(
        daily.pop("distinct_streamed_lengths"), daily.pop("distinct_streamed_tracks")
    ).fillna(1.0)
    daily["top_track_share"] = df.groupby(keys + ["track_id"]).size().groupby(level=[0, 1]).max() / daily["play_count"]
    daily["top_artist_share"] = df.groupby(keys + ["artist_id"]).size().groupby(level=[0, 1]).max() / daily["play_count"]
    daily["longest_session_minutes"] = longest

    # the local clock hour up to which the day's plays are all in: 24 once the day is over
    known_until = df["plays_known_until"].iloc[0] if len(df) else pd.NaT
    known_local = daily["timezone"].map(
        {zone: known_until.tz_localize("UTC").tz_convert(zone).tz_localize(None) for zone in daily["timezone"].unique()}
    )
    day = daily.index.get_level_values("listen_date")
    daily["observed_until_hour"] = np.where(known_local.dt.normalize() > day, 24, known_local.dt.hour)

    # new countries / platforms (entities whose first day is this day), and countries first played
    # the day before, played again
    country_age = (df["listen_date"] - df["first_country"]).dt.days
    for entity, column, plays in [
        ("country", "new_country_count", df["is_new_country"]),
        ("platform", "new_platform_count", df["is_new_platform"]),
        ("country", "day_old_country_count", country_age == 1),
    ]:
        entities = df.loc[plays, keys + [entity]].drop_duplicates()
        daily[column] = entities.groupby(keys).size()
        daily[column] = daily[column].fillna(0).astype("int64")

    # a device and a place that appeared together: a play whose country and platform were both
    # first played on the same day, within new_context_days
    recent_pair = (df["first_country"] == df["first_platform"]) & (country_age < v["new_context_days"])
    daily["new_context_age_days"] = country_age.where(recent_pair).groupby([df["user_id"], df["listen_date"]]).min()
    # whose music the pair plays: its plays by artists first played once it had appeared
    pair_new_artist = (df["first_artist_id"] >= df["first_country"]).astype(float).where(recent_pair)
    daily["new_context_new_artist_share"] = pair_new_artist.groupby([df["user_id"], df["listen_date"]]).mean()
    # whose music the platforms first played that day or in the days before play (a second
    # listener's device), once the account had played for min_baseline_days (its first devices are
    # all new): per day, the recent platform playing the most music first played since it appeared
    platform_age = (df["listen_date"] - df["first_platform"]).dt.days
    account_first_day = df.groupby("user_id")["first_platform"].transform("min")
    after_first_week = df["first_platform"] >= account_first_day + pd.Timedelta(days=v["min_baseline_days"])
    recent = df.loc[
        (platform_age >= 0) & (platform_age < v["recent_platform_days"]) & after_first_week, keys + ["platform"]
    ].assign(age=platform_age, new_artist=(df["first_artist_id"] >= df["first_platform"]).astype(int))
    per_platform = recent.groupby(keys + ["platform"]).agg(
        recent_platform_age_days=("age", "max"),
        recent_platform_play_count=("age", "size"),
        recent_platform_new_artist_play_count=("new_artist", "sum"),
    ).reset_index()
    most_music = per_platform.sort_values(
        keys + ["recent_platform_new_artist_play_count", "platform"], ascending=[True, True, False, True]
    ).drop_duplicates(keys).set_index(keys)
    for column in ["recent_platform_age_days", "recent_platform_play_count", "recent_platform_new_artist_play_count"]:
        daily[column] = most_music[column]
    daily[["recent_platform_play_count", "recent_platform_new_artist_play_count"]] = (
        daily[["recent_platform_play_count", "recent_platform_new_artist_play_count"]].fillna(0).astype("int64")
    )

    # unusual hours: hours of the day the user played nothing in during the baseline window (the N
    # days before the gap of G days just before the day)
    gap = pd.Timedelta(days=v["baseline_gap_days"])
    hours = df.groupby(["user_id", "local_hour", "listen_date"]).size().rename("plays").reset_index()
    hours["window_end"] = (hours["listen_date"] - gap - pd.Timedelta(days=1)).astype(hours["listen_date"].dtype)
    played = hours[["user_id", "local_hour", "listen_date"]].rename(columns={"listen_date": "previous"})
    hours = pd.merge_asof(
        hours.sort_values("window_end"), played.sort_values("previous"),
        left_on="window_end", right_on="previous", by=["user_id", "local_hour"],
    )
    window_start = hours["listen_date"] - gap - pd.Timedelta(days=v["baseline_window_days"])
    hours["unusual_plays"] = np.where(hours["previous"].isna() | (hours["previous"] < window_start), hours["plays"], 0)
    unusual = hours.groupby(["user_id", "listen_date"])[["unusual_plays", "plays"]].sum()
    daily["unusual_hour_share"] = unusual["unusual_plays"] / unusual["plays"]

    for column in ["skip_rate", "short_play_share", "night_share", "new_track_share", "new_artist_share", "overlapping_play_share"]:
        daily[column] = daily[column].astype(float)
    return daily.reset_index()


def user_day_hours(df: pd.DataFrame) -> pd.DataFrame:
    """Plays per user, local day and local hour (int_user_day_hours)."""
    return df.groupby(["user_id", "listen_date", "local_hour"]).size().rename("play_count").reset_index()


def user_day_baselines(features: pd.DataFrame, day_hours: pd.DataFrame, signals: list[dict], v: dict) -> pd.DataFrame:
    """Cell 3: point-in-time rolling median and IQR/1.349 over the N days before the gap of G days
    just before each day (user_day_baselines)."""
    metrics = [s["metric"] for s in signals]
    window, gap = f"{v['baseline_window_days']}D", pd.Timedelta(days=v["baseline_gap_days"])
    f = features.sort_values(["user_id", "listen_date"]).set_index("listen_date")
    f["one"] = 1.0
    # A day with a track on repeat for long: counted over the baseline days, a looping habit.
    f["looped"] = (f["back_to_back_repeat_minutes"] >= v["min_loop_back_to_back_minutes"]).astype(float)
    scaled = [f"scaled_{m}" for m in metrics]
    for s in signals:  # spreads of log-scale signals are in log units
        f[f"scaled_{s['metric']}"] = _scale(s, f[s["metric"]])
    # Each day asks at its own date less the gap: a row without values, where a left-closed window ends.
    asks = f[["user_id"]].assign(asked_for=f.index, one=0.0)
    asks.index = asks.index - gap
    rows = pd.concat([f[["user_id", *metrics, *scaled, "one", "looped"]], asks]).rename_axis("at").reset_index()
    rows = rows.sort_values(["user_id", "at"], kind="stable").reset_index(drop=True)
    roll = rows.set_index("at").groupby("user_id")[metrics + scaled + ["one", "looped"]].rolling(
        window, closed="left", min_periods=1
    )
    asked = rows["asked_for"].notna().to_numpy()
    index = pd.MultiIndex.from_arrays([rows["user_id"][asked], rows["asked_for"][asked]], names=["user_id", "listen_date"])

    def at_asks(result: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
        # rows are sorted by user and date, so the groups' results come in the rows' order
        picked = result[asked]
        picked.index = index
        return picked

    count = at_asks(roll["one"].sum())
    looped_days = at_asks(roll["looped"].sum())
    median = at_asks(roll[metrics].median())
    q75 = at_asks(roll[scaled].quantile(0.75))
    q25 = at_asks(roll[scaled].quantile(0.25))
    days_before = f.groupby("user_id")["one"].rolling(window, closed="left", min_periods=1).sum()
    baselines = pd.DataFrame({
        "baseline_days": count.fillna(0).astype("int64"),
        "history_days": days_before.reindex(index).fillna(0).astype("int64"),
        "looped_days": looped_days.fillna(0).astype("int64"),
    })
    # The day's only session began the day before (within a session gap of the previous day's last play).
    days = f.reset_index()
    previous = days.groupby("user_id")[["listen_date", "last_play_ended_epoch_seconds"]].shift()
    continues = (
        (days["session_count"] == 1)
        & (previous["listen_date"] == days["listen_date"] - pd.Timedelta(days=1))
        & (days["first_play_started_epoch_seconds"] - previous["last_play_ended_epoch_seconds"] <= v["session_gap_minutes"] * 60)
    )
    continues.index = pd.MultiIndex.from_frame(days[["user_id", "listen_date"]])
    baselines["continues_previous_day_session"] = continues.reindex(baselines.index)
    for m in metrics:
        baselines[f"usual_{m}"] = median[m]
        baselines[f"spread_{m}"] = (q75[f"scaled_{m}"] - q25[f"scaled_{m}"]) / 1.349
    for s in signals:
        if s["light_day_quantile"]:
            baselines[f"light_day_{s['metric']}"] = at_asks(roll[s["metric"]].quantile(s["light_day_quantile"]))
        if s["record_floor_var"]:  # the most on any baseline day
            baselines[f"record_{s['metric']}"] = at_asks(roll[s["metric"]].max())
    # A day not over in the data: the same statistics of the baseline days' plays before its observed hour.
    incomplete = features.loc[features["observed_until_hour"] < 24, ["user_id", "listen_date", "observed_until_hour"]]
    history = incomplete.merge(day_hours, on="user_id", suffixes=("", "_history"))
    history = history[
        (history["listen_date_history"] < history["listen_date"] - gap)
        & (history["listen_date_history"] >= history["listen_date"] - gap - pd.Timedelta(days=v["baseline_window_days"]))
    ]
    history["plays_before"] = history["play_count"].where(history["local_hour"] < history["observed_until_hour"], 0)
    per_day = history.groupby(["user_id", "listen_date", "listen_date_history"])["plays_before"].sum().groupby(level=[0, 1])
    light_day_quantile = next(s["light_day_quantile"] for s in signals if s["metric"] == "play_count")
    so_far = pd.DataFrame({
        "usual_play_count_so_far": per_day.median(),
        "light_day_play_count_so_far": per_day.quantile(light_day_quantile),
    })
    return baselines.join(so_far).reset_index()


def user_day_rule_flags(features: pd.DataFrame, baselines: pd.DataFrame, signals: list[dict], v: dict) -> pd.DataFrame:
    """Cell 4: robust z-scores minus the population's day effect; flag when >= N families deviate."""
    df = features.merge(baselines, on=["user_id", "listen_date"])
    has_baseline = df["baseline_days"] >= v["min_baseline_days"]
    for s in signals:
        m = s["metric"]
        spread = df[f"spread_{m}"].fillna(0).clip(lower=s["scale_floor"])
        df[f"raw_z_{m}"] = ((_scale(s, df[m]) - _scale(s, df[f"usual_{m}"])) / spread).where(df["baseline_days"] >= v["min_days_for_deviation"])
    raw_z = [f"raw_z_{s['metric']}" for s in signals]
    # The population's day: median deviation over users (the shift) and 1.4826 x MAD around it
    # (the spread); with too few users no effect (shift 0, spread 1). Deviations are shifted, and
    # divided by the spread when it is wider than 1.
    by_day = df.groupby("listen_date")[raw_z]
    enough = by_day.count() >= v["min_users_for_day_effect"]
    shift = by_day.median().where(enough, 0.0)
    centred = df[raw_z] - shift.reindex(df["listen_date"]).to_numpy()
    spread = (1.4826 * centred.abs().groupby(df["listen_date"]).median()).where(enough, 1.0)
    deviations = centred / spread.reindex(df["listen_date"]).clip(lower=1.0).to_numpy()
    # What the user usually has played by the day's observed hour: the whole day's once it is over.
    expected = df["usual_play_count_so_far"].fillna(df["usual_play_count"])
    expected_light_day = df["light_day_play_count_so_far"].fillna(df["light_day_play_count"])

    def day_median_ratio(metric: str, usual: pd.Series) -> pd.Series:
        """Per row, the day's median of metric / usual over users with a deviation (1 with too few users)."""
        ratio = (df[metric] / usual.where(usual != 0)).where(df[f"raw_z_{metric}"].notna())
        by_day = ratio.groupby(df["listen_date"]).median().where(enough[f"raw_z_{metric}"], 1.0).fillna(1.0)
        return by_day.reindex(df["listen_date"])

    # The collapse reads the day's median share of the usual play count (at most 1).
    day_play_ratio = day_median_ratio("play_count", expected).clip(upper=1.0).to_numpy()
    # A record is read against the day's median ratio of the value to the usual (at least 1).
    day_ratios = {
        s["metric"]: day_median_ratio(s["metric"], df[f"usual_{s['metric']}"]).clip(lower=1.0).to_numpy()
        for s in signals if s["record_floor_var"]
    }
    families = {family: pd.Series(False, index=df.index) for family in FAMILIES}
    beyond_record: dict[str, pd.Series] = {}
    for s in signals:
        m = s["metric"]
        z = deviations[f"raw_z_{m}"]
        df[f"{m}_z"] = z
        if not s["rule"]:  # a forest-only signal
            continue
        change = df[m] - df[f"usual_{m}"]
        threshold, min_change = v["deviation_z_threshold"], v[s["min_change_var"]]
        if s["direction"] == "up":
            deviates = (z >= threshold) & (change >= min_change)
        elif s["direction"] == "down":
            deviates = (z <= -threshold) & (change <= -min_change)
            if s["below_var"]:  # a value at or above it is no fall, whatever the usual
                deviates &= df[m] < v[s["below_var"]]
        else:
            deviates = (z.abs() >= threshold) & (change.abs() >= min_change)
        deviates = deviates.fillna(False) & has_baseline
        if s["record_floor_var"]:  # far beyond the user's own record, however widely their days swing
            beyond_record[m] = (
                (df[m] >= v[s["record_floor_var"]])
                & (df[m] >= v["record_factor"] * df[f"record_{m}"] * day_ratios[m])
                & has_baseline
            )
            deviates |= beyond_record[m]
        if s["ceiling_var"]:  # beyond a human limit whatever the baseline, new account or not
            deviates |= df[m] >= v[s["ceiling_var"]]
        if s["min_count_var"]:  # a share near zero for everyone: count the plays with the property
            deviates |= (df[f"usual_{m}"] == 0) & has_baseline  # the user's usual day has none
            deviates &= (df[m] * df["play_count"]).round(6) >= v[s["min_count_var"]]
        elif s["family"] != "volume":  # shares of a handful of plays say nothing about a pattern
            enough_plays = df["play_count"] >= v["min_plays_for_pattern_signals"]
            if s["per_play"]:  # ... unless the change is beyond the sampling error of so few plays
                enough_plays |= (
                    (change.abs() >= v["few_plays_share_standard_errors"] * 0.5 / np.sqrt(df["play_count"]))
                    & (df["play_count_z"] > -v["deviation_z_threshold"])
                )
            deviates &= enough_plays
        df[f"is_{m}_deviation"] = deviates
        families[s["family"]] |= df[f"is_{m}_deviation"]
    # "Never seen before" needs some history (a day), not a baseline. The hop goes on the next day
    # among as many countries first played the day before, when that day had history of its own.
    country_hopping = ((df["history_days"] >= 1) & (df["new_country_count"] >= v["min_new_countries"])) | (
        (df["history_days"] >= 2) & (df["day_old_country_count"] >= v["min_new_countries"])
    )
    # Days of history grow by at most one a day. Alone, the pair must have appeared once the account
    # had a week of history, and counts for new_context_alone_days, or while it is new when its music
    # is nearly all someone else's; beside plays from another country
    # (the owner at home meanwhile), from a day with some history, for as long as it stays new.
    # The pair counts only while it plays someone else's music (the owner's own is a trip).
    plays_someone_elses_music_only = df["new_context_new_artist_share"] >= v["min_intruder_alone_new_artist_share"]
    new_context = country_hopping | (
        (df["new_context_new_artist_share"] >= v["min_new_context_new_artist_share"])
        & (
            (
                (df["history_days"] >= v["min_baseline_days"] + df["new_context_age_days"])
                & (
                    (df["new_context_age_days"] < v["new_context_alone_days"]) | plays_someone_elses_music_only
                )
            )
            | ((df["history_days"] >= 1 + df["new_context_age_days"]) & (df["country_count"] >= 2))
        )
    )
    # Overlapping plays on days at most a few days apart, one run held to the usual before its
    # first day: from a usual of none, each day of the run is the change.
    overlapping = df.loc[
        (df["overlapping_play_share"] * df["play_count"]).round(6) >= v["min_overlapping_plays"], ["user_id", "listen_date"]
    ].sort_values(["user_id", "listen_date"])
    since_previous = overlapping.groupby("user_id")["listen_date"].diff().dt.days
    overlap_run = (~(since_previous <= 1 + v["max_overlap_gap_days"])).astype(int).groupby(overlapping["user_id"]).cumsum()
    usual_before = df.loc[overlapping.index, "usual_overlapping_play_share"].where(has_baseline[overlapping.index])
    lasting_overlap = pd.Series(False, index=df.index)
    lasting_overlap[overlapping.index] = (
        usual_before.groupby([overlapping["user_id"], overlap_run]).transform(lambda days: days.iloc[0]) == 0
    )
    # Someone else's music on a recent device.
    second_listener_platform = (
        (df["recent_platform_new_artist_play_count"] >= v["min_recent_platform_new_artist_plays"])
        & (
            df["recent_platform_new_artist_play_count"]
            >= v["min_intruder_alone_new_artist_share"] * df["recent_platform_play_count"]
        )
    )
    families["context"] |= new_context | lasting_overlap | second_listener_platform
    # A substantial volume collapsing: the volume family's evidence, not decisive.
    def under_a_share_of(usual: pd.Series) -> pd.Series:
        return (
            has_baseline
            & (usual >= v["min_usual_plays_for_collapse"])
            & (df["play_count"] <= v["volume_collapse_share"] * usual * day_play_ratio)
            & (df["abroad_play_share"] < 0.5)
            & ~df["continues_previous_day_session"]
        ).fillna(False)

    near_silent = under_a_share_of(expected)
    # Quiet: the same against the highest usual of the baseline window before the day, which a
    # silence's own days cannot lower.
    highest_usual = (
        df.set_index("listen_date")
        .sort_index()
        .groupby("user_id")["usual_play_count"]
        .rolling(f"{int(v['baseline_window_days']) + 1}D")
        .max()
        .rename("highest_usual")
    )
    highest_usual = df[["user_id", "listen_date"]].merge(highest_usual.reset_index(), how="left")["highest_usual"]
    highest_usual.index = df.index
    quiet = under_a_share_of(
        expected * (highest_usual / df["usual_play_count"].where(df["usual_play_count"] != 0)).clip(lower=1).fillna(1)
    )
    under_light_day = df["play_count"] <= v["volume_collapse_light_day_share"] * expected_light_day * day_play_ratio
    volume_collapse = (
        near_silent
        & under_light_day
        & (df["play_count_z"] <= -v["deviation_z_threshold"])  # far outside the user's own spread
    ).fillna(False)
    # Near silent on this many days in a row or more (a few days without any play between two of them
    # do not break it; from its first near-silent day, quiet days go on with it), each under the
    # light-day share of the light day before the silence began. It begins on a near-silent day under
    # its own light day's share.
    played = (
        df[["user_id", "listen_date", "play_count"]]
        .assign(quiet=quiet, begins_silence=near_silent & under_light_day)
        .sort_values(["user_id", "listen_date"])
    )
    by_user = played.groupby("user_id")
    goes_on = (
        played["quiet"]
        & by_user["quiet"].shift(fill_value=False).astype(bool)
        & ((played["listen_date"] - by_user["listen_date"].shift()).dt.days <= 1 + v["max_silent_gap_days"])
    )
    run = (~goes_on).astype(int).groupby(played["user_id"]).cumsum()
    has_begun = played["begins_silence"].astype(int).groupby([played["user_id"], run]).cummax().astype(bool)
    silent = played[played["quiet"] & has_begun]
    silent_run = [silent["user_id"], run[silent.index]]
    run_light_day = expected_light_day[silent.index].groupby(silent_run).transform("first")
    silent_day_ratio = pd.Series(day_play_ratio, index=df.index)[silent.index]
    stayed_under = (
        (silent["play_count"] <= v["volume_collapse_light_day_share"] * run_light_day * silent_day_ratio)
        .astype(int)
        .groupby(silent_run)
        .cummin()
        .astype(bool)
    )
    near_silent_days = silent.groupby(silent_run).cumcount() + 1
    lasting_collapse = pd.Series(False, index=df.index)
    lasting = stayed_under & (near_silent_days >= int(v["min_lasting_collapse_days"]))
    lasting_collapse[silent.index] = lasting
    # Once a run lasts, the days it began with are flagged too.
    lasting_from = silent["listen_date"].where(lasting).groupby(silent_run).transform("min")
    silence_began_lasting = pd.Series(False, index=df.index)
    silence_began_lasting[silent.index] = (lasting_from > silent["listen_date"]).fillna(False)
    families["volume"] |= volume_collapse | lasting_collapse | silence_began_lasting
    machine_timed = df["metronomic_play_count"] >= v["min_metronomic_plays"]  # a machine's schedule: no baseline needed
    machine_cut = (  # streams cut to a handful of lengths whatever their tracks: a machine's cut
        (df["distinct_stream_length_share"] <= v["max_machine_cut_stream_length_share"])
        & (df["play_count"] >= v["min_plays_for_pattern_signals"])
    )
    families["engagement"] |= machine_timed | machine_cut
    for family in FAMILIES:
        df[f"is_{family}_signal"] = families[family]
    # More active hours than usual cover more of the clock: timing then is no independent evidence;
    # nor on a quiet day whose plays are the previous night's session running on past midnight;
    # nor is continuity when one session shorter than a working day is the day's volume, nor
    # engagement when the skips are of artists never played before (previewing new music).
    previewing = (
        (df["is_skip_rate_deviation"] | (df["is_short_play_share_deviation"] & (df["skip_rate"] >= df["short_play_share"])))
        & df["is_new_artist_share_deviation"]
        & ~(df["is_distinct_stream_length_share_deviation"] | machine_timed | machine_cut)
    )
    counted = {
        **families,
        "timing": families["timing"]
        & ~df["is_active_hours_deviation"]
        & ~(df["continues_previous_day_session"] & families["volume"] & (df["play_count"] < expected)).fillna(False),
        "continuity": families["continuity"]
        & ~(families["volume"] & (df["longest_session_minutes"] < v["min_session_minutes_beside_volume"])),
        "engagement": families["engagement"] & ~previewing,
    }
    df["rule_signal_count"] = sum(counted[f].astype(int) for f in FAMILIES)
    # One track for hours, its share deviating (which holds the half-the-plays ceiling and the plays
    # a share needs): at that ceiling, or below it in many plays of the track; much of it back to back.
    track_loop = (
        df["is_top_track_share_deviation"]
        & (df["top_track_share"] * df["minutes_played"] >= v["min_loop_minutes"])
        & (df["back_to_back_repeat_minutes"] >= v["min_loop_back_to_back_minutes"])
        & (
            (df["top_track_share"] >= v["max_human_top_track_share"])
            | ((df["top_track_share"] * df["play_count"]).round() >= v["min_loop_plays"])
        )
        & (df["looped_days"].fillna(0) <= v["max_loop_habit_share"] * df["baseline_days"].fillna(0))
    )
    # Decisive on their own: several new countries in one day or a new device in a new country
    # beside plays from another country, or alone playing nearly nothing but someone else's music,
    # someone else's music on a recent device, overlapping streams (day after day, from a usual of
    # none), one track looping through the day,
    # a day far beyond the user's own record, plays on a fixed schedule, streams cut to a handful of
    # lengths, near silence day after day (from its first day, once it lasts).
    far_beyond_record = beyond_record["minutes_played"].fillna(False)
    decisive = (
        country_hopping
        | (new_context & ((df["country_count"] >= 2) | plays_someone_elses_music_only))
        | second_listener_platform
        | far_beyond_record
        | df["is_overlapping_play_share_deviation"]
        | lasting_overlap
        | track_loop
        | machine_timed
        | machine_cut
        | lasting_collapse
        | silence_began_lasting
    )
    df["rule_flag"] = (df["rule_signal_count"] >= v["min_deviating_families"]) | decisive
    df["is_cold_start"] = ~has_baseline
    return df


def run_reference(events: pd.DataFrame, users: pd.DataFrame, start: date, end: date) -> ReferenceResult:
    """The whole notebook on events of the UTC partitions [start, end). Timings per cell in ``seconds``."""
    v, signals = dbt_var_defaults(), list(deviation_signals())
    seconds = {}
    t = time.perf_counter()
    df = window(localise(events, users), start, end)
    seconds["localise"] = time.perf_counter() - t
    t = time.perf_counter()
    features = user_day_features(df, v)
    day_hours = user_day_hours(df)
    del df
    seconds["features"] = time.perf_counter() - t
    t = time.perf_counter()
    baselines = user_day_baselines(features, day_hours, signals, v)
    seconds["baselines"] = time.perf_counter() - t
    t = time.perf_counter()
    flags = user_day_rule_flags(features, baselines, signals, v)
    seconds["flags"] = time.perf_counter() - t
    return ReferenceResult(features=features, baselines=baselines, flags=flags, seconds=seconds)


# --------------------------------------------------------------------------- sanity check


def compare_with_dbt(result: ReferenceResult, con) -> dict:
    """Max absolute difference between the reference and dbt's tables on the same user-days.

    ``con`` is a DuckDB connection to the warehouse dbt built. Returns per-column maxima for the
    features and baselines, row counts and the rule-flag agreement.
    """
    for table in ("user_day_features", "user_day_baselines", "user_day_rule_flags"):
        found = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'analytics' and table_name = ?", [table]
        ).fetchone()[0]
        if not found:
            raise RuntimeError(f"analytics.{table} does not exist: the dbt stage did not build it")
    dbt_features = con.execute("select * from analytics.user_day_features").df()
    dbt_flags = con.execute(
        "select user_id, listen_date, baseline_days, rule_signal_count, rule_flag from analytics.user_day_rule_flags"
    ).df()
    keys = ["user_id", "listen_date"]
    for frame in (dbt_features, dbt_flags):
        frame["listen_date"] = pd.to_datetime(frame["listen_date"])
    ours = result.features.copy()
    ours["listen_date"] = pd.to_datetime(ours["listen_date"])
    joined = ours.merge(dbt_features, on=keys, suffixes=("_pandas", "_dbt"), how="inner")
    report: dict = {
        "user_days_pandas": int(len(ours)),
        "user_days_dbt": int(len(dbt_features)),
        "user_days_matched": int(len(joined)),
        "max_abs_diff": {},
    }
    for column in SIMPLE_FEATURES + DERIVED_FEATURES:
        if f"{column}_dbt" not in joined:
            continue
        a = joined[f"{column}_pandas"].astype(float)
        b = joined[f"{column}_dbt"].astype(float)
        both_null = a.isna() & b.isna()
        diff = (a - b).abs().where(~both_null, 0.0)
        report["max_abs_diff"][column] = float(diff.fillna(np.inf).max()) if len(diff) else 0.0
    flags = result.flags[keys + ["baseline_days", "rule_signal_count", "rule_flag"]].copy()
    flags["listen_date"] = pd.to_datetime(flags["listen_date"])
    fj = flags.merge(dbt_flags, on=keys, suffixes=("_pandas", "_dbt"))
    dbt_baselines = con.execute("select * from analytics.user_day_baselines").df()
    dbt_baselines["listen_date"] = pd.to_datetime(dbt_baselines["listen_date"])
    ours_b = result.baselines.copy()
    ours_b["listen_date"] = pd.to_datetime(ours_b["listen_date"])
    bj = ours_b.merge(dbt_baselines, on=keys, suffixes=("_pandas", "_dbt"))
    baseline_diff = 0.0
    for column in ours_b.columns:
        if column.startswith(("usual_", "spread_", "light_day_", "record_")) and f"{column}_dbt" in bj:
            a, b = bj[f"{column}_pandas"].astype(float), bj[f"{column}_dbt"].astype(float)
            diff = (a - b).abs().where(~(a.isna() & b.isna()), 0.0).fillna(np.inf)
            baseline_diff = max(baseline_diff, float(diff.max()) if len(diff) else 0.0)
    report["baselines_max_abs_diff"] = baseline_diff
    report["baseline_days_max_abs_diff"] = float((fj["baseline_days_pandas"] - fj["baseline_days_dbt"]).abs().max() or 0)
    report["rule_flag_agreement"] = float((fj["rule_flag_pandas"] == fj["rule_flag_dbt"]).mean()) if len(fj) else 1.0
    report["family_count_agreement"] = (
        float((fj["rule_signal_count_pandas"] == fj["rule_signal_count_dbt"]).mean()) if len(fj) else 1.0
    )
    report["days_with_deviating_families"] = int((fj["rule_signal_count_dbt"] > 0).sum())
    report["rule_flags_pandas"] = int(fj["rule_flag_pandas"].sum())
    report["rule_flags_dbt"] = int(fj["rule_flag_dbt"].sum())
    report["simple_features_max_abs_diff"] = max(
        (report["max_abs_diff"].get(c, 0.0) for c in SIMPLE_FEATURES), default=0.0
    )
    return report
