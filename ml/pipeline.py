"""The warehouse-facing steps the orchestration calls: train, score, verdicts, evaluation.

Every date window is half-open, ``[start, end)`` on ``listen_date``; every write replaces its
window (through :func:`warehouse.store.replace_date_window`), so re-running a window is safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from ml.evaluation import evaluate_detection
from ml.features import REQUIRED_COLUMNS
from ml.model import TrainedModel, save_model, train_model
from ml.scoring import SCORE_COLUMNS, score_days, scored_columns
from ml.verdicts import FLAG_COLUMNS, OPTIONAL_FLAG_COLUMNS, VERDICT_COLUMNS, build_verdicts, changed_verdicts
from warehouse.store import read_frame, replace_date_window, table_columns, table_exists
from warehouse.windows import budgeted_day_chunks

FLAGS_TABLE = "analytics.user_day_rule_flags"
SCORES_TABLE = "analytics.user_day_ml_scores"
VERDICTS_TABLE = "analytics.user_day_verdicts"
EVALUATION_TABLE = "analytics.detection_evaluation"
ANOMALY_LABELS_TABLE = "raw.anomaly_labels"
BENIGN_LABELS_TABLE = "raw.benign_labels"

#: Trailing days of user-days the model is trained on (the rules' baseline window).
DEFAULT_WINDOW_DAYS = 28

#: User-days the model is trained on at least: with fewer in the trailing window (a handful of
#: listeners, one person's own export) the window reaches further back, as far as the history
#: goes. Each tree draws 256 rows; a forest fitted on a month of one person (28 rows) scores every
#: other day against that month alone.
DEFAULT_MIN_TRAINING_ROWS = 1_000

#: User-days read at once when scoring and writing verdicts: reading a 90-day window of 40,000 users
#: (3.6 M rows of rule flags) at once peaked at 6.7 GB; this is a week of them. Fewer users read
#: more days at once: a week at a time, one person's ten-year export would be 520 reads and writes.
MAX_ROWS_PER_CHUNK = 280_000


def _require_table(con: duckdb.DuckDBPyConnection, table: str) -> None:
    if not table_exists(con, table):
        raise ValueError(f"{table} does not exist yet: build it first (dbt build / materialise its asset)")


def _user_day_chunks(con: duckdb.DuckDBPyConnection, start: date, end: date) -> list[tuple[date, date]]:
    """``[start, end)`` cut into windows of at most :data:`MAX_ROWS_PER_CHUNK` rule-flag rows (at least a day each)."""
    _require_table(con, FLAGS_TABLE)
    days = (end - start).days
    if days < 1:
        return []
    (rows,) = con.execute(
        f"select count(*) from {FLAGS_TABLE} where listen_date >= ? and listen_date < ?", [start, end]
    ).fetchone()
    return budgeted_day_chunks(start, end, rows / days, MAX_ROWS_PER_CHUNK)


def read_rule_flags(
    con: duckdb.DuckDBPyConnection, start: date, end: date, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Rows of ``analytics.user_day_rule_flags`` with ``listen_date`` in ``[start, end)``.

    With ``columns``, only those of them the table has: a step reads what it uses (the table is
    wide, and its text columns cost most of a read), and names what is missing itself.
    """
    _require_table(con, FLAGS_TABLE)
    selected = "*"
    if columns is not None:
        present = set(table_columns(con, FLAGS_TABLE))
        selected = ", ".join(f'"{name}"' for name in dict.fromkeys(columns) if name in present)
    return read_frame(
        con,
        f"select {selected} from {FLAGS_TABLE} where listen_date >= ? and listen_date < ? order by user_id, listen_date",
        [start, end],
    )


def train_from_warehouse(
    con: duckdb.DuckDBPyConnection,
    *,
    through: date | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    min_rows: int = DEFAULT_MIN_TRAINING_ROWS,
    model_dir: str | Path | None = None,
    **train_params,
) -> TrainedModel:
    """Train on the trailing ``window_days`` of user-days ending with ``through`` (inclusive),
    reaching further back when they hold fewer than ``min_rows`` user-days.

    Parameters
    ----------
    con : DuckDB connection
    through : date, optional
        Last ``listen_date`` used; default the latest day in ``analytics.user_day_rule_flags``.
        The rows read are ``[through - window_days + 1, through + 1)``, or from the latest day
        that gives ``min_rows`` of them (the first day of the history when none does).
    window_days : int, default=28
    min_rows : int, default=1000
    model_dir : path, optional
        When given, the model is saved there (see :func:`ml.model.save_model`).
    **train_params
        Passed to :func:`ml.model.train_model` (``random_state``, ``threshold_mads``, ...).

    Returns
    -------
    model : TrainedModel

    Raises
    ------
    ValueError
        When the table is missing or the window holds no user-days.
    """
    if window_days < 1:
        raise ValueError(f"window_days must be positive, got {window_days}")
    _require_table(con, FLAGS_TABLE)
    if through is None:
        latest = read_frame(con, f"select max(listen_date) as latest from {FLAGS_TABLE}")["latest"].iloc[0]
        if pd.isna(latest):
            raise ValueError(f"{FLAGS_TABLE} is empty: nothing to train on")
        through = pd.Timestamp(latest).date()
    end = through + timedelta(days=1)
    start = min(end - timedelta(days=window_days), _start_with_rows(con, end, min_rows) or end)
    frame = read_rule_flags(con, start, end, REQUIRED_COLUMNS)
    if frame.empty:
        raise ValueError(f"no user-days in {FLAGS_TABLE} for [{start}, {end})")
    model = train_model(frame, **train_params)
    if model_dir is not None:
        save_model(model, model_dir)
    return model


def _start_with_rows(con: duckdb.DuckDBPyConnection, end: date, min_rows: int) -> date | None:
    """The latest day from which ``[day, end)`` holds ``min_rows`` user-days; the first day of the
    history when it never does; None without history."""
    found = read_frame(
        con,
        f"""
        select coalesce(max(listen_date) filter (where rows_since >= ?), min(listen_date)) as start
        from (
            select listen_date, sum(count(*)) over (order by listen_date desc) as rows_since
            from {FLAGS_TABLE}
            where listen_date < ?
            group by listen_date
        )
        """,
        [min_rows, end],
    )["start"].iloc[0]
    return None if pd.isna(found) else pd.Timestamp(found).date()


def score_window_to_warehouse(
    con: duckdb.DuckDBPyConnection, model: TrainedModel, start: date, end: date
) -> pd.DataFrame:
    """Score the user-days of ``[start, end)`` and replace that window of ``analytics.user_day_ml_scores``.

    The rule flags are read a few days at a time (:data:`MAX_ROWS_PER_CHUNK`), and each chunk's
    scores written before the next is read.
    """
    written = []
    for chunk_start, chunk_end in _user_day_chunks(con, start, end):
        flags = read_rule_flags(con, chunk_start, chunk_end, scored_columns())
        scores = score_days(model, flags) if not flags.empty else pd.DataFrame(columns=SCORE_COLUMNS)
        replace_date_window(con, SCORES_TABLE, scores, chunk_start, chunk_end)
        written.append(scores)
    return _concat(written, SCORE_COLUMNS)


def write_verdicts(con: duckdb.DuckDBPyConnection, start: date, end: date) -> pd.DataFrame:
    """Join rule flags and ml scores of ``[start, end)`` and replace that window of ``analytics.user_day_verdicts``.

    Days not scored yet (no row in ``analytics.user_day_ml_scores``) get a verdict from the rules
    alone. Like scoring, a few days at a time.
    """
    written = []
    scored = table_exists(con, SCORES_TABLE)
    for chunk_start, chunk_end in _user_day_chunks(con, start, end):
        flags = read_rule_flags(con, chunk_start, chunk_end, FLAG_COLUMNS + OPTIONAL_FLAG_COLUMNS)
        if scored:
            scores = read_frame(
                con, f"select * from {SCORES_TABLE} where listen_date >= ? and listen_date < ?", [chunk_start, chunk_end]
            )
        else:
            scores = pd.DataFrame(columns=SCORE_COLUMNS)
        verdicts = build_verdicts(flags, scores)
        replace_date_window(con, VERDICTS_TABLE, verdicts, chunk_start, chunk_end)
        written.append(verdicts)
    return _concat(written, VERDICT_COLUMNS)


def restate_verdicts(
    con: duckdb.DuckDBPyConnection, start: date, own_start: date, end: date
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`write_verdicts` over ``[start, end)``, and the days before ``own_start`` it changed.

    The days of ``[start, own_start)`` had verdicts from earlier runs; a run that restates their
    rule flags (a silence found to last flags the days it began with) may turn them anomalous, or
    back. Returns the verdicts written and those restated days whose ``is_anomaly`` changed.
    """
    earlier = (
        read_frame(
            con,
            f"select user_id, listen_date, is_anomaly from {VERDICTS_TABLE} where listen_date >= ? and listen_date < ?",
            [start, own_start],
        )
        if table_exists(con, VERDICTS_TABLE)
        else pd.DataFrame(columns=["user_id", "listen_date", "is_anomaly"])
    )
    verdicts = write_verdicts(con, start, end)
    return verdicts, changed_verdicts(earlier, verdicts)


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    non_empty = [frame for frame in frames if not frame.empty]
    return pd.concat(non_empty, ignore_index=True) if non_empty else pd.DataFrame(columns=columns)


def evaluate_warehouse(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """Evaluate every verdict against the labels and replace ``analytics.detection_evaluation``.

    Returns ``None`` (and writes nothing) when ``raw.anomaly_labels`` or the verdicts are absent
    or empty, e.g. on a person's own listening files. The table gets ``window_start`` and
    ``window_end`` (half-open) columns: the span of verdict days evaluated.
    """
    if not table_exists(con, ANOMALY_LABELS_TABLE) or not table_exists(con, VERDICTS_TABLE):
        return None
    labels = read_frame(con, f"select * from {ANOMALY_LABELS_TABLE}")
    verdicts = read_frame(con, f"select * from {VERDICTS_TABLE}")
    if labels.empty or verdicts.empty:
        return None
    benign = read_frame(con, f"select * from {BENIGN_LABELS_TABLE}") if table_exists(con, BENIGN_LABELS_TABLE) else None
    evaluation = evaluate_detection(verdicts, labels, benign)
    dates = pd.to_datetime(verdicts["listen_date"])
    evaluation.insert(0, "window_start", dates.min().date())
    evaluation.insert(1, "window_end", dates.max().date() + timedelta(days=1))
    # The evaluation covers all verdicts, so the whole table is replaced: every window_start is in [min, max).
    replace_date_window(con, EVALUATION_TABLE, evaluation, date.min, date.max, date_column="window_start")
    return evaluation
