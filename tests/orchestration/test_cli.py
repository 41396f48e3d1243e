from __future__ import annotations

import duckdb
import pytest

from orchestration.cli import _FileProgress, format_table, long_range_note, main, run_stages
from warehouse.connection import connect
from warehouse.contract import RAW_TABLE_DDL
from warehouse.store import ensure_raw_tables


@pytest.fixture
def small_warehouse(warehouse_file):
    con = duckdb.connect(str(warehouse_file))
    con.execute("create schema analytics")
    con.execute("create table analytics.user_day_verdicts as select * from (values ('u1', 'both'), ('u2', 'normal'), ('u3', 'normal')) t(user_id, verdict)")
    con.close()
    return warehouse_file


def test_query_prints_a_table_of_the_result(small_warehouse, capsys):
    code = main(["query", "select verdict, count(*) as n from analytics.user_day_verdicts group by 1 order by 1", "--warehouse", str(small_warehouse)])
    output = capsys.readouterr().out.splitlines()
    assert code == 0
    assert output[0].split() == ["verdict", "n"]
    assert [line.split() for line in output[2:]] == [["both", "1"], ["normal", "2"]]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        pytest.param("delete from analytics.user_day_verdicts", "read-only", id="a write statement is refused because the connection is read-only"),
        pytest.param("selec 1", "syntax error", id="a syntax error is reported in one line"),
        pytest.param("select * from no_such_table", "no_such_table", id="an unknown table is named"),
    ],
)
def test_bad_queries_fail_with_one_clear_line(small_warehouse, capsys, sql, expected):
    code = main(["query", sql, "--warehouse", str(small_warehouse)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    error_lines = captured.err.strip().splitlines()
    assert len(error_lines) == 1 and expected in error_lines[0].lower()
    assert "Traceback" not in captured.err
    with duckdb.connect(str(small_warehouse), read_only=True) as con:
        assert con.execute("select count(*) from analytics.user_day_verdicts").fetchone()[0] == 3


def test_query_on_a_missing_warehouse_says_what_to_do(tmp_path, capsys):
    code = main(["query", "select 1", "--warehouse", str(tmp_path / "absent.duckdb")])
    error = capsys.readouterr().err
    assert code == 2 and "does not exist" in error and "make run" in error
    assert not (tmp_path / "absent.duckdb").exists()


def test_export_writes_every_raw_table_and_says_how_spark_registers_them(warehouse_file, tmp_path, capsys):
    with connect(warehouse_file) as con:
        ensure_raw_tables(con)
        con.execute("insert into raw.users values ('u1', 'Europe/Berlin'), ('u2', 'UTC')")
    folder = tmp_path / "raw_parquet"
    code = main(["export", str(folder), "--warehouse", str(warehouse_file)])
    output = capsys.readouterr().out
    assert code == 0
    assert ["raw.users", "2"] in [line.split() for line in output.splitlines()]
    assert sorted(table.name for table in folder.iterdir()) == sorted(name.split(".")[1] for name in RAW_TABLE_DDL)
    assert duckdb.sql(f"select count(*) from '{(folder / 'users').as_posix()}/*.parquet'").fetchall() == [(2,)]
    assert f"register_raw_parquet_tables --args \"{{path: {folder.resolve()}}}\" --target spark" in output


def test_export_of_a_missing_warehouse_creates_nothing(tmp_path, capsys):
    code = main(["export", str(tmp_path / "raw_parquet"), "--warehouse", str(tmp_path / "absent.duckdb")])
    error = capsys.readouterr().err
    assert code == 2 and "does not exist" in error
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param(["run", "--no-such-option"], id="an unknown option"),
        pytest.param(["run", "--days", "zero"], id="a non-numeric day count"),
        pytest.param(["run", "--start", "2024-13-01"], id="an impossible start date"),
        pytest.param(["frobnicate"], id="an unknown command"),
    ],
)
def test_bad_arguments_fail_with_one_line_and_no_traceback(capsys, arguments):
    code = main(arguments)
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(error) == 1 and error[0].startswith("listening-anomalies: error:")


def test_a_failed_dbt_build_is_reported_with_dbts_errors_and_no_traceback(monkeypatch, capsys):
    from dagster_dbt.errors import DagsterDbtCliRuntimeError

    from orchestration import cli

    def failing_run(arguments):
        dbt_error = DagsterDbtCliRuntimeError(
            description="dbt build failed. Errors parsed from dbt logs: Catalog Error in user_day_baselines; see target/x/dbt.log"
        )
        raise RuntimeError("Error occurred while executing op listening_dbt_models") from dbt_error

    monkeypatch.setitem(cli.COMMANDS, "run", failing_run)
    code = main(["run"])
    error = capsys.readouterr().err
    assert code == 1
    assert error.startswith("listening-anomalies: error: dbt build failed.")
    assert "user_day_baselines" in error and "dbt.log" in error
    assert "Traceback" not in error


def test_query_output_is_capped_with_a_note(small_warehouse, capsys):
    main(["query", "select * from range(10)", "--warehouse", str(small_warehouse), "--max-rows", "3"])
    output = capsys.readouterr().out.splitlines()
    assert len(output) == 2 + 3 + 1 and "first 3 rows" in output[-1]


def test_format_table_aligns_columns_and_shows_nulls():
    table = format_table(["a", "long_name"], [(1, None), (22.5, "x")])
    lines = table.splitlines()
    assert lines[0].index("long_name") == lines[2].index("NULL") == lines[3].index("x")


def test_the_main_flow_alternates_partitioned_and_unpartitioned_runs():
    stages = run_stages(loading=True)
    assert [stage.partitioned for stage in stages] == [True, False, True, False]
    assert "raw_listening_events" in stages[0].asset_names
    assert "raw_listening_events" not in run_stages(loading=False)[0].asset_names


def test_the_evaluation_block_of_a_file_is_replaced_and_the_rest_kept(tmp_path):
    from orchestration.cli import evaluation_block, replace_marked_block

    readme = tmp_path / "README.md"
    begin, end = evaluation_block("default")
    other_begin, other_end = evaluation_block("gentle")
    readme.write_text(f"# title\n{begin}\nold table\n{end}\n{other_begin}\nother table\n{other_end}\n")
    replace_marked_block(readme, evaluation_block("default"), "| new |")
    assert readme.read_text() == f"# title\n{begin}\n| new |\n{end}\n{other_begin}\nother table\n{other_end}\n"


def test_a_file_without_the_evaluation_markers_is_left_alone(tmp_path, capsys):
    from orchestration.cli import UsageError, evaluation_block, replace_marked_block

    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    with pytest.raises(UsageError, match="no block"):
        replace_marked_block(readme, evaluation_block("default"), "| new |")
    assert readme.read_text() == "no markers here\n"


@pytest.mark.parametrize(
    ("days", "runs_kept", "noted"),
    [
        pytest.param(3_653, True, True, id="ten years kept in DAGSTER_HOME: say where the time goes"),
        pytest.param(60, True, False, id="two months kept: nothing to say"),
        pytest.param(3_653, False, False, id="ten years in memory: nothing to say"),
    ],
)
def test_a_long_range_kept_in_dagster_home_is_announced(days, runs_kept, noted):
    note = long_range_note(days, runs_kept)
    assert (note is not None) == noted
    if noted:
        assert f"{days:,} daily partitions" in note and "DAGSTER_HOME" in note


def test_files_read_are_counted_aloud_at_most_every_few_seconds(monkeypatch, capsys):
    progress = _FileProgress()
    progress(1)
    progress(2)
    assert capsys.readouterr().out == "", "files read within the interval are not said"
    monkeypatch.setattr(_FileProgress, "PROGRESS_SECONDS", 0.0)
    progress(3)
    assert capsys.readouterr().out.startswith("  3 files read in ")
