"""Smoke test of the benchmark harness (benchmarks/run.py) on a tiny population.

Checks the shape of the JSON report and that the pandas reference agrees with dbt on the
simple features, on each day's count of deviating signal families and on every rule flag;
never asserts a time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import run as benchmark

STAGES = ("generate", "load", "dbt", "train", "score", "verdicts", "pandas")
SIZE = "40x45"
DAYS = 45


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("benchmark")
    json_path = folder / "report.json"
    # --in-process: one interpreter pays Dagster's and dbt's imports once (the stages' own
    # processes would cost ~8 s each); the memory numbers are then cumulative, which is enough here.
    # Six weeks: the rules need baselines before they flag anything the two implementations could
    # disagree on (over 8 days neither flagged a day, and the reference had drifted unseen).
    benchmark.main(["--sizes", SIZE, "--in-process", "--workdir", str(folder / "work"), "--json", str(json_path)])
    return json.loads(json_path.read_text())


def test_every_stage_reports_positive_seconds_and_memory(report: dict) -> None:
    size = report["sizes"][SIZE]
    assert size["events"] > 0
    for stage in STAGES:
        result = size["stages"][stage]
        assert result["success"], f"{stage}: {result.get('error')}"
        assert result["seconds"] > 0, stage
        assert result["process_seconds"] > 0, stage
        assert result["peak_rss_mb"] > 0, stage
        assert result["tree_rss_mb"] >= result["peak_rss_mb"] * 0.99, stage
        assert result["events_per_second"] > 0, stage


def test_the_harness_parquet_copy_is_reported_apart_from_generate_and_load(report: dict) -> None:
    stages = report["sizes"][SIZE]["stages"]
    for stage in ("generate", "load"):
        assert stages[stage]["parquet_seconds"] > 0, stage
        assert stages[stage]["seconds"] + stages[stage]["parquet_seconds"] < stages[stage]["process_seconds"], stage


def test_a_partition_range_is_one_dagster_run(report: dict) -> None:
    dbt = report["sizes"][SIZE]["stages"]["dbt"]
    assert dbt["dagster_runs"] == 1
    assert dbt["partitions"] == DAYS


def test_pandas_reference_agrees_with_dbt_on_the_simple_features_families_and_rule_flags(report: dict) -> None:
    size = report["sizes"][SIZE]
    sanity = size["sanity"]
    assert "error" not in sanity, sanity.get("error")
    assert sanity["user_days_matched"] == sanity["user_days_dbt"] == sanity["user_days_pandas"]
    assert sanity["simple_features_max_abs_diff"] < 1e-6, sanity["max_abs_diff"]
    assert sanity["rule_flags_dbt"] > 0 and sanity["days_with_deviating_families"] > 0
    assert sanity["rule_flag_agreement"] == 1.0
    assert sanity["family_count_agreement"] == 1.0
    assert "speedup" in size["pandas_vs_dbt"]


def test_report_is_printed_as_a_table(report: dict) -> None:
    text = benchmark.format_size_table(SIZE, report["sizes"][SIZE])
    for stage in STAGES:
        assert stage in text


def test_dbt_model_seconds_add_up_over_every_build_of_a_range() -> None:
    log = "\n".join(
        [
            "12:00:01  5 of 9 OK created sql incremental model analytics.user_day_features ..... [\x1b[32mOK\x1b[0m in 25.06s]",
            "12:00:02  6 of 9 PASS one_complete_row_per_stg_listening__events_event_id ....... [\x1b[32mPASS\x1b[0m in 2.29s]",
            "12:00:03  7 of 9 OK created sql incremental model analytics.user_day_baselines .... [\x1b[32mOK\x1b[0m in 3.00s]",
            "12:01:00  5 of 9 OK created sql incremental model analytics.user_day_features ..... [\x1b[32mOK\x1b[0m in 15.04s]",
            "12:01:01  6 of 9 PASS one_complete_row_per_stg_listening__events_event_id ....... [\x1b[32mPASS\x1b[0m in 1.71s]",
            "12:01:02  1 of 9 START sql incremental model analytics.user_day_rule_flags ......... [RUN]",
        ]
    )
    found = benchmark.dbt_node_seconds(log)
    assert found["model_seconds"] == pytest.approx({"user_day_features": 40.1, "user_day_baselines": 3.0})
    assert found["test_seconds"] == pytest.approx(4.0)
    layers = benchmark.dbt_breakdown({"seconds": 60.0, **found})
    assert layers["dbt_models_total"] == pytest.approx(43.1)
    assert layers["dbt_overhead"] == pytest.approx(60.0 - 43.1 - 4.0)


def test_a_repeated_size_reports_the_breakdown_of_its_median_run() -> None:
    def dbt_run(seconds: float, features: float, tests: float) -> dict:
        return {"dbt": {"success": True, "seconds": seconds, "process_seconds": seconds + 15, "peak_rss_mb": 900.0,
                        "tree_rss_mb": 1200.0, "events": 1_000, "model_seconds": {"user_day_features": features},
                        "test_seconds": tests}}

    # In the order run: slowest, fastest, median (a fast run's details beside the median's
    # seconds would leave a large "rest").
    summary = benchmark.summarise_size("3x1", 3, 1, [dbt_run(170.0, 120.0, 31.0), dbt_run(135.0, 98.0, 24.0), dbt_run(160.0, 121.0, 28.0)])
    assert summary["stages"]["dbt"]["seconds"] == 160.0
    assert summary["dbt_breakdown"]["dbt_models_total"] == 121.0
    assert summary["dbt_breakdown"]["dbt_tests"] == 28.0
    assert summary["dbt_breakdown"]["dbt_overhead"] == pytest.approx(160.0 - 121.0 - 28.0)

    two_runs = benchmark.summarise_size("3x1", 3, 1, [dbt_run(170.0, 120.0, 31.0), dbt_run(135.0, 98.0, 24.0)])
    assert two_runs["stages"]["dbt"]["seconds"] == 135.0
    assert two_runs["dbt_breakdown"]["dbt_overhead"] == pytest.approx(135.0 - 98.0 - 24.0)
