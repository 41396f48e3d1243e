"""The dbt models built on Spark give DuckDB's rows.

DESIGN.md: the models stay portable, so that the project builds on a distributed engine when a
user outgrows one machine. This builds them with dbt-spark (its session method: a local Spark
inside the dbt process, on Java 17) from the same simulated plays as a DuckDB build, and compares
every column of every model. A first window is built whole, then a later one incrementally, as
Dagster's partitions do: Spark overwrites the partitions of the days a run writes where DuckDB
deletes and inserts rows, and the first-seen entities keep their earliest day either way.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from warehouse.connection import connect
from warehouse.ingest import write_simulated_window
from warehouse.simulator import SimulationConfig
from warehouse.store import export_raw_tables

# The days cross Europe's change to summer time (31 March): local days come from each engine's
# own time-zone rules.
START = date(2024, 3, 20)
WINDOWS = [(START, START + timedelta(days=14)), (START + timedelta(days=14), START + timedelta(days=21))]

MODEL_KEYS = {
    "int_user_day_hours": ["user_id", "listen_date", "local_hour"],
    "int_user_entities_first_seen": ["user_id", "entity_type", "entity_id"],
    "user_day_features": ["user_id", "listen_date"],
    "user_day_baselines": ["user_id", "listen_date"],
    "user_day_rule_flags": ["user_id", "listen_date"],
}


def _spark_table(spark_folder: Path, table: str) -> pd.DataFrame:
    """A table as Spark wrote it: Parquet files, one folder per partition (its value in the path)."""
    files = (spark_folder / "tables" / "analytics.db" / table).as_posix()
    return duckdb.sql(f"select * from read_parquet('{files}/**/*.parquet', hive_partitioning = true)").df()


def _differences(duck: pd.DataFrame, spark: pd.DataFrame, keys: list[str]) -> list[str]:
    """What differs between two builds of one model: keys, columns, then values column by column."""
    if set(duck.columns) != set(spark.columns):
        return [f"columns only on one engine: {sorted(set(duck.columns) ^ set(spark.columns))}"]
    for frame in (duck, spark):
        for key in keys:
            frame[key] = frame[key].astype(str)
    both = duck.merge(spark, on=keys, how="outer", suffixes=("_duckdb", "_spark"), indicator=True)
    found = [f"{(both._merge != 'both').sum()} rows on one engine only"] if (both._merge != "both").any() else []
    both = both[both._merge == "both"]
    for column in (c for c in duck.columns if c not in keys):
        on_duckdb, on_spark = both[f"{column}_duckdb"], both[f"{column}_spark"]
        if pd.api.types.is_numeric_dtype(on_duckdb) and not pd.api.types.is_bool_dtype(on_duckdb):
            equal = np.isclose(on_duckdb.astype(float), on_spark.astype(float), rtol=1e-9, atol=1e-12)
        else:
            equal = (on_duckdb.astype(str) == on_spark.astype(str)).to_numpy()
        equal |= (on_duckdb.isna() & on_spark.isna()).to_numpy()
        if not equal.all():
            example = both.loc[~equal, keys + [f"{column}_duckdb", f"{column}_spark"]].head(2).to_dict("records")
            found.append(f"{column}: {int((~equal).sum())} rows differ, e.g. {example}")
    return found


def test_the_models_built_on_spark_equal_duckdbs(warehouse_file, tmp_path, monkeypatch, dbt):
    def succeed(target: str, *commands: list[str]) -> None:
        done = dbt(*commands, target=target)
        assert done.returncode == 0, f"dbt --target {target}:\n{done.stdout[-6000:]}"

    assert shutil.which("java"), "Spark needs Java 17 (`java` on the PATH) for this test"
    spark_folder = tmp_path / "spark"
    monkeypatch.setenv("LISTENING_SPARK_WAREHOUSE", str(spark_folder))
    # A few hundred rows a query: compiling each plan's Java costs more than it saves (profiles.yml).
    monkeypatch.setenv("LISTENING_SPARK_WHOLE_STAGE_CODEGEN", "false")
    config = SimulationConfig(n_users=30, n_days=21, start_date=START, seed=4)
    with connect(warehouse_file) as con:
        write_simulated_window(con, config, WINDOWS[0][0], WINDOWS[-1][1])
        export_raw_tables(con, tmp_path / "raw")

    first, later = (json.dumps({"start_date": start.isoformat(), "end_date": end.isoformat()}) for start, end in WINDOWS)
    succeed("warehouse", ["build", "--vars", first, "--exclude", "resource_type:unit_test"], ["run", "--vars", later])
    # On Spark, dbt's unit tests too (DuckDB's run in test_dbt_unit_tests.py): the rules' edge cases.
    # The data tests once: on Spark each is a query of its own, a second or two.
    succeed(
        "spark",
        ["run-operation", "register_raw_parquet_tables", "--args", json.dumps({"path": str(tmp_path / "raw")})],
        ["build", "--vars", first],
        ["run", "--vars", later],
    )

    with connect(warehouse_file) as con:
        duckdb_tables = {table: con.execute(f"select * from analytics.{table}").df() for table in MODEL_KEYS}
    assert len(duckdb_tables["user_day_rule_flags"]) > 0
    assert duckdb_tables["user_day_rule_flags"]["rule_flag"].any(), "no flagged day: the comparison would miss the reasons"
    differences = {
        table: found
        for table, keys in MODEL_KEYS.items()
        if (found := _differences(duckdb_tables[table], _spark_table(spark_folder, table), keys))
    }
    assert not differences, json.dumps(differences, indent=1, default=str)
