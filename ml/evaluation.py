"""Detection quality against the simulator's labels, as a tidy table and as Markdown.

Labels never feed detection: this module is the only reader of ``raw.anomaly_labels`` and
``raw.benign_labels``, and only after the verdicts exist.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from ml.features import require_columns
from ml.verdicts import as_bool

#: Detector name -> verdict column holding its flag.
DETECTORS = {"rules": "rule_flag", "isolation_forest": "ml_flag", "hybrid": "is_anomaly"}

EVALUATION_COLUMNS = ["detector", "metric", "segment", "value", "support"]

_KEYS = ["user_id", "listen_date"]


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["user_id"] = out["user_id"].astype(str)
    out["listen_date"] = pd.to_datetime(out["listen_date"]).dt.date
    return out


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else float("nan")


def _f1(precision: float, recall: float) -> float:
    if np.isnan(precision) or np.isnan(recall) or precision + recall == 0:
        return float("nan")
    return 2 * precision * recall / (precision + recall)


def evaluate_detection(
    verdicts: pd.DataFrame,
    anomaly_labels: pd.DataFrame,
    benign_labels: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Precision, recall and false-positive rates of each detector against labelled days.

    A labelled anomaly day is a positive; every other verdict day (benign scenarios included) is
    a normal day. Labels of days without a verdict are ignored.

    Parameters
    ----------
    verdicts : DataFrame of shape (n_days, n_columns)
        Output of :func:`ml.verdicts.build_verdicts`.
    anomaly_labels : DataFrame of shape (n_labels, 3 or 4)
        ``user_id``, ``listen_date``, ``anomaly_type`` (optional ``severity``).
    benign_labels : DataFrame of shape (n_benign, 3), optional
        ``user_id``, ``listen_date``, ``scenario``: days of benign but unusual behaviour.

    Returns
    -------
    evaluation : DataFrame of shape (n_rows, 5)
        Tidy rows ``detector`` (rules | isolation_forest | hybrid), ``metric``, ``segment``,
        ``value``, ``support`` (the days in the metric's denominator). Metrics with segment
        ``all``: ``true_positives``, ``false_positives``, ``false_negatives``, ``precision``,
        ``recall``, ``f1``, ``false_positive_rate`` (on normal days), and for
        ``isolation_forest`` ``pr_auc`` (average precision of ``ml_score``); ``recall`` per
        anomaly type; ``flagged_rate`` per benign scenario (segment = scenario, counting only
        benign days that carry no anomaly label). Undefined ratios (no positives, nothing
        flagged) are NaN.
    """
    require_columns(verdicts, ("user_id", "listen_date", "ml_score", *DETECTORS.values()), what="verdicts")
    require_columns(anomaly_labels, ("user_id", "listen_date", "anomaly_type"), what="anomaly labels")
    days = _keyed(verdicts[["user_id", "listen_date", "ml_score", *DETECTORS.values()]])
    labels = _keyed(anomaly_labels[["user_id", "listen_date", "anomaly_type"]]).drop_duplicates(_KEYS)
    days = days.merge(labels, on=_KEYS, how="left", validate="many_to_one")
    positive = days["anomaly_type"].notna().to_numpy()
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())

    rows: list[tuple[str, str, str, float, int]] = []
    for detector, column in DETECTORS.items():
        flagged = as_bool(days[column])
        tp = int((flagged & positive).sum())
        fp = int((flagged & ~positive).sum())
        fn = int((~flagged & positive).sum())
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, n_pos)
        rows += [
            (detector, "true_positives", "all", float(tp), n_pos),
            (detector, "false_positives", "all", float(fp), n_neg),
            (detector, "false_negatives", "all", float(fn), n_pos),
            (detector, "precision", "all", precision, tp + fp),
            (detector, "recall", "all", recall, n_pos),
            (detector, "f1", "all", _f1(precision, recall), n_pos),
            (detector, "false_positive_rate", "all", _ratio(fp, n_neg), n_neg),
        ]
        if detector == "isolation_forest":
            scores = days["ml_score"].astype(float)
            scored = scores.notna().to_numpy()
            has_both = positive[scored].any() and (~positive[scored]).any()
            pr_auc = float(average_precision_score(positive[scored], scores[scored])) if has_both else float("nan")
            rows.append((detector, "pr_auc", "all", pr_auc, int(positive[scored].sum())))
        for anomaly_type, group in days[positive].groupby("anomaly_type", sort=True):
            caught = int(as_bool(group[column]).sum())
            rows.append((detector, "recall", str(anomaly_type), _ratio(caught, len(group)), len(group)))
        if benign_labels is not None and len(benign_labels):
            require_columns(benign_labels, ("user_id", "listen_date", "scenario"), what="benign labels")
            benign = _keyed(benign_labels[["user_id", "listen_date", "scenario"]]).drop_duplicates()
            benign = benign.merge(days[~positive][[*_KEYS, column]], on=_KEYS, how="inner")
            for scenario, group in benign.groupby("scenario", sort=True):
                flagged_days = int(as_bool(group[column]).sum())
                rows.append((detector, "flagged_rate", str(scenario), _ratio(flagged_days, len(group)), len(group)))
    out = pd.DataFrame(rows, columns=EVALUATION_COLUMNS)
    out["support"] = out["support"].astype("int64")
    return out


_METRIC_LABELS = {
    "true_positives": "true positives",
    "false_positives": "false positives",
    "false_negatives": "false negatives",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
    "false_positive_rate": "false-positive rate (normal days)",
    "pr_auc": "PR-AUC of ml_score",
}


def _row_label(metric: str, segment: str) -> str:
    if segment == "all":
        return _METRIC_LABELS.get(metric, metric)
    if metric == "recall":
        return f"recall: {segment}"
    if metric == "flagged_rate":
        return f"flagged rate: {segment} (benign)"
    return f"{metric}: {segment}"


def _format(metric: str, value: float) -> str:
    if value is None or np.isnan(value):
        return "–"
    if metric in ("true_positives", "false_positives", "false_negatives"):
        return f"{value:,.0f}"
    if metric in ("false_positive_rate", "flagged_rate"):
        return f"{value:.2%}"
    return f"{value:.3f}"


def evaluation_markdown(evaluation: pd.DataFrame) -> str:
    """One Markdown table: a row per metric (or anomaly type / benign scenario), a column per detector."""
    require_columns(evaluation, EVALUATION_COLUMNS, what="evaluation")
    if evaluation.empty:
        return "No evaluation: no labelled days."
    detectors = [d for d in DETECTORS if d in set(evaluation["detector"])]
    order = list(dict.fromkeys(zip(evaluation["metric"], evaluation["segment"])))
    # Overall metrics first, then recall per type, then benign scenarios, each in first-seen order.
    order.sort(key=lambda ms: (ms[1] != "all", ms[0] == "flagged_rate"))
    values = {(r.detector, r.metric, r.segment): r.value for r in evaluation.itertuples()}
    spreads = (
        {(r.detector, r.metric, r.segment): r.spread for r in evaluation.itertuples()} if "spread" in evaluation else {}
    )
    # The targets hold per run (every type found, every look-alike left alone): its worst run is shown.
    worsts = (
        {(r.detector, r.metric, r.segment): (r.lowest if r.metric == "recall" else r.highest) for r in evaluation.itertuples()}
        if {"lowest", "highest"} <= set(evaluation)
        else {}
    )

    def cell(detector: str, metric: str, segment: str) -> str:
        key = (detector, metric, segment)
        text = _format(metric, values.get(key, np.nan))
        spread = spreads.get(key, np.nan)
        if np.isnan(spread) or text == "–":
            return text
        text = f"{text} ± {_format(metric, spread)}"
        if segment != "all" and metric in ("recall", "flagged_rate"):
            text += f" (worst {_format(metric, worsts[key])})"
        return text

    lines = ["| metric | " + " | ".join(detectors) + " |", "|---|" + "---|" * len(detectors)]
    for metric, segment in order:
        cells = [cell(d, metric, segment) for d in detectors]
        lines.append(f"| {_row_label(metric, segment)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def combine_runs(evaluations: list[pd.DataFrame]) -> pd.DataFrame:
    """Several runs' evaluations (e.g. one per seed) as mean ``value`` and standard deviation ``spread``.

    ``lowest`` and ``highest`` are the runs' extremes; ``support`` is summed over the runs; ``runs``
    counts the runs that had the metric.
    """
    if not evaluations:
        raise ValueError("no evaluations to combine")
    stacked = pd.concat(evaluations, ignore_index=True)
    require_columns(stacked, EVALUATION_COLUMNS, what="evaluation")
    grouped = stacked.groupby(["detector", "metric", "segment"], sort=False)
    combined = grouped.agg(
        value=("value", "mean"),
        spread=("value", "std"),
        lowest=("value", "min"),
        highest=("value", "max"),
        support=("support", "sum"),
        runs=("value", "count"),
    )
    return combined.reset_index()
