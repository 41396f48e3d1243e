"""Assets: raw events -> dbt models -> Isolation Forest -> scores -> verdicts -> evaluation.

Each body calls one or two functions from ``warehouse`` or ``ml`` and records metadata.
(No ``from __future__ import annotations`` here: Dagster reads the context annotations at runtime.)
"""

import json
import shutil
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets, get_asset_key_for_model
from pydantic import Field

from ml.evaluation import evaluation_markdown
from ml.model import load_latest_model
from ml.pipeline import (
    DEFAULT_MIN_TRAINING_ROWS,
    DEFAULT_WINDOW_DAYS,
    evaluate_warehouse,
    restate_verdicts,
    score_window_to_warehouse,
    train_from_warehouse,
)
from ml.verdicts import top_anomalies_markdown, verdict_summary
from orchestration.dbt import dbt_project
from orchestration.partitions import (
    daily_partitions,
    dbt_vars,
    listen_date_window,
    partition_dates,
    restated_date_window,
)
from orchestration.resources import ListeningSourceResource, WarehouseResource
from warehouse.ingest import write_simulated_window
from warehouse.loaders import LoadOptions, load_files
from warehouse.paths import use_warehouse
from warehouse.reports import plays_per_day
from warehouse.windows import budgeted_day_chunks

RAW_GROUP = "raw"
DETECTION_GROUP = "detection"
single_run = dg.BackfillPolicy.single_run()

# dbt builds a long backfill a few days at a time: DuckDB's memory grows with the plays of a build
# and past the 2 GB limit it spills to disk (all 32 M plays of 10,000 users x 90 days in one build
# spilled over 12 GB and was stopped), while each extra build costs ~10 s of dbt start-up and data
# tests. With the lean feature SQL, 16 M plays build in 30-45 s within the limit (M: 2 builds,
# process tree 2.8 GB); 6 M per build meant 6 builds at M. Only plays count: one person's ten years
# (46 k plays) build in one go, with the same tables as ten builds of a year and 9 start-ups fewer.
DBT_MAX_PLAYS_PER_BUILD = 16_000_000


@dg.asset(
    key=["raw", "listening_events"],
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    group_name=RAW_GROUP,
    description=(
        "Plays in the canonical event contract, one partition per UTC day: simulated (with "
        "raw.users and the labels) or loaded from the files named in the `source` resource "
        "(files load whole, whatever the partition; already-loaded plays count as duplicates)."
    ),
)
def raw_listening_events(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, source: ListeningSourceResource
) -> dg.MaterializeResult:
    start, end = partition_dates(context.partition_time_window)
    with warehouse.connect() as con:
        if source.uses_files:
            report = load_files(con, source.events_path, source.users_path or None, source.load_options())
            for line in report.summary_lines():
                context.log.info(line)
            return dg.MaterializeResult(metadata=report.metadata())
        summary = write_simulated_window(con, source.simulation_config(), start, end, progress=context.log.info)
    return dg.MaterializeResult(
        metadata={
            "events_written": summary.events_written,
            "anomaly_labels_written": summary.anomaly_labels_written,
            "users": summary.users_written,
            "days": summary.days,
        }
    )


raw_users = dg.AssetSpec(
    key=["raw", "users"],
    group_name=RAW_GROUP,
    description="One row per user with their IANA time zone; written together with raw.listening_events.",
)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
)
def listening_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Features, point-in-time baselines and rule flags for the partition window (`dbt build`).

    Data tests run with every build; dbt unit tests test the SQL, not the data, and run in CI.
    A range with many plays is built a few days at a time, in order (each chunk's baselines read
    the chunks before it), still in this one run; the last chunk's results are reported.
    """
    use_warehouse(warehouse.path)
    start, end = partition_dates(context.partition_time_window)
    with warehouse.connect(read_only=True) as con:
        per_day = plays_per_day(con, start, end)
    chunks = budgeted_day_chunks(start, end, per_day, DBT_MAX_PLAYS_PER_BUILD)
    for chunk_start, chunk_end in chunks:
        arguments = ["build", "--vars", json.dumps(dbt_vars(chunk_start, chunk_end)), "--exclude", "test_type:unit"]
        invocation = dbt.cli(arguments, context=context)
        if chunk_end == end:
            yield from invocation.stream()
        else:
            invocation.wait()
        # Each invocation writes a fresh target folder (~5 MB): a daily schedule would pile up
        # gigabytes. A failed build raises above and keeps its folder, whose dbt.log the error names.
        shutil.rmtree(invocation.target_path, ignore_errors=True)


RULE_FLAGS_KEY = get_asset_key_for_model([listening_dbt_models], "user_day_rule_flags")


class TrainingConfig(dg.Config):
    """How the Isolation Forest is trained."""

    window_days: int = Field(default=DEFAULT_WINDOW_DAYS, description="Trailing days of user-days to train on.")
    min_rows: int = Field(
        default=DEFAULT_MIN_TRAINING_ROWS,
        description="User-days to train on at least: with fewer in the window, it reaches further back.",
    )


@dg.asset(
    deps=[RULE_FLAGS_KEY],
    group_name=DETECTION_GROUP,
    description=(
        "Isolation Forest trained with a fixed seed on the latest `window_days` of user-days (further "
        "back when they hold fewer than `min_rows`), persisted beside the warehouse with a version; "
        "retrained weekly."
    ),
)
def isolation_forest_model(
    context: dg.AssetExecutionContext, config: TrainingConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        model = train_from_warehouse(
            con, through=None, window_days=config.window_days, min_rows=config.min_rows, model_dir=warehouse.model_directory
        )
    return dg.MaterializeResult(
        metadata={
            "model_version": model.version,
            "threshold": float(model.threshold),
            "training_rows": model.n_training_rows,
            "trained_from": str(model.trained_from),
            "trained_through": str(model.trained_through),
            "parameters": dg.MetadataValue.json(model.params),
        }
    )


@dg.asset(
    deps=[RULE_FLAGS_KEY, isolation_forest_model],
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    group_name=DETECTION_GROUP,
    description=(
        "Isolation Forest score per user-day of the window (higher = more anomalous), flag, drivers, and whether "
        "the day's engagement departs from the user's own (where the flag counts without the rules)."
    ),
)
def user_day_ml_scores(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    start, end = listen_date_window(*partition_dates(context.partition_time_window))
    with warehouse.connect() as con:
        model = load_latest_model(warehouse.model_directory)
        scores = score_window_to_warehouse(con, model, start, end)
    return dg.MaterializeResult(
        metadata={
            "rows": len(scores),
            "ml_flagged_rate": float(scores["ml_flag"].mean()) if len(scores) else 0.0,
            "model_version": model.version,
        }
    )


@dg.asset(
    deps=[RULE_FLAGS_KEY, user_day_ml_scores],
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    group_name=DETECTION_GROUP,
    description=(
        "One verdict per user-day: normal, rule_only, ml_only (the forest alone, on a change of engagement or a "
        "day without a baseline) or both, with reasons a reviewer can act on (DESIGN.md, user_day_verdicts). "
        "A run also rewrites the verdicts of the days whose rule flags it restates (dbt var restated_days); "
        "its metadata counts those earlier days that became anomalous or normal, and lists the anomalous ones."
    ),
)
def user_day_verdicts(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    partition_window = partition_dates(context.partition_time_window)
    start, end = restated_date_window(*partition_window)
    own_start, _ = listen_date_window(*partition_window)
    with warehouse.connect() as con:
        verdicts, restated = restate_verdicts(con, start, own_start, end)
    counts = verdict_summary(verdicts)
    now_anomalous = int(restated["is_anomaly"].sum())
    metadata: dict[str, Any] = {
        "rows": len(verdicts),
        "flagged_rate": float(verdicts["is_anomaly"].mean()) if len(verdicts) else 0.0,
        "top_anomalies": dg.MetadataValue.md(top_anomalies_markdown(verdicts)),
        "earlier_days_now_anomalous": now_anomalous,
        "earlier_days_now_normal": len(restated) - now_anomalous,
    }
    if now_anomalous:
        metadata["earlier_days_now_anomalous_list"] = dg.MetadataValue.md(top_anomalies_markdown(restated))
    metadata.update({f"verdict_{row.verdict}": int(row.days) for row in counts.itertuples()})
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    deps=[user_day_verdicts],
    group_name=DETECTION_GROUP,
    description=(
        "Precision, recall, F1, false-positive rate and per-type recall of rules, Isolation Forest "
        "and hybrid against raw.anomaly_labels (simulated runs only; labels never feed detection)."
    ),
)
def detection_evaluation(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        evaluation = evaluate_warehouse(con)
    if evaluation is None:
        return dg.MaterializeResult(metadata={"evaluated": False, "reason": "no anomaly labels in the warehouse"})
    return dg.MaterializeResult(
        metadata={"evaluated": True, "evaluation": dg.MetadataValue.md(evaluation_markdown(evaluation))}
    )
