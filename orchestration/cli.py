"""``listening-anomalies``: run the DAG, query the warehouse, export its raw tables, start the UI.

Errors a person can fix print one line and exit non-zero; nothing here prints a traceback for
them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Sequence

import duckdb

from orchestration.manifest import ManifestParse, prepare_manifest
from warehouse.connection import WarehouseError, open_warehouse, require_warehouse
from warehouse.paths import REPOSITORY_ROOT, use_warehouse, warehouse_path
from warehouse.reports import run_summary

PROGRAM = "listening-anomalies"

#: Past this many days, a run kept in $DAGSTER_HOME is mostly Dagster recording a materialisation per
#: asset and day: eleven people's exports (1,576 days) took 260 s kept there and 92 s kept in memory,
#: of which the dbt builds were about 10 s.
LONG_RANGE_DAYS = 366


class UsageError(Exception):
    """A bad option or argument value."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage plus error
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return value


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of seeds: {text!r}")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    from warehouse.simulator import SIMULATION_PROFILES, SimulationConfig

    defaults = SimulationConfig()
    profile_help = f"simulation profile: {', '.join(SIMULATION_PROFILES)} (default default; docs/simulation.md)"
    parser = _Parser(prog=PROGRAM, description="Detect abnormal listening behaviour, one user-day at a time.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="run the whole DAG: events -> dbt -> Isolation Forest -> verdicts")
    run.add_argument("--warehouse", type=Path, help="DuckDB file (default: $LISTENING_WAREHOUSE or warehouse/listening_anomalies.duckdb)")
    run.add_argument(
        "--events",
        help="your own events: a file, folder, glob, .zip or .tar(.gz) (canonical CSV, JSON, JSON Lines or Parquet, "
        "gzip-compressed or not, or a Spotify export; docs/loading.md); default: simulate",
    )
    run.add_argument("--users", dest="users_file", help="users file with user_id and timezone, for --events")
    run.add_argument("--user-id", help="user id for a single person's Spotify export (default: its folder name)")
    run.add_argument(
        "--timezone",
        help="IANA zone assumed where no users file gives one (default UTC), or from-country: the main zone of the country most of the user's plays come from",
    )
    run.add_argument("--pseudonymize", metavar="SALT", help="replace user ids with hashes salted with SALT")
    run.add_argument("--start", type=_iso_date, help=f"first simulated UTC day (default {defaults.start_date})")
    run.add_argument("--days", type=_positive_int, help=f"number of simulated days (default {defaults.n_days})")
    run.add_argument("--population", type=_positive_int, help=f"number of simulated users (default {defaults.n_users})")
    run.add_argument("--seed", type=int, help=f"simulation seed (default {defaults.seed})")
    run.add_argument("--profile", choices=list(SIMULATION_PROFILES), help=profile_help)
    run.add_argument("--verbose", action="store_true", help="show Dagster and dbt logs")

    query = commands.add_parser("query", help="run a read-only SQL query and print the result")
    query.add_argument("sql", help='e.g. "select verdict, count(*) from analytics.user_day_verdicts group by 1"')
    query.add_argument("--warehouse", type=Path, help="DuckDB file (default as for run)")
    query.add_argument("--max-rows", type=_positive_int, default=50, help="rows to print at most (default 50)")

    evaluate = commands.add_parser(
        "evaluate", help="run the simulated DAG for several seeds and report detection quality (mean ± spread)"
    )
    evaluate.add_argument("--seeds", type=_seed_list, default=[1, 2, 3], help="comma-separated seeds (default 1,2,3)")
    evaluate.add_argument("--population", type=_positive_int, help=f"number of simulated users (default {defaults.n_users})")
    evaluate.add_argument("--days", type=_positive_int, help=f"number of simulated days (default {defaults.n_days})")
    evaluate.add_argument("--profile", choices=list(SIMULATION_PROFILES), help=profile_help)
    evaluate.add_argument(
        "--readme", type=Path, help="also write the table into this file, between the profile's detection-evaluation markers"
    )
    evaluate.add_argument("--verbose", action="store_true", help="show Dagster and dbt logs")

    export = commands.add_parser(
        "export", help="write the raw tables as Parquet, a folder per table: the input of the dbt models on Spark"
    )
    export.add_argument("folder", type=Path, help="where the tables' folders go, e.g. warehouse/raw_parquet")
    export.add_argument("--warehouse", type=Path, help="DuckDB file (default as for run)")

    ui = commands.add_parser("ui", help="start the Dagster UI on 127.0.0.1")
    ui.add_argument("--port", type=_positive_int, default=3000, help="port (default 3000)")
    ui.add_argument("--warehouse", type=Path, help="DuckDB file (default as for run)")
    return parser


@dataclass(frozen=True)
class Stage:
    """One Dagster run of the main flow: asset definitions of orchestration.assets, by name."""

    title: str
    asset_names: tuple[str, ...]
    partitioned: bool


def run_stages(loading: bool) -> list[Stage]:
    """The runs of the main flow, in order. Partitioned and unpartitioned assets need separate runs."""
    first = ("raw_listening_events", "listening_dbt_models") if loading else ("listening_dbt_models",)
    return [
        Stage("events, features, baselines and rule flags", first, partitioned=True),
        Stage("Isolation Forest training", ("isolation_forest_model",), partitioned=False),
        Stage("scores and verdicts", ("user_day_ml_scores", "user_day_verdicts"), partitioned=True),
        Stage("detection evaluation", ("detection_evaluation",), partitioned=False),
    ]


def long_range_note(days: int, runs_kept: bool) -> str | None:
    """What a run over ``days`` daily partitions will spend its time on, when that is worth saying."""
    if days <= LONG_RANGE_DAYS or not runs_kept:
        return None
    return (
        f"{days:,} daily partitions: Dagster records every asset's materialisation of each day in $DAGSTER_HOME, "
        f"which takes longer than the detection itself; run {PROGRAM} without DAGSTER_HOME to keep the runs "
        "in memory only (not in the UI's history), in about a third of the time"
    )


def _say(message: str) -> None:
    print(message, flush=True)


def _say_done(started: float) -> None:
    """The line that ends a step (the load, each stage): how long it took since ``started``."""
    _say(f"      done in {time.perf_counter() - started:.1f} s")


class _FileProgress:
    """Says how many files have been read, at most every PROGRESS_SECONDS: a folder of thousands of
    files takes minutes to read, and the load's report comes only at its end."""

    PROGRESS_SECONDS = 10.0

    def __init__(self) -> None:
        self.started = self.said = time.perf_counter()

    def __call__(self, files_read: int) -> None:
        now = time.perf_counter()
        if now - self.said >= self.PROGRESS_SECONDS:
            self.said = now
            _say(f"  {files_read:,} files read in {now - self.started:.0f} s")


def _root_cause(error: BaseException) -> BaseException:
    """The innermost exception: Dagster wraps an asset's error in its own."""
    inner = getattr(error, "user_exception", None) or error.__cause__
    return _root_cause(inner) if inner is not None else error


def command_run(arguments: argparse.Namespace) -> int:
    path = use_warehouse(arguments.warehouse or warehouse_path())
    started = time.perf_counter()
    with ManifestParse() as parse:
        if not run_pipeline(path, _source(arguments), parse, verbose=arguments.verbose):
            return 0
    with open_warehouse(path, read_only=True) as con:
        summary = run_summary(con)
    _say(f"\nfinished in {time.perf_counter() - started:.0f} s")
    for line in summary.lines():
        _say(line)
    _say(
        "\nlook further:\n"
        f'  {PROGRAM} query "select verdict, count(*) from analytics.user_day_verdicts group by 1"\n'
        f'  {PROGRAM} query "select user_id, listen_date, verdict, reasons from analytics.user_day_verdicts '
        "where is_anomaly order by ml_score desc limit 10\"\n"
        "  make ui   (the Dagster UI on http://127.0.0.1:3000)"
    )
    return 0


def _source(arguments: argparse.Namespace):
    from orchestration.resources import ListeningSourceResource

    return ListeningSourceResource(
        events_path=getattr(arguments, "events", None) or "",
        users_path=getattr(arguments, "users_file", None) or "",
        user_id=getattr(arguments, "user_id", None) or "",
        timezone=getattr(arguments, "timezone", None) or "",
        pseudonymize_salt=getattr(arguments, "pseudonymize", None) or "",
        **_simulation_overrides(arguments),
    )


def run_pipeline(path: Path, source, parse: ManifestParse, *, verbose: bool) -> bool:
    """Materialise the whole graph into ``path`` from ``source``; False when files held nothing new.

    ``parse`` is the ``dbt parse`` started for this run: files load and libraries import meanwhile.
    """
    # Fail fast, before Dagster starts, when another process holds the file.
    with open_warehouse(path):
        pass

    _say(f"warehouse: {path}")
    if source.uses_files:
        window = _import_files(path, source)
        if window is None:
            _say("no new plays in these files: the warehouse already holds every valid one; nothing to recompute")
            return False
        start, end = window
    else:
        config = source.simulation_config()
        start, end = config.start_date, config.start_date + timedelta(days=config.n_days)
        profile = "" if source.profile == "default" else f", profile {source.profile}"
        _say(f"simulating {config.n_users:,} users over {config.n_days} days from {start} (seed {config.seed}{profile})")
    # The assets' libraries, imported while dbt parses; the assets themselves need its manifest.
    import dagster as dg
    import dagster_dbt  # noqa: F401
    import ml.evaluation  # noqa: F401
    import ml.pipeline  # noqa: F401

    parse.wait()
    from orchestration import assets, definitions
    from orchestration.partitions import partition_range_tags, plan_range_runs_once
    from orchestration.resources import WarehouseResource

    note = long_range_note((end - start).days, runs_kept=bool(os.environ.get("DAGSTER_HOME")))
    if note is not None:
        _say(note)
    resources = {
        "warehouse": WarehouseResource(path=str(path)),
        "source": source,
        "dbt": definitions.defs.resources["dbt"],
    }
    all_assets = [*definitions.defs.assets, *definitions.defs.asset_checks]
    run_config = {"loggers": {"console": {"config": {"log_level": "INFO" if verbose else "CRITICAL"}}}}
    plan_range_runs_once()
    instance = _dagster_instance()
    stages = run_stages(loading=not source.uses_files)
    for number, stage in enumerate(stages, start=1):
        stage_started = time.perf_counter()
        window_text = f" for UTC days {start} to {end - timedelta(days=1)}" if stage.partitioned else ""
        _say(f"[{number}/{len(stages)}] {stage.title}{window_text} ...")
        tags = partition_range_tags(start, end - timedelta(days=1)) if stage.partitioned else {}
        # dagster-dbt copies every line of dbt's log to stdout; without --verbose the stage lines are the progress.
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sys.stdout if verbose else sink):
            dg.materialize(
                all_assets,
                selection=dg.AssetSelection.assets(*(getattr(assets, name) for name in stage.asset_names)),
                resources=resources,
                run_config=run_config,
                instance=instance,
                tags=tags,
            )
        _say_done(stage_started)
    return True


def _dagster_instance():
    """The instance of $DAGSTER_HOME (created when missing), so runs show in the UI; else an ephemeral one."""
    import dagster as dg

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return dg.DagsterInstance.ephemeral()
    Path(home).mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.get()


def evaluation_block(profile: str) -> tuple[str, str]:
    """The README markers around a profile's evaluation table."""
    name = "detection-evaluation" if profile == "default" else f"detection-evaluation-{profile}"
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def command_evaluate(arguments: argparse.Namespace) -> int:
    import tempfile

    from ml.evaluation import combine_runs, evaluation_markdown
    from ml.pipeline import evaluate_warehouse

    evaluations = []
    with tempfile.TemporaryDirectory(prefix="listening-anomalies-evaluation-") as workdir:
        for seed in arguments.seeds:
            arguments.seed = seed
            path = use_warehouse(Path(workdir) / f"seed-{seed}.duckdb")
            with ManifestParse() as parse:
                run_pipeline(path, _source(arguments), parse, verbose=arguments.verbose)
            with open_warehouse(path) as con:
                evaluation = evaluate_warehouse(con)
            if evaluation is None:
                raise WarehouseError(f"seed {seed}: the run produced no labelled days to evaluate")
            evaluations.append(evaluation)
    source = _source(arguments)
    config = source.simulation_config()
    profile = "" if source.profile == "default" else f" (profile {source.profile})"
    table = (
        f"Simulated {config.n_users:,} users x {config.n_days} days{profile}, seeds {', '.join(map(str, arguments.seeds))}: "
        "mean ± standard deviation over the seeds; per anomaly type and look-alike, the worst seed's value "
        "(the lowest recall, the highest flagged rate).\n\n" + evaluation_markdown(combine_runs(evaluations))
    )
    _say("\n" + table)
    if arguments.readme:
        replace_marked_block(arguments.readme, evaluation_block(source.profile), table)
        _say(f"\nwritten into {arguments.readme}")
    return 0


def replace_marked_block(path: Path, markers: tuple[str, str], content: str) -> None:
    """Replace the text between the two marker lines of ``path`` with ``content``."""
    text = path.read_text(encoding="utf-8")
    begin, end = markers
    if begin not in text or end not in text or text.index(begin) > text.index(end):
        raise UsageError(f"{path} has no block between {begin} and {end} to replace")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{content}\n{end}{tail}", encoding="utf-8")


def _simulation_overrides(arguments: argparse.Namespace) -> dict:
    start = getattr(arguments, "start", None)
    overrides = {
        "n_users": getattr(arguments, "population", None),
        "n_days": getattr(arguments, "days", None),
        "start_date": start.isoformat() if start else None,
        "seed": getattr(arguments, "seed", None),
        "profile": getattr(arguments, "profile", None),
    }
    return {name: value for name, value in overrides.items() if value is not None}


def _import_files(path: Path, source) -> tuple[date, date] | None:
    """Load the files; the UTC days ``[first, last + 1)`` of the new plays, or None when none are new."""
    from warehouse.loaders import load_files

    _say(f"loading {source.events_path}")
    started = time.perf_counter()
    with open_warehouse(path) as con:
        report = load_files(
            con, source.events_path, source.users_path or None, source.load_options(), on_file_read=_FileProgress()
        )
    for line in report.summary_lines():
        _say(f"  {line}")
    _say_done(started)
    if report.first_date is None:
        return None
    return report.first_date, report.last_date + timedelta(days=1)


def command_query(arguments: argparse.Namespace) -> int:
    path = arguments.warehouse or warehouse_path()
    with open_warehouse(path, read_only=True) as con:
        try:
            relation = con.sql(arguments.sql)
        except duckdb.Error as error:
            raise QueryError(_first_line(error)) from None
        if relation is None:
            raise QueryError("the statement returned no rows (the connection is read-only: only queries run)")
        try:
            columns = relation.columns
            rows = relation.limit(arguments.max_rows + 1).fetchall()
        except duckdb.Error as error:
            raise QueryError(_first_line(error)) from None
    _say(format_table(columns, rows[: arguments.max_rows]))
    if len(rows) > arguments.max_rows:
        _say(f"(first {arguments.max_rows} rows shown; use --max-rows for more)")
    return 0


class QueryError(Exception):
    """The query could not run."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    message = text[0] if text else type(error).__name__
    if "read-only" in str(error):
        message = "the warehouse is opened read-only: queries may not write (" + message + ")"
    return message


def format_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Rows as an aligned plain-text table with a header."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(name), *(len(row[index]) for row in cells)]) for index, name in enumerate(columns)]
    line = lambda values: "  ".join(value.ljust(width) for value, width in zip(values, widths)).rstrip()
    return "\n".join([line(columns), line(["-" * width for width in widths]), *(line(row) for row in cells)])


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def command_export(arguments: argparse.Namespace) -> int:
    from warehouse.store import export_raw_tables

    path = require_warehouse(arguments.warehouse or warehouse_path())
    folder = arguments.folder.resolve()
    # Writable: a raw table the warehouse lacks is created empty, so every source Spark reads exists.
    with open_warehouse(path) as con:
        written = export_raw_tables(con, folder)
    _say(f"raw tables of {path} written to {folder}:")
    _say(format_table(["table", "rows"], [(f"raw.{table}", f"{rows:,}") for table, rows in written.items()]))
    _say(
        '\nthe models on Spark (README, "The same models on Spark"), from dbt_project/:\n'
        f'  ../.venv/bin/dbt run-operation register_raw_parquet_tables --args "{{path: {folder}}}" --target spark\n'
        "  ../.venv/bin/dbt build --target spark"
    )
    return 0


def command_ui(arguments: argparse.Namespace) -> int:
    path = use_warehouse(arguments.warehouse or warehouse_path())
    prepare_manifest()
    # dagster dev's code server prepares the dbt project with the `dbt` found on PATH.
    bin_directory = str(Path(sys.executable).parent)
    environment = {
        **os.environ,
        "PATH": os.pathsep.join([bin_directory, os.environ.get("PATH", "")]),
        "DAGSTER_HOME": os.environ.get("DAGSTER_HOME", str(REPOSITORY_ROOT / ".dagster_home")),
    }
    Path(environment["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    _say(f"warehouse: {path}\nDagster UI on http://127.0.0.1:{arguments.port} (Ctrl-C stops it)")
    dagster = Path(sys.executable).with_name("dagster")
    return subprocess.call(
        [str(dagster), "dev", "-w", str(REPOSITORY_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(arguments.port)],
        cwd=REPOSITORY_ROOT,
        env=environment,
    )


COMMANDS = {
    "run": command_run,
    "query": command_query,
    "evaluate": command_evaluate,
    "export": command_export,
    "ui": command_ui,
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        arguments = build_parser().parse_args(argv)
        if not getattr(arguments, "verbose", False):
            # Dagster warns on every import that backfill_policy is beta: noise to a CLI user.
            warnings.filterwarnings("ignore", message=".*is currently in beta")
        return COMMANDS[arguments.command](arguments)
    except (UsageError, QueryError, WarehouseError) as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a failed Dagster run wraps the asset's error; show its cause in one line
        cause = _root_cause(error)
        if "--verbose" not in (argv or sys.argv):
            if isinstance(cause, (WarehouseError, ValueError)):
                print(f"{PROGRAM}: error: {cause} (run again with --verbose for details)", file=sys.stderr)
                return 1
            from dagster_dbt.errors import DagsterDbtCliRuntimeError

            if isinstance(cause, DagsterDbtCliRuntimeError):
                # Its message holds dbt's own errors and the path of the build's dbt.log.
                print(f"{PROGRAM}: error: {cause.description}", file=sys.stderr)
                return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
