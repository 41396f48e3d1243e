"""The Isolation Forest's feature matrix, built from ``analytics.user_day_rule_flags``.

Two kinds of columns, each present for a reason:

* **User-relative deviations** (the dbt ``<metric>_z`` columns): how far the day is from the
  user's own robust baseline, already net of that day's population-wide shift. A holiday or a big
  release moves everyone's z together and the dbt model subtracts that shift, so a
  population-wide spike day stays near 0 here. Clipped to ``[-Z_CLIP, Z_CLIP]`` so that one
  metric with a tiny spread cannot dominate every split, and null (no baseline yet: cold start)
  becomes 0, "no evidence of deviation", so a new account is scored on its absolute features only.
* **Absolute features**: what the day looks like regardless of the user's history. These catch
  days that no person produces (1,500 plays of 35 s, 22 h without a break) and give the model
  something to score cold-start days with. Volumes are ``log1p``-transformed because people
  differ by factors, not by amounts: a heavy listener's usual day must not look like a farm.

Interaction columns make "impossible combinations" separable by the forest's axis-parallel
splits: ``night_short_share`` (short plays *and* at night) is near 0 for nearly everyone, even
for night owls and for skippers, and ``context_novelty_breadth`` counts how many kinds of novelty
(new country, new platform, unusually many new artists) arrive on the same day. A single new
country while travelling scores 1, an account takeover 2-3.

Novelty needs history: on an account's first days every track, artist, country and platform is
"new". The novelty columns are therefore weighted by ``history_weight``
(``min(baseline_days, min_baseline_days) / min_baseline_days``), so that a brand-new account's
first busy days do not look like a takeover.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.signals import dbt_var_defaults, deviation_signals, signal_families

#: Metrics whose user-relative deviation ``<metric>_z`` (and usual value ``usual_<metric>``) dbt provides.
BASELINED_METRICS: tuple[str, ...] = (
    "minutes_played",
    "play_count",
    "skip_rate",
    "short_play_share",
    "median_play_seconds",
    "night_share",
    "active_hours",
    "longest_session_minutes",
    "top_track_share",
    "new_artist_share",
    "new_track_share",
    "inter_play_gap_cv",
    "distinct_play_length_share",
    "unusual_hour_share",
    "overlapping_play_share",
)

#: Robust deviations beyond this many scale units carry no extra information for the forest.
Z_CLIP = 8.0

#: A deviation at least this large counts as strong in the strong-deviation summary.
STRONG_DEVIATION_Z = 3.0

#: Families that say how much a user listens (volume) and for how long at a stretch (continuity), not
#: how. A day that departs from the user's pattern in these alone (a fan's long release day, a drop
#: to near silence) is judged by the rules, which hold the human ceilings and the user's light days;
#: the forest's flag is for days whose kind of listening changed (:func:`amount_only_departures`).
AMOUNT_FAMILIES = frozenset({"volume", "continuity"})

#: What skipping through music never played before moves: the skips themselves, shorter plays of
#: fewer distinct lengths, irregular gaps, and the new artists and tracks. A day departing in these
#: alone, skips strong and new artists strong or up by the rules' smallest change, is a listener
#: previewing new music (a release list, a friend's playlist), which the rules count once too
#: (:func:`previewing_departures`).
PREVIEW_METRICS = frozenset(
    {
        "skip_rate",
        "short_play_share",
        "median_play_seconds",
        "distinct_play_length_share",
        "inter_play_gap_cv",
        "new_artist_share",
        "new_track_share",
    }
)

#: The family of how the plays are played (skips, play lengths, pace): a change in it alone is one
#: family, which the rules never flag by itself (:func:`engagement_departures`).
ENGAGEMENT_FAMILY = "engagement"

#: Active baseline days after which novelty counts in full (the dbt ``min_baseline_days`` default).
MIN_BASELINE_DAYS = 7

#: Coefficient of variation of play gaps is capped here: above it the day is simply irregular.
GAP_CV_CAP = 5.0


@dataclass(frozen=True)
class Feature:
    """One column of the feature matrix.

    Attributes
    ----------
    name : str
        Column name in the matrix.
    metric : str
        The ``user_rule_flags`` column it is derived from, used to explain a score with the
        day's value and the user's usual value.
    why : str
        Why the column is there (what it lets the model see).
    """

    name: str
    metric: str
    why: str


_ABSOLUTE: tuple[Feature, ...] = (
    Feature("log_play_count", "play_count", "farms and bots play hundreds to thousands of times a day"),
    Feature("log_minutes_played", "minutes_played", "marathons: more listening time than a person has"),
    Feature("log_longest_session_minutes", "longest_session_minutes", "hours without a break"),
    Feature("log_median_play_seconds", "median_play_seconds", "30-second farming keeps plays just over the royalty limit"),
    Feature("short_play_share", "short_play_share", "share of plays shorter than the dbt var short_play_seconds: skipping or farming"),
    Feature("skip_rate", "skip_rate", "skip storms"),
    Feature("night_share", "night_share", "listening while the user would be asleep"),
    Feature("active_hour_share", "active_hours", "active hours / 24: a person sleeps, a bot does not"),
    Feature("top_track_share", "top_track_share", "one track on repeat (loops)"),
    Feature("top_artist_share", "top_artist_share", "one artist boosted"),
    Feature("distinct_track_ratio", "distinct_tracks", "distinct tracks / plays: low when a small pool is cycled"),
    Feature("distinct_play_length_share", "distinct_play_length_share", "low when plays are cut to a few lengths whatever the track (scripted), or skipped at once"),
    Feature("inter_play_gap_cv", "inter_play_gap_cv", "low when plays start at machine-regular intervals"),
    Feature("log_country_count", "country_count", "plays from several countries in one day (geo hopping)"),
    Feature("night_short_share", "short_play_share", "short plays at night: near 0 for people, high for night farms"),
    Feature(
        "context_novelty_breadth",
        "new_platform_count",
        "new country + new platform + many new artists on one day: takeover, not travel",
    ),
    Feature("new_platform_count", "new_platform_count", "a device the user never used before (history-weighted)"),
    Feature("new_artist_share", "new_artist_share", "share of plays of never-played artists (history-weighted)"),
    Feature(
        "extra_new_countries",
        "new_country_count",
        "new countries beyond the first in one day: one is a trip, several is geo hopping (as the rules' context family)",
    ),
)

#: Deviation summaries: a forest splits on one random column at a time, so an extreme in one of
#: thirty columns (a heavy listener near silent, every play skipped) is rarely isolated early.
#: The largest deviation and the number of strong ones put "any single extreme" in one column.
#: Strong deviations are counted per family of the rules (``ml.signals``), not per metric: a long
#: day of the user's usual listening moves minutes, plays and active hours together, which is one
#: departure, not three.
_SUMMARIES: tuple[Feature, ...] = (
    Feature("largest_deviation", "minutes_played", "the day's most extreme departure from the user's pattern, whichever metric"),
    Feature(
        "strong_deviation_families",
        "minutes_played",
        "how many independent families of metrics depart strongly (|z| >= 3) at once",
    ),
)

_DEVIATIONS: tuple[Feature, ...] = tuple(
    Feature(f"{m}_z", m, "deviation from the user's own baseline, net of the day's population shift")
    for m in BASELINED_METRICS
)

#: Every column of the matrix, in order.
FEATURES: tuple[Feature, ...] = _DEVIATIONS + _ABSOLUTE + _SUMMARIES

#: Volume deviations stay as they are on a day with few plays; every other metric of such a day is
#: a share of a handful of plays (one track at 100 %, every play skipped) and is weighted by
#: plays / (plays + PATTERN_EVIDENCE_PLAYS): a day of 10 plays counts half, 90 plays 90 %.
VOLUME_METRICS = ("minutes_played", "play_count")
PATTERN_EVIDENCE_PLAYS = 10.0

#: Columns :func:`build_feature_matrix` reads.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "user_id",
    "listen_date",
    "baseline_days",
    "play_count",
    "minutes_played",
    "distinct_tracks",
    "skip_rate",
    "short_play_share",
    "median_play_seconds",
    "night_share",
    "active_hours",
    "longest_session_minutes",
    "top_track_share",
    "top_artist_share",
    "new_artist_share",
    "new_country_count",
    "new_platform_count",
    "country_count",
    "inter_play_gap_cv",
    "distinct_play_length_share",
) + tuple(f"{m}_z" for m in BASELINED_METRICS)


def require_columns(frame: pd.DataFrame, columns: Iterable[str], *, what: str) -> None:
    """Raise ``ValueError`` naming every column of ``columns`` that ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing required column(s): {', '.join(missing)}")


def feature_names() -> list[str]:
    """Names of the feature matrix columns, in order."""
    return [f.name for f in FEATURES]


def feature_metrics() -> dict[str, str]:
    """Map of feature name to the source metric used when explaining a score."""
    return {f.name: f.metric for f in FEATURES}


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _strong_by_family(deviations: Mapping[str, np.ndarray], n_rows: int) -> dict[str, np.ndarray]:
    """Per signal family, whether each row has at least one |z| >= STRONG_DEVIATION_Z in it."""
    families = signal_families()
    strong_by_family: dict[str, np.ndarray] = {}
    for metric in BASELINED_METRICS:
        strong = np.abs(deviations[f"{metric}_z"]) >= STRONG_DEVIATION_Z
        family = families[metric]
        strong_by_family[family] = strong_by_family.get(family, np.zeros(n_rows, dtype=bool)) | strong
    return strong_by_family


def _deviations(X: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """The matrix's user-relative deviation columns, by name (``<metric>_z``)."""
    return {f"{m}_z": X[:, names.index(f"{m}_z")] for m in BASELINED_METRICS}


def amount_only_departures(X: np.ndarray, names: list[str]) -> np.ndarray:
    """Rows that depart strongly from the user's own pattern in :data:`AMOUNT_FAMILIES` and nowhere else.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        A matrix from :func:`build_feature_matrix`.
    names : list of str
        Its column names.

    Returns
    -------
    amount_only : ndarray of bool of shape (n_samples,)
        True where some deviation in an amount family is strong (|z| >= STRONG_DEVIATION_Z) and
        none outside those families is. A day without a baseline has no deviations: False.
    """
    strong_by_family = _strong_by_family(_deviations(X, names), len(X))
    in_amount, elsewhere = np.zeros(len(X), dtype=bool), np.zeros(len(X), dtype=bool)
    for family, strong in strong_by_family.items():
        if family in AMOUNT_FAMILIES:
            in_amount |= strong
        else:
            elsewhere |= strong
    return in_amount & ~elsewhere


def _previewing(frame: pd.DataFrame, deviations: Mapping[str, np.ndarray]) -> np.ndarray:
    """Skips rise strongly (or, for a listener who often skips, short plays rise strongly or by the
    rules' smallest change of a share, and the skip flag says at least as many plays were skipped) and
    so do the plays of artists never played before, at a listener's pace (the gaps between plays not
    strongly more regular than usual, as a machine's are).

    New artists rise strongly for the user, or by at least their rule signal's smallest change: a
    listener whose days often bring new artists has a wide spread of them, which a preview's new
    artists do not pass. Needs ``new_artist_share`` and ``short_play_share``, each with its
    ``usual_`` value, and ``skip_rate``.
    """
    require_columns(
        frame,
        ["new_artist_share", "usual_new_artist_share", "skip_rate", "short_play_share", "usual_short_play_share"],
        what="user-day frame",
    )
    new_artist_signal = next(s for s in deviation_signals() if s["metric"] == "new_artist_share")
    min_change = dbt_var_defaults()[new_artist_signal["min_change_var"]]
    change = _numeric(frame, "new_artist_share") - _numeric(frame, "usual_new_artist_share")
    with np.errstate(invalid="ignore"):
        new_artists = (deviations["new_artist_share_z"] >= STRONG_DEVIATION_Z) | (change >= min_change)
        # A user who often skips has a wide spread of skips, which a preview's do not pass; the skip
        # flag still says the day's short plays were skipped. Short plays count as the new artists
        # do: strongly, or up by the rules' smallest change of a share.
        short_change = _numeric(frame, "short_play_share") - _numeric(frame, "usual_short_play_share")
        skipped_short_plays = (
            (deviations["short_play_share_z"] >= STRONG_DEVIATION_Z) | (short_change >= min_change)
        ) & (_numeric(frame, "skip_rate") >= _numeric(frame, "short_play_share"))
    return (
        ((deviations["skip_rate_z"] >= STRONG_DEVIATION_Z) | skipped_short_plays)
        & new_artists
        & (deviations["inter_play_gap_cv_z"] > -STRONG_DEVIATION_Z)
    )


def previewing_departures(frame: pd.DataFrame, X: np.ndarray, names: list[str]) -> np.ndarray:
    """Rows that depart strongly from the user's own pattern only by skipping through artists never played before.

    Parameters
    ----------
    frame : DataFrame of shape (n_samples, n_columns)
        The rows of ``X``, with ``new_artist_share``, ``usual_new_artist_share``, ``skip_rate``,
        ``short_play_share`` and ``usual_short_play_share``.
    X, names
        As for :func:`amount_only_departures`.

    Returns
    -------
    previewing : ndarray of bool of shape (n_samples,)
        True where the skip rate rises strongly (z >= STRONG_DEVIATION_Z), or the short plays rise
        strongly or by the share's smallest change with a skip rate at least their share (a listener
        who often skips), the share of
        never-played artists rises strongly or by at least its rule signal's smallest change (dbt
        var ``min_share_change``), no metric outside :data:`PREVIEW_METRICS` deviates strongly,
        and the gaps between plays are not strongly more regular than usual (a machine's pace,
        not a listener's).
    """
    deviations = _deviations(X, names)
    elsewhere = np.zeros(len(X), dtype=bool)
    for metric in BASELINED_METRICS:
        if metric not in PREVIEW_METRICS:
            elsewhere |= np.abs(deviations[f"{metric}_z"]) >= STRONG_DEVIATION_Z
    return _previewing(frame, deviations) & ~elsewhere


def has_deviations(frame: pd.DataFrame) -> np.ndarray:
    """Rows with at least one deviation measured: a baseline long enough for a spread (the matrix
    reads an unmeasured deviation as 0, "no evidence", which is not "as usual")."""
    require_columns(frame, [f"{m}_z" for m in BASELINED_METRICS], what="user-day frame")
    return frame[[f"{m}_z" for m in BASELINED_METRICS]].notna().any(axis=1).to_numpy(dtype=bool)


def engagement_departures(frame: pd.DataFrame, X: np.ndarray, names: list[str]) -> np.ndarray:
    """Rows whose plays are played differently from the user's own: a change the rules cannot flag alone.

    The rules need two families; a change in how the plays are played (every play skipped, plays
    cut short, the same few lengths) is one family, engagement, however plain. It is where the
    forest's flag adds to the rules by itself. Not the pace between plays, which steadies with one
    long session (the rules leave it out for that, ``dbt_project/macros/signals.sql``).

    Parameters
    ----------
    frame : DataFrame of shape (n_samples, n_columns)
        The rows of ``X``: each engagement metric and its ``usual_<metric>``.
    X, names
        Its matrix, as for :func:`amount_only_departures`.

    Returns
    -------
    departs : ndarray of bool of shape (n_samples,)
        True where a metric of the :data:`ENGAGEMENT_FAMILY` departs as its rule signal counts a
        deviation, short of the evidence the rules ask of a day's plays (the matrix weighs it
        instead): strongly (|z| >= STRONG_DEVIATION_Z) in the direction the signal calls
        suspicious (more skips, shorter plays, not longer ones), by at least the signal's
        smallest change, and below its listened value where it has one (a median play of two
        minutes is a day of plays listened to), at the dbt vars' defaults; and the day is not a
        listener previewing new music (skips of never-played artists at a listener's pace, which
        the rules count as new content, once). A day without a baseline has no deviations: False.
    """
    signals = [
        s
        for s in deviation_signals()
        if s["family"] == ENGAGEMENT_FAMILY and s["metric"] in BASELINED_METRICS and s["metric"] != "inter_play_gap_cv"
    ]
    require_columns(
        frame, [c for s in signals for c in (s["metric"], f"usual_{s['metric']}")], what="user-day frame"
    )
    deviations, defaults = _deviations(X, names), dbt_var_defaults()
    departs = np.zeros(len(X), dtype=bool)
    for signal in signals:
        metric, direction = signal["metric"], signal["direction"]
        value = _numeric(frame, metric)
        z, change = deviations[f"{metric}_z"], value - _numeric(frame, f"usual_{metric}")
        if direction == "both":
            z, change = np.abs(z), np.abs(change)
        elif direction == "down":
            z, change = -z, -change
        with np.errstate(invalid="ignore"):
            deviates = (z >= STRONG_DEVIATION_Z) & (change >= defaults[signal["min_change_var"]])
            if signal["below_var"]:
                deviates &= value < defaults[signal["below_var"]]
        departs |= deviates
    return departs & ~_previewing(frame, deviations)


def build_feature_matrix(
    frame: pd.DataFrame, *, min_baseline_days: int = MIN_BASELINE_DAYS
) -> tuple[np.ndarray, list[str]]:
    """Turn user-day rule-flag rows into the Isolation Forest's feature matrix.

    Parameters
    ----------
    frame : DataFrame of shape (n_samples, n_columns)
        Rows of ``analytics.user_day_rule_flags``; must hold :data:`REQUIRED_COLUMNS`, extra
        columns are ignored.
    min_baseline_days : int, default=7
        Baseline days after which novelty features count in full; fewer days scale them down
        linearly (0 baseline days: novelty ignored, everything is new to a new account).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Finite float64 matrix, rows in the order of ``frame``.
    feature_names : list of str of length n_features

    Raises
    ------
    ValueError
        When required columns are missing (all of them are named).
    """
    require_columns(frame, REQUIRED_COLUMNS, what="user-day frame")
    col = {c: _numeric(frame, c) for c in REQUIRED_COLUMNS if c not in ("user_id", "listen_date")}
    baseline_days = np.nan_to_num(col["baseline_days"], nan=0.0)
    history_weight = np.clip(baseline_days / max(min_baseline_days, 1), 0.0, 1.0)
    plays = np.nan_to_num(col["play_count"], nan=0.0)

    def share(name: str) -> np.ndarray:
        return np.clip(np.nan_to_num(col[name], nan=0.0), 0.0, 1.0)

    def log_amount(name: str) -> np.ndarray:
        return np.log1p(np.clip(np.nan_to_num(col[name], nan=0.0), 0.0, None))

    new_artist = share("new_artist_share") * history_weight
    new_platform = np.clip(np.nan_to_num(col["new_platform_count"], nan=0.0), 0, 3) * history_weight
    new_country = np.clip(np.nan_to_num(col["new_country_count"], nan=0.0), 0, None)
    artist_z = np.nan_to_num(col["new_artist_share_z"], nan=0.0)
    # Count the kinds of novelty, not their amount: travel brings one (a country), a takeover several.
    breadth = ((new_country > 0).astype(float) + (new_platform > 0) + (artist_z >= 3.0)) * history_weight

    absolute = {
        "log_play_count": log_amount("play_count"),
        "log_minutes_played": log_amount("minutes_played"),
        "log_longest_session_minutes": log_amount("longest_session_minutes"),
        "log_median_play_seconds": log_amount("median_play_seconds"),
        "short_play_share": share("short_play_share"),
        "skip_rate": share("skip_rate"),
        "night_share": share("night_share"),
        "active_hour_share": np.clip(np.nan_to_num(col["active_hours"], nan=0.0) / 24.0, 0.0, 1.0),
        "top_track_share": share("top_track_share"),
        "top_artist_share": share("top_artist_share"),
        "distinct_track_ratio": np.divide(
            np.nan_to_num(col["distinct_tracks"], nan=0.0), plays, out=np.ones_like(plays), where=plays > 0
        ).clip(0.0, 1.0),
        "distinct_play_length_share": np.clip(np.nan_to_num(col["distinct_play_length_share"], nan=1.0), 0.0, 1.0),
        # A single play has no gaps: treat it as ordinary irregularity (1), not as machine-regular (0).
        "inter_play_gap_cv": np.clip(np.nan_to_num(col["inter_play_gap_cv"], nan=1.0), 0.0, GAP_CV_CAP),
        "log_country_count": log_amount("country_count"),
        "night_short_share": share("night_share") * share("short_play_share"),
        "context_novelty_breadth": breadth,
        "new_platform_count": new_platform,
        "new_artist_share": new_artist,
    }
    evidence = plays / (plays + PATTERN_EVIDENCE_PLAYS)
    for name in ("short_play_share", "skip_rate", "night_share", "top_track_share", "top_artist_share", "night_short_share"):
        absolute[name] = absolute[name] * evidence
    absolute["extra_new_countries"] = np.clip(new_country - 1, 0, 3) * history_weight
    deviations = {
        f"{m}_z": np.clip(np.nan_to_num(col[f"{m}_z"], nan=0.0, posinf=Z_CLIP, neginf=-Z_CLIP), -Z_CLIP, Z_CLIP)
        * (1.0 if m in VOLUME_METRICS else evidence)
        for m in BASELINED_METRICS
    }
    absolute_deviations = np.abs(np.column_stack(list(deviations.values()))) if len(frame) else np.zeros((0, 1))
    summaries = {
        "largest_deviation": absolute_deviations.max(axis=1) if len(frame) else np.zeros(0),
        "strong_deviation_families": sum(
            strong.astype(float) for strong in _strong_by_family(deviations, len(frame)).values()
        ),
    }
    names = feature_names()
    columns = {**deviations, **absolute, **summaries}
    X = np.column_stack([columns[n] for n in names]) if len(frame) else np.zeros((0, len(names)))
    return X.astype(np.float64), names
