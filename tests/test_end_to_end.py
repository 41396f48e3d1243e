"""The whole DAG on a tiny simulated population, twice, through the CLI."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.cli import main
from orchestration.dbt import DBT_PROJECT_DIR

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
    "observed_until_hour",
]

RUN = ["run", "--population", "120", "--days", "35", "--seed", "11"]


@dataclass
class FinishedRuns:
    warehouse: Path
    verdicts: list[pd.DataFrame]  # after each run
    new_target_folders: set[Path]
    first_output: str  # what the first run printed


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory, dbt_manifest) -> FinishedRuns:
    """Run the DAG twice into one warehouse; keep the verdicts after each run.

    The play budget per dbt build is lowered so that the range is built in several chunks, as a
    large population's backfill is.
    """
    from orchestration import assets

    warehouse = tmp_path_factory.mktemp("e2e") / "warehouse.duckdb"
    verdicts, outputs = [], []
    target_folders_before = _dbt_run_target_folders()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(assets, "DBT_MAX_PLAYS_PER_BUILD", 40_000)
        for _ in range(2):
            with contextlib.redirect_stdout(io.StringIO()) as output:
                assert main([*RUN, "--warehouse", str(warehouse)]) == 0
            outputs.append(output.getvalue())
            with duckdb.connect(str(warehouse), read_only=True) as con:
                verdicts.append(con.execute("select * from analytics.user_day_verdicts order by user_id, listen_date").df())
    return FinishedRuns(warehouse, verdicts, _dbt_run_target_folders() - target_folders_before, outputs[0])


def _dbt_run_target_folders() -> set[Path]:
    return set((DBT_PROJECT_DIR / "target").glob("listening_dbt_models-*"))


def _query(warehouse, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).df()


def test_verdicts_follow_the_contract(finished_runs):
    verdicts = finished_runs.verdicts[0]
    assert list(verdicts.columns) == VERDICT_COLUMNS
    assert set(verdicts["verdict"]) <= {"normal", "rule_only", "ml_only", "both"}
    departs = _query(finished_runs.warehouse, "select user_id, listen_date, is_engagement_departure from analytics.user_day_ml_scores")
    judged = verdicts.merge(departs, on=["user_id", "listen_date"], how="left", validate="one_to_one")
    # Alone, the forest's flag counts unless the day's plays are played as usual (unknown: no baseline).
    departs = judged["is_engagement_departure"].astype("boolean").fillna(True).astype(bool)
    forest_counts = judged["ml_flag"] & (judged["rule_flag"] | departs)
    expected_kind = judged["rule_flag"].map({True: "rule", False: ""}) + forest_counts.map({True: "ml", False: ""})
    assert (expected_kind.map({"ruleml": "both", "rule": "rule_only", "ml": "ml_only", "": "normal"}) == judged["verdict"]).all()
    assert (verdicts["is_anomaly"] == (verdicts["verdict"] != "normal")).all()
    flagged = verdicts[verdicts["is_anomaly"]]
    assert len(flagged) > 0
    assert flagged["reasons"].str.contains(r"\d").all(), "every flagged day's reasons carry numbers"
    assert verdicts["model_version"].notna().all()
    # Only the window's last local day can still have been running when the data ended (west of UTC).
    last_day = verdicts["listen_date"].max()
    assert (verdicts.loc[verdicts["listen_date"] < last_day, "observed_until_hour"] == 24).all()
    assert (verdicts.loc[verdicts["listen_date"] == last_day, "observed_until_hour"] < 24).any()


def test_every_active_user_day_gets_exactly_one_verdict(finished_runs):
    warehouse, verdicts = finished_runs.warehouse, finished_runs.verdicts[0]
    features = _query(warehouse, "select user_id, listen_date from analytics.user_day_features")
    assert not verdicts.duplicated(["user_id", "listen_date"]).any()
    merged = features.merge(verdicts, on=["user_id", "listen_date"], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all()


def test_injected_marathon_days_are_flagged(finished_runs):
    warehouse = finished_runs.warehouse
    marathons = _query(
        warehouse,
        """
        select labels.user_id, labels.listen_date, verdicts.is_anomaly
        from raw.anomaly_labels as labels
        left join analytics.user_day_verdicts as verdicts using (user_id, listen_date)
        where labels.anomaly_type = 'marathon'
        """,
    )
    assert len(marathons) > 0, "the tiny population must contain marathon days for this test to mean anything"
    assert marathons["is_anomaly"].fillna(False).all(), marathons


def test_rerunning_gives_the_same_tables(finished_runs):
    warehouse, (first, second) = finished_runs.warehouse, finished_runs.verdicts
    pd.testing.assert_frame_equal(first, second)
    duplicates = _query(warehouse, "select count(*) - count(distinct event_id) as n from raw.listening_events")
    assert duplicates["n"].iloc[0] == 0


def test_successful_dbt_builds_leave_no_target_folders_behind(finished_runs):
    assert not finished_runs.new_target_folders


def test_a_run_shows_its_stages_not_dbts_log(finished_runs):
    output = finished_runs.first_output
    assert "[1/4]" in output and "flagged user-days" in output
    assert "Running with dbt" not in output
    assert " PASS " not in output


def test_the_evaluation_covers_every_detector(finished_runs):
    warehouse = finished_runs.warehouse
    evaluation = _query(warehouse, "select * from analytics.detection_evaluation")
    assert len(evaluation) > 0


def test_a_warehouse_built_by_an_older_version_gains_the_new_columns(finished_runs):
    """An upgrade must not fail on a column the older models did not write: the incremental
    models sync their columns. Runs last: it rebuilds the shared warehouse."""
    warehouse, verdicts = finished_runs.warehouse, finished_runs.verdicts[0]
    with duckdb.connect(str(warehouse)) as con:
        con.execute("alter table analytics.user_day_features drop column abroad_play_share")
        con.execute("alter table analytics.user_day_baselines drop column light_day_play_count")
    assert main([*RUN, "--warehouse", str(warehouse)]) == 0
    features = _query(warehouse, "select * from analytics.user_day_features")
    assert features["abroad_play_share"].notna().all()
    rebuilt = _query(warehouse, "select * from analytics.user_day_verdicts order by user_id, listen_date")
    pd.testing.assert_frame_equal(rebuilt, verdicts)
