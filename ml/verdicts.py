"""The combined verdict per user-day: rules and Isolation Forest side by side, with reasons."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ml.features import MIN_BASELINE_DAYS, require_columns

VERDICT_COLUMNS = [
    "user_id",
    "listen_date",
    "baseline_days",
    "rule_flag",
    "rule_signal_count",
    "rule_signals",
    "ml_score",
    "ml_flag",
    "verdict",
    "is_anomaly",
    "reasons",
    "model_version",
    # Beyond the contract: below 24 the day was still running when the data ended, and the next
    # run's verdict replaces this one.
    "observed_until_hour",
]

VERDICTS = ("normal", "rule_only", "ml_only", "both")

FLAG_COLUMNS = (
    "user_id", "listen_date", "observed_until_hour", "baseline_days", "rule_flag", "rule_signal_count", "rule_signals",
    "rule_reasons",
)
#: Read when present: whether the rules abstained for want of baseline days (else derived from them).
OPTIONAL_FLAG_COLUMNS = ("is_cold_start",)
SCORE_COLUMNS = ("user_id", "listen_date", "ml_score", "ml_flag", "ml_drivers", "model_version")
#: Read when present: whether the day's plays are played differently from the user's own
#: (:func:`ml.features.engagement_departures`). Unknown (a day without a baseline to tell by, or
#: scores written before the column existed) lets the forest's flag count alone, as it always did.
OPTIONAL_SCORE_COLUMNS = ("is_engagement_departure",)

NORMAL_REASON = "within usual pattern"

#: Why a forest flag alone did not make the day an anomaly (the rules have judged every other change).
UNCOUNTED_FOREST_REASON = (
    "within usual pattern: the Isolation Forest scores it {score:.2f} ({drivers}), but its flag alone counts only "
    "on a change in how the plays are played (skips, play lengths) or on a day without a baseline"
)


def _keys(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["user_id"] = out["user_id"].astype(str)
    out["listen_date"] = pd.to_datetime(out["listen_date"]).dt.date
    return out


def as_bool(values: pd.Series) -> np.ndarray:
    """Booleans with nulls (a day without a score) read as False."""
    return values.astype("boolean").fillna(False).to_numpy(dtype=bool)


def _text(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _reason(
    verdict: str, rule_signals: str, rule_reasons: str, ml_score: float, drivers: str, baseline_days: int, cold: bool
) -> str:
    if verdict == "normal":
        return UNCOUNTED_FOREST_REASON.format(score=ml_score, drivers=drivers or "no single driver") + "."
    parts = []
    if verdict in ("rule_only", "both"):
        head = f"Rules ({rule_signals.replace(',', ', ')})" if rule_signals else "Rules"
        parts.append(f"{head}: {rule_reasons}" if rule_reasons else f"{head} deviate")
    if verdict in ("ml_only", "both"):
        model = f"Isolation Forest (score {ml_score:.2f})"
        parts.append(f"{model}: {drivers}" if drivers else model)
        if verdict == "ml_only" and cold:
            # The rules still judge the human ceilings; deviations wait for a baseline.
            parts.append(f"too few baseline days ({baseline_days}) for the rules' deviations")
    return ". ".join(parts) + "."


def build_verdicts(flags: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Merge rule flags and model scores into one verdict per user-day.

    Parameters
    ----------
    flags : DataFrame of shape (n_days, n_columns)
        Rows of ``analytics.user_day_rule_flags`` (extra columns ignored).
    scores : DataFrame of shape (n_scored, 6 or 7)
        Output of :func:`ml.scoring.score_days`; days without a score count as not flagged by
        the model (``ml_score`` null).

    Returns
    -------
    verdicts : DataFrame of shape (n_days, 13)
        :data:`VERDICT_COLUMNS`, one row per ``flags`` row, in ``flags`` order. ``verdict`` is
        ``both`` when both flag the day, ``rule_only`` when the rules alone do, ``ml_only`` when
        the forest alone does on a day whose plays are played differently from the user's own
        (``is_engagement_departure``: one family, which the rules never flag alone) or on a day
        without a baseline to tell by (unknown), else ``normal``: where the day departs in
        anything else, the rules have judged it (volume, continuity, timing, content, context)
        and the forest's flag is not an anomaly by itself.
        ``is_anomaly`` is ``verdict != 'normal'``; ``reasons`` puts the rule reasons first, then
        the model's drivers, each with numbers ("within usual pattern" on normal days, with the
        forest's score and drivers when it flagged the day).
    """
    require_columns(flags, FLAG_COLUMNS, what="rule flags")
    require_columns(scores, SCORE_COLUMNS, what="ml scores")
    left = _keys(flags[list(FLAG_COLUMNS)])
    # An optional column the scores lack comes as unknown.
    right = _keys(scores.reindex(columns=[*SCORE_COLUMNS, *OPTIONAL_SCORE_COLUMNS])).drop_duplicates(
        ["user_id", "listen_date"], keep="last"
    )
    merged = left.merge(right, on=["user_id", "listen_date"], how="left", validate="many_to_one")
    rule_flag = as_bool(merged["rule_flag"])
    ml_flag = as_bool(merged["ml_flag"])
    baseline_days = pd.to_numeric(merged["baseline_days"], errors="coerce").fillna(0).astype("int64")
    rule_signals = merged["rule_signals"].map(_text)
    if "is_cold_start" in flags.columns:
        cold = as_bool(flags["is_cold_start"])
    else:
        cold = (baseline_days < MIN_BASELINE_DAYS).to_numpy()
    engagement_departs = merged["is_engagement_departure"].astype("boolean").fillna(True).to_numpy(dtype=bool)
    verdict = np.select(
        [rule_flag & ml_flag, rule_flag, ml_flag & engagement_departs],
        ["both", "rule_only", "ml_only"],
        default="normal",
    ).astype(object)
    reasons = np.full(len(merged), NORMAL_REASON, dtype=object)
    flagged = np.flatnonzero((verdict != "normal") | ml_flag)
    reasons[flagged] = [
        _reason(v, s, _text(rr), float(score) if pd.notna(score) else float("nan"), _text(d), int(b), bool(c))
        for v, s, rr, score, d, b, c in zip(
            verdict[flagged],
            rule_signals.to_numpy()[flagged],
            merged["rule_reasons"].to_numpy()[flagged],
            merged["ml_score"].to_numpy()[flagged],
            merged["ml_drivers"].to_numpy()[flagged],
            baseline_days.to_numpy()[flagged],
            cold[flagged],
        )
    ]
    return pd.DataFrame(
        {
            "user_id": merged["user_id"].to_numpy(),
            "listen_date": merged["listen_date"].to_numpy(),
            "baseline_days": baseline_days.to_numpy(),
            "rule_flag": rule_flag,
            "rule_signal_count": pd.to_numeric(merged["rule_signal_count"], errors="coerce").fillna(0).astype("int64").to_numpy(),
            "rule_signals": rule_signals.to_numpy(),
            "ml_score": pd.to_numeric(merged["ml_score"], errors="coerce").astype(float).to_numpy(),
            "ml_flag": ml_flag,
            "verdict": verdict,
            "is_anomaly": verdict != "normal",
            "reasons": reasons,
            "model_version": merged["model_version"].astype(object).where(merged["model_version"].notna(), None).to_numpy(),
            "observed_until_hour": pd.to_numeric(merged["observed_until_hour"], errors="coerce").astype("Int64").to_numpy(),
        },
        columns=VERDICT_COLUMNS,
    )


def verdict_summary(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Days per verdict (all four kinds, zeros included) and their share of all days.

    Returns
    -------
    summary : DataFrame of shape (4, 3)
        ``verdict``, ``days``, ``share`` (NaN when there are no days).
    """
    require_columns(verdicts, ("verdict",), what="verdicts")
    counts = verdicts["verdict"].value_counts().reindex(list(VERDICTS), fill_value=0)
    total = int(counts.sum())
    return pd.DataFrame(
        {
            "verdict": list(VERDICTS),
            "days": counts.to_numpy().astype("int64"),
            "share": counts.to_numpy() / total if total else np.full(len(VERDICTS), np.nan),
        }
    )


def changed_verdicts(earlier: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """The user-days of ``verdicts`` whose ``is_anomaly`` differs from ``earlier``'s, oldest first.

    A day ``earlier`` does not hold is new, not changed. Returns rows of ``verdicts``.
    """
    keys = ["user_id", "listen_date"]
    require_columns(earlier, (*keys, "is_anomaly"), what="earlier verdicts")
    require_columns(verdicts, VERDICT_COLUMNS, what="verdicts")
    # Compared on a day of one type: either side may hold dates or timestamps.
    before = pd.DataFrame(
        {
            "user_id": earlier["user_id"],
            "_day": pd.to_datetime(earlier["listen_date"]),
            "_was_anomaly": earlier["is_anomaly"].astype(bool),
        }
    )
    paired = verdicts.assign(_day=pd.to_datetime(verdicts["listen_date"])).merge(before, on=["user_id", "_day"])
    changed = paired[paired["_was_anomaly"] != paired["is_anomaly"].astype(bool)]
    return changed.sort_values(["_day", "user_id"], kind="mergesort")[VERDICT_COLUMNS].reset_index(drop=True)


def _cell(value: object) -> str:
    return _text(value).replace("|", "\\|").replace("\n", " ")


def top_anomalies_markdown(verdicts: pd.DataFrame, n: int = 10) -> str:
    """The ``n`` most anomalous days as a Markdown table (for Dagster metadata).

    Anomalies are ordered by how many detectors agree (``both`` first), then by rule families,
    then by ``ml_score``.
    """
    require_columns(verdicts, VERDICT_COLUMNS, what="verdicts")
    flagged = verdicts[verdicts["is_anomaly"]]
    if flagged.empty:
        return "No anomalous user-days."
    ranked = flagged.assign(
        _agree=(flagged["verdict"] == "both").astype(int),
        _score=flagged["ml_score"].fillna(-np.inf),
    ).sort_values(["_agree", "rule_signal_count", "_score"], ascending=False, kind="mergesort")
    lines = [
        "| user_id | listen_date | verdict | ml_score | rule families | reasons |",
        "|---|---|---|---|---|---|",
    ]
    for row in ranked.head(n).itertuples():
        score = f"{row.ml_score:.3f}" if pd.notna(row.ml_score) else ""
        lines.append(
            f"| {_cell(row.user_id)} | {row.listen_date} | {row.verdict} | {score} | "
            f"{_cell(row.rule_signals)} | {_cell(row.reasons)} |"
        )
    return "\n".join(lines)
