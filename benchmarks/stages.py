"""One benchmark stage per process: ``python -m benchmarks.stages STAGE PARAMS_JSON``.

:mod:`benchmarks.run` starts each stage in a fresh interpreter so that the peak RSS it reads
for the stage is that stage's own. A stage writes ``<workdir>/stage-<name>.json`` with the
seconds spent on its work (imports and interpreter start excluded; the parent also measures
the whole process), the number of events it handled and anything worth reporting.

Stages (all through the project's own code):

generate  the project's simulator (``warehouse.simulator.simulate_window``) for the period, a
          week at a time, also written to Parquet in the work folder (so load and the pandas
          reference read exactly the same events); the pipeline never writes that copy, so its
          time is reported apart (``parquet_seconds``), not as the stage's work
load      ``warehouse.store.upsert_users`` + ``replace_event_window`` of those weeks into DuckDB
          (what the raw asset does after simulating); reading the Parquet copy is reported
          apart the same way
dbt       Dagster ``materialize`` of the dbt assets (``dbt build``) over the whole partition
          range, with the partition-range tags, as ``orchestration/cli.py`` does: one run
train     Dagster ``materialize`` of ``isolation_forest_model``
score     Dagster ``materialize`` of ``user_day_ml_scores`` over the range (one run)
verdicts  Dagster ``materialize`` of ``user_day_verdicts`` over the range (one run)
daily     the scheduled daily run: ``daily_detection_job``'s assets (raw events, dbt, scores,
          verdicts) for one partition, in one run
pandas    :mod:`benchmarks.pandas_reference` on the Parquet events, then its sanity check
          against dbt's tables
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

CHUNK_DAYS = 7


def _config(p: dict):
    from warehouse.simulator import SimulationConfig

    return SimulationConfig(
        n_users=p["n_users"],
        start_date=date.fromisoformat(p["start_date"]),
        n_days=p.get("config_days", p["n_days"]),
        seed=p["seed"],
    )


def _period(p: dict) -> tuple[date, date]:
    start = date.fromisoformat(p["start_date"])
    return start, start + timedelta(days=p["n_days"])


def _chunks(start: date, end: date):
    chunk = start
    while chunk < end:
        chunk_end = min(chunk + timedelta(days=CHUNK_DAYS), end)
        yield chunk, chunk_end
        chunk = chunk_end


def stage_generate(p: dict, workdir: Path) -> dict:
    """Simulate the period a week at a time; the Parquet copy is the harness's, timed apart."""
    import pyarrow.parquet as pq

    from warehouse.simulator import simulate_users, simulate_window

    config = _config(p)
    out = workdir / "events"
    out.mkdir(exist_ok=True)
    started = time.perf_counter()
    users = simulate_users(config)
    simulate_seconds = time.perf_counter() - started
    pq.write_table(users, workdir / "users.parquet")
    events = 0
    for number, (chunk_start, chunk_end) in enumerate(_chunks(*_period(p))):
        t = time.perf_counter()
        window = simulate_window(config, chunk_start, chunk_end)
        simulate_seconds += time.perf_counter() - t
        stem = f"{number:04d}_{chunk_start}_{chunk_end}"
        pq.write_table(window.events, out / f"{stem}.events.parquet")
        pq.write_table(window.anomaly_labels, out / f"{stem}.anomaly_labels.parquet")
        pq.write_table(window.benign_labels, out / f"{stem}.benign_labels.parquet")
        events += window.events.num_rows
        _progress(f"generated {chunk_start}..{chunk_end - timedelta(days=1)}: {events:,} events")
    return {"seconds": simulate_seconds, "events": events, "parquet_seconds": time.perf_counter() - started - simulate_seconds}


def stage_load(p: dict, workdir: Path) -> dict:
    """Write the simulated weeks into DuckDB as the raw asset does; reading the harness's Parquet
    copy of them is timed apart."""
    import pyarrow.parquet as pq

    from warehouse.connection import open_warehouse
    from warehouse.ingest import SIMULATOR_SOURCE
    from warehouse.store import replace_event_window, upsert_users

    started = time.perf_counter()
    read_seconds = 0.0
    events = 0

    def read(path: Path | str):
        nonlocal read_seconds
        t = time.perf_counter()
        table = pq.read_table(path)
        read_seconds += time.perf_counter() - t
        return table

    with open_warehouse(p["warehouse"]) as con:
        upsert_users(con, read(workdir / "users.parquet"))
        for path in sorted((workdir / "events").glob("*.events.parquet")):
            _, first, end = path.name.split(".")[0].split("_")
            stem = str(path)[: -len(".events.parquet")]
            events += replace_event_window(
                con,
                read(path),
                date.fromisoformat(first),
                date.fromisoformat(end),
                source=SIMULATOR_SOURCE,
                anomaly_labels=read(stem + ".anomaly_labels.parquet"),
                benign_labels=read(stem + ".benign_labels.parquet"),
            )
            _progress(f"loaded {first}..{date.fromisoformat(end) - timedelta(days=1)}: {events:,} events")
    return {"seconds": time.perf_counter() - started - read_seconds, "events": events, "parquet_seconds": read_seconds}


# --------------------------------------------------------------------------- Dagster stages


def _materialize(p: dict, asset_names: tuple[str, ...], first: date | None, last: date | None) -> dict:
    """Materialise ``asset_names`` like orchestration/cli.py does; one run per call."""
    from warehouse.paths import use_warehouse

    use_warehouse(p["warehouse"])
    import dagster as dg

    from orchestration.resources import ListeningSourceResource, WarehouseResource

    from orchestration import definitions
    from orchestration.partitions import partition_range_tags, plan_range_runs_once

    plan_range_runs_once()
    all_assets = [*definitions.defs.assets, *definitions.defs.asset_checks]
    dbt_resource = definitions.defs.resources["dbt"]

    config = _config(p)
    resources = {
        "warehouse": WarehouseResource(path=str(p["warehouse"])),
        "source": ListeningSourceResource(
            n_users=config.n_users, n_days=config.n_days, start_date=config.start_date.isoformat(), seed=config.seed
        ),
        "dbt": dbt_resource,
    }
    tags = partition_range_tags(first, last) if first is not None else {}
    instance = dg.DagsterInstance.get()
    runs_before = instance.get_runs_count()
    started = time.perf_counter()
    result = dg.materialize(
        all_assets,
        selection=_selection(all_assets, asset_names),
        resources=resources,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        instance=instance,
        tags=tags,
        raise_on_error=False,
    )
    seconds = time.perf_counter() - started
    out = {
        "seconds": seconds,
        "success": bool(result.success),
        "dagster_runs": instance.get_runs_count() - runs_before,
        "partitions": ((last - first).days + 1) if first is not None else None,
        "model_seconds": {},
        "code_location": "orchestration.definitions",
    }
    # Wall seconds of each Dagster step (an asset body, or the whole `dbt build` for the dbt assets).
    starts: dict = {}
    out["step_seconds"] = {}
    try:
        for entry in instance.all_logs(result.run_id):
            event = entry.dagster_event
            if event is None:
                continue
            if event.event_type_value == "STEP_START":
                starts[event.step_key] = entry.timestamp
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in starts:
                out["step_seconds"][event.step_key] = entry.timestamp - starts[event.step_key]
    except Exception as error:  # timing detail only: never fail the stage for it
        out["step_seconds_error"] = str(error)[:200]
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        duration = materialization.metadata.get("Execution Duration")
        if duration is not None:
            out["model_seconds"][materialization.asset_key.path[-1]] = float(duration.value)
    if not result.success:
        failures = [e for e in result.all_events if e.is_step_failure]
        messages = []
        for failure in failures:
            error = failure.event_specific_data.error
            while error is not None and error.cause is not None:
                error = error.cause
            messages.append((error.message if error else str(failure.message)).strip().splitlines()[0][:500])
        out["error"] = "; ".join(messages) or "run failed"
    return out


def _selection(all_assets, names):
    """Select assets by their definition's name (``listening_dbt_models`` is a multi-asset of
    many keys, ``raw_listening_events`` has the key ``raw/listening_events``)."""
    import dagster as dg

    picked, missing = [], []
    for name in names:
        found = [
            a for a in all_assets
            if isinstance(a, dg.AssetsDefinition)
            and getattr(a, "node_def", None) is not None
            and name in (a.node_def.name, a.node_def.name.replace("__", "_"))
        ]
        if found:
            picked.extend(found)
        else:
            missing.append(name)
    selection = dg.AssetSelection.assets(*picked) if picked else None
    if missing:
        by_key = dg.AssetSelection.assets(*missing)
        selection = by_key if selection is None else selection | by_key
    return selection


def _range(p: dict) -> tuple[date, date]:
    start, end = _period(p)
    return start, end - timedelta(days=1)


def _events_in_warehouse(p: dict) -> int:
    import duckdb

    con = duckdb.connect(str(p["warehouse"]), read_only=True)
    try:
        return con.execute("select count(*) from raw.listening_events").fetchone()[0]
    finally:
        con.close()


def stage_dbt(p: dict, workdir: Path) -> dict:
    out = _materialize(p, ("listening_dbt_models",), *_range(p))
    out["events"] = _events_in_warehouse(p)
    return out


def stage_train(p: dict, workdir: Path) -> dict:
    out = _materialize(p, ("isolation_forest_model",), None, None)
    out["events"] = _events_in_warehouse(p)
    return out


def stage_score(p: dict, workdir: Path) -> dict:
    out = _materialize(p, ("user_day_ml_scores",), *_range(p))
    out["events"] = _events_in_warehouse(p)
    return out


def stage_verdicts(p: dict, workdir: Path) -> dict:
    out = _materialize(p, ("user_day_verdicts",), *_range(p))
    out["events"] = _events_in_warehouse(p)
    return out


def stage_daily(p: dict, workdir: Path) -> dict:
    day = date.fromisoformat(p["day"])
    assets = ("raw_listening_events", "listening_dbt_models", "user_day_ml_scores", "user_day_verdicts")
    out = _materialize(p, assets if p.get("with_ml", True) else assets[:2], day, day)
    import duckdb

    con = duckdb.connect(str(p["warehouse"]), read_only=True)
    try:
        out["events"] = con.execute(
            "select count(*) from raw.listening_events where played_at >= ? and played_at < ?",
            [day, day + timedelta(days=1)],
        ).fetchone()[0]
        out["history_events"] = con.execute("select count(*) from raw.listening_events").fetchone()[0]
    finally:
        con.close()
    return out


# --------------------------------------------------------------------------- pandas reference


def _mem_available_mb() -> float:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("inf")


# The pandas reference holds every event as Python strings: about 0.6 GB per million events.
PANDAS_MB_PER_MILLION_EVENTS = 600
MEMORY_RESERVE_MB = 1536


def _memory_guard() -> None:
    """Stop this process before it exhausts the machine (other work shares it): exit 3."""
    import threading

    def watch() -> None:
        while True:
            if _mem_available_mb() < MEMORY_RESERVE_MB:
                print("pandas reference stopped: the machine ran out of memory", file=sys.stderr, flush=True)
                os._exit(3)
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()


def stage_pandas(p: dict, workdir: Path) -> dict:
    import duckdb
    import pandas as pd
    import pyarrow.parquet as pq

    from benchmarks import pandas_reference

    files = sorted((workdir / "events").glob("*.events.parquet"))
    expected = sum(pq.ParquetFile(path).metadata.num_rows for path in files)
    needed = expected / 1e6 * PANDAS_MB_PER_MILLION_EVENTS + MEMORY_RESERVE_MB
    if needed > _mem_available_mb():
        return {"success": False, "skipped": True, "events": expected,
                "error": f"skipped: {expected:,} events need ~{needed / 1024:.0f} GB in pandas, "
                         f"{_mem_available_mb() / 1024:.0f} GB available"}
    _memory_guard()
    started = time.perf_counter()
    events = pd.concat(
        [pd.read_parquet(path, columns=pandas_reference.EVENT_COLUMNS) for path in files], ignore_index=True
    )
    users = pd.read_parquet(workdir / "users.parquet")
    read_seconds = time.perf_counter() - started
    _progress(f"pandas: read {len(events):,} events in {read_seconds:.1f} s")
    result = pandas_reference.run_reference(events, users, *_period(p))
    compute_seconds = sum(result.seconds.values())
    total = time.perf_counter() - started
    out = {
        "seconds": total,
        "read_seconds": read_seconds,
        "compute_seconds": compute_seconds,
        "cell_seconds": result.seconds,
        "events": int(len(events)),
        "user_days": int(len(result.features)),
        "rule_flags": int(result.flags["rule_flag"].sum()),
    }
    del events
    if p.get("compare", True):
        try:
            con = duckdb.connect(str(p["warehouse"]), read_only=True)
            try:
                out["sanity"] = pandas_reference.compare_with_dbt(result, con)
            finally:
                con.close()
        except Exception as error:  # the dbt stage may have failed: say so, keep the timing
            out["sanity"] = {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"}
    return out


STAGES = {
    "generate": stage_generate,
    "load": stage_load,
    "dbt": stage_dbt,
    "train": stage_train,
    "score": stage_score,
    "verdicts": stage_verdicts,
    "daily": stage_daily,
    "pandas": stage_pandas,
}


PROGRESS_PREFIX = "@progress "


def _progress(message: str) -> None:
    print(f"{PROGRESS_PREFIX}{message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    name, params = argv[0], json.loads(argv[1])
    workdir = Path(params["workdir"])
    output = workdir / f"stage-{params.get('label', name)}.json"
    try:
        result = STAGES[name](params, workdir)
    except Exception as error:
        import traceback

        traceback.print_exc()
        result = {"success": False, "error": f"{type(error).__name__}: {str(error).strip().splitlines()[0][:500] if str(error).strip() else ''}"}
    result.setdefault("success", "error" not in result)
    output.write_text(json.dumps(result, default=str))
    return 0 if result["success"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
