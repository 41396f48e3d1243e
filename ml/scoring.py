"""Scoring user-days with a trained forest, and saying in words what drove each flagged score."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ml.features import (
    BASELINED_METRICS,
    REQUIRED_COLUMNS,
    amount_only_departures,
    build_feature_matrix,
    engagement_departures,
    feature_metrics,
    has_deviations,
    previewing_departures,
    require_columns,
)
from ml.model import TrainedModel
from ml.signals import dbt_var_defaults

SCORE_COLUMNS = [
    "user_id", "listen_date", "ml_score", "ml_flag", "ml_drivers", "model_version", "is_engagement_departure",
]

#: Features named in ``ml_drivers`` per flagged day.
N_DRIVERS = 3

_MINUTES = {"minutes_played", "longest_session_minutes"}
_SECONDS = {"median_play_seconds"}
_RATIOS = {"inter_play_gap_cv"}
_COUNTS = {"play_count", "distinct_tracks", "distinct_artists", "active_hours", "country_count",
           "platform_count", "new_country_count", "new_platform_count"}

#: What each metric a driver can name is, in words: a reviewer reads "variation of gaps between plays",
#: not a column name.
_METRIC_WORDS = {
    "active_hours": "active hours",
    "country_count": "countries",
    "distinct_play_length_share": "variety of play lengths",
    "distinct_tracks": "distinct tracks",
    "inter_play_gap_cv": "variation of gaps between plays",
    "longest_session_minutes": "longest continuous listening",
    "median_play_seconds": "median play",
    "minutes_played": "minutes played",
    "new_artist_share": "plays of artists never played before",
    "new_track_share": "plays of tracks never played before",
    "night_share": "plays at night",
    "overlapping_play_share": "plays overlapping another",
    "play_count": "plays",
    "short_play_share": "short plays",
    "skip_rate": "skipped plays",
    "top_artist_share": "top artist's share of plays",
    "top_track_share": "top track's share of plays",
    "unusual_hour_share": "plays at hours unused before",
}


def format_metric(metric: str, value: object) -> str:
    """A metric value as a reader expects it: shares in %, minutes, seconds, counts, ratios."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "n/a"
    number = float(value)
    if metric in _MINUTES:
        return f"{number:,.0f} min"
    if metric in _SECONDS:
        return f"{number:,.0f} s"
    if metric in _COUNTS:
        return f"{number:,.0f}"
    if metric in _RATIOS:
        return f"{number:.2f}"
    return f"{number:.0%}"


def scored_columns() -> tuple[str, ...]:
    """Columns of the rule flags that scoring reads: the features' inputs, and the day's and the
    usual value of every metric a driver can name."""
    named = [*feature_metrics().values(), *(f"usual_{m}" for m in BASELINED_METRICS)]
    return tuple(dict.fromkeys([*REQUIRED_COLUMNS, *named]))


def _describe(feature: str, metric: str, row: dict) -> str:
    if feature == "night_short_share":
        return (
            f"short plays at night: {format_metric('night_share', row.get('night_share'))} of plays at night, "
            f"{format_metric('short_play_share', row.get('short_play_share'))} under {dbt_var_defaults()['short_play_seconds']} s"
        )
    if feature == "context_novelty_breadth":
        parts = [
            f"{format_metric(c, row.get(c))} {one if float(row.get(c)) == 1 else many}"
            for c, one, many in (
                ("new_country_count", "new country", "new countries"),
                ("new_platform_count", "new platform", "new platforms"),
            )
            if pd.notna(row.get(c)) and float(row.get(c)) > 0
        ]
        parts.append(f"plays of new artists {format_metric('new_artist_share', row.get('new_artist_share'))}")
        return "new context: " + ", ".join(parts)
    text = f"{_METRIC_WORDS.get(metric, metric.replace('_', ' '))}: {format_metric(metric, row.get(metric))}"
    usual = row.get(f"usual_{metric}")
    if usual is not None and pd.notna(usual):
        text += f" vs usual {format_metric(metric, usual)}"
    return text


def explain(model: TrainedModel, X: np.ndarray, rows: pd.DataFrame, n_drivers: int = N_DRIVERS) -> list[str]:
    """Readable drivers of each row's score: its most extreme features vs the training days.

    Parameters
    ----------
    model : TrainedModel
    X : ndarray of shape (n_samples, n_features)
        Feature rows of ``rows``.
    rows : DataFrame of shape (n_samples, n_columns)
        The user-day rows, for the day's value and the user's usual value of each metric.
    n_drivers : int, default=3
        Distinct metrics named per row.

    Returns
    -------
    drivers : list of str of length n_samples
        ``"; "``-joined fragments such as ``"short plays: 78% vs usual 4%"``, most extreme first.
    """
    metrics = feature_metrics()
    standardized = np.abs((X - model.feature_center) / model.feature_scale)
    texts = []
    for i, row in enumerate(rows.to_dict("records")):
        fragments, seen = [], set()
        for j in np.argsort(-standardized[i], kind="stable"):
            feature = model.feature_names[j]
            metric = metrics.get(feature, feature)
            if standardized[i, j] < 1.0 or metric in seen:
                continue
            seen.add(metric)
            fragments.append(_describe(feature, metric, row))
            if len(fragments) == n_drivers:
                break
        texts.append("; ".join(fragments))
    return texts


def score_days(model: TrainedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Score user-days and explain the flagged ones.

    Parameters
    ----------
    model : TrainedModel
    frame : DataFrame of shape (n_samples, n_columns)
        Rows of ``analytics.user_day_rule_flags``.

    Returns
    -------
    scores : DataFrame of shape (n_samples, 7)
        ``user_id``, ``listen_date`` (a date), ``ml_score`` (the negated
        ``IsolationForest.score_samples``: higher means more anomalous), ``ml_flag``
        (``ml_score > model.threshold``, unless the day departs from the user's pattern only in
        how much they listened, :func:`ml.features.amount_only_departures`, or only by skipping
        through artists never played before, :func:`ml.features.previewing_departures`), ``ml_drivers`` (the
        features that drove a flagged score, with the day's and the usual value; '' when not
        flagged) and ``model_version``.
    """
    require_columns(frame, ("user_id", "listen_date"), what="user-day frame")
    X, names = build_feature_matrix(frame, min_baseline_days=model.params.get("min_baseline_days", 7))
    if names != model.feature_names:
        raise ValueError(
            f"model {model.version} was trained on other features than this code builds; retrain the model"
        )
    ml_score = model.ml_scores(X)
    ml_flag = (ml_score > model.threshold) & ~amount_only_departures(X, names) & ~previewing_departures(frame, X, names)
    engagement_departs = pd.array(engagement_departures(frame, X, names), dtype="boolean")
    engagement_departs[~has_deviations(frame)] = pd.NA
    drivers = np.full(len(frame), "", dtype=object)
    if ml_flag.any():
        drivers[ml_flag] = explain(model, X[ml_flag], frame.iloc[np.flatnonzero(ml_flag)])
    return pd.DataFrame(
        {
            "user_id": frame["user_id"].astype(str).to_numpy(),
            "listen_date": pd.to_datetime(frame["listen_date"]).dt.date.to_numpy(),
            "ml_score": ml_score.astype(float),
            "ml_flag": ml_flag.astype(bool),
            "ml_drivers": drivers,
            "model_version": model.version,
            "is_engagement_departure": engagement_departs,
        },
        columns=SCORE_COLUMNS,
    )
