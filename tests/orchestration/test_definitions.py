from __future__ import annotations

import dagster as dg
import pytest


@pytest.fixture(scope="module")
def defs(dbt_manifest):
    from orchestration.definitions import defs

    return defs


def test_the_code_location_loads(defs):
    dg.Definitions.validate_loadable(defs)


def test_the_asset_graph_runs_from_raw_events_through_dbt_to_verdicts(defs):
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {
        "raw/listening_events",
        "raw/users",
        "stg_listening__events",
        "user_day_features",
        "user_day_baselines",
        "user_day_rule_flags",
        "isolation_forest_model",
        "user_day_ml_scores",
        "user_day_verdicts",
        "detection_evaluation",
    } <= keys
    upstream_of_verdicts = {key.to_user_string() for key in graph.get(dg.AssetKey("user_day_verdicts")).parent_keys}
    assert {"user_day_rule_flags", "user_day_ml_scores"} <= upstream_of_verdicts
    assert "raw/listening_events" in {key.to_user_string() for key in graph.get(dg.AssetKey("stg_listening__events")).parent_keys}


def test_assets_sit_in_named_groups_with_descriptions(defs):
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name != "default", f"{key.to_user_string()} is in the default group"
        if node.is_materializable:
            assert node.description, f"{key.to_user_string()} has no description"


def test_daily_assets_share_partitions_and_backfill_in_one_run(defs):
    graph = defs.resolve_asset_graph()
    for name in ["user_day_features", "user_day_rule_flags", "user_day_ml_scores", "user_day_verdicts"]:
        node = graph.get(dg.AssetKey(name))
        assert isinstance(node.partitions_def, dg.DailyPartitionsDefinition), name
        assert node.backfill_policy == dg.BackfillPolicy.single_run(), name
    assert graph.get(dg.AssetKey(["raw", "listening_events"])).backfill_policy == dg.BackfillPolicy.single_run()


def test_schedules_materialise_yesterday_daily_and_retrain_weekly(defs):
    daily = defs.get_schedule_def("daily_detection_job_schedule")
    weekly = defs.get_schedule_def("retrain_job_schedule")
    assert (daily.job_name, daily.cron_schedule) == ("daily_detection_job", "0 2 * * *")
    assert (weekly.job_name, weekly.cron_schedule) == ("retrain_job", "0 4 * * 1")


def test_dbt_tests_surface_as_asset_checks(defs):
    graph = defs.resolve_asset_graph()
    check_assets = {key.asset_key.to_user_string() for key in graph.asset_check_keys}
    assert {"user_day_features", "user_day_rule_flags", "user_day_verdicts"} <= check_assets


def test_the_dbt_resource_reports_the_executables_version_without_running_it():
    import subprocess

    from dagster_dbt import DbtCliResource

    from orchestration.dbt import DBT_EXECUTABLE, ListeningDbtCliResource, dbt_project

    # The overrides replace private methods of the pinned dagster-dbt: an upgrade that renames them
    # must fail here, not silently bring back the start-up cost.
    assert callable(getattr(DbtCliResource, "_initialize_dbt_core_adapter", None))
    assert "_cli_version" in vars(DbtCliResource)
    resource = ListeningDbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)
    printed = subprocess.run([DBT_EXECUTABLE, "--version"], capture_output=True, text=True, check=True).stdout
    assert f"installed: {resource._cli_version}" in printed
    assert resource._initialize_dbt_core_adapter(["build"]) is None
