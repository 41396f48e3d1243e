"""The code location: one ``defs`` loaded by workspace.yaml."""

from __future__ import annotations

import dagster as dg

from orchestration.assets import (
    detection_evaluation,
    isolation_forest_model,
    listening_dbt_models,
    raw_listening_events,
    raw_users,
    user_day_ml_scores,
    user_day_verdicts,
)
from orchestration.checks import one_verdict_per_user_day, verdicts_agree_with_detectors
from orchestration.dbt import DBT_EXECUTABLE, ListeningDbtCliResource, dbt_project
from orchestration.resources import ListeningSourceResource, WarehouseResource

dbt_project.prepare_if_dev()

daily_assets = dg.AssetSelection.assets(raw_listening_events, listening_dbt_models, user_day_ml_scores, user_day_verdicts)

daily_detection_job = dg.define_asset_job(
    "daily_detection_job",
    selection=daily_assets,
    description="Load a day (or a range, in one run), update features, baselines, flags, scores and verdicts.",
    executor_def=dg.in_process_executor,
)

retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=dg.AssetSelection.assets(isolation_forest_model, detection_evaluation),
    description="Retrain the Isolation Forest on the trailing window and re-evaluate detection.",
    executor_def=dg.in_process_executor,
)

# 02:00 UTC: yesterday's UTC day is complete.
daily_detection_schedule = dg.build_schedule_from_partitioned_job(
    daily_detection_job, hour_of_day=2, description="Materialise yesterday's partition every day."
)

weekly_retrain_schedule = dg.ScheduleDefinition(
    job=retrain_job,
    cron_schedule="0 4 * * 1",
    description="Retrain the Isolation Forest every Monday at 04:00 UTC, after the daily run.",
)

defs = dg.Definitions(
    assets=[
        raw_listening_events,
        raw_users,
        listening_dbt_models,
        isolation_forest_model,
        user_day_ml_scores,
        user_day_verdicts,
        detection_evaluation,
    ],
    asset_checks=[one_verdict_per_user_day, verdicts_agree_with_detectors],
    jobs=[daily_detection_job, retrain_job],
    schedules=[daily_detection_schedule, weekly_retrain_schedule],
    resources={
        "warehouse": WarehouseResource(),
        "source": ListeningSourceResource(),
        "dbt": ListeningDbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
    },
)
