"""The benchmark: ``python -m benchmarks.run [--sizes S,M,L] [--repeats N] [--skip-pandas] [--daily-cost] [--json PATH]``.

Each stage runs in a fresh interpreter (:mod:`benchmarks.stages`); this process measures its
wall time and its peak memory two ways:

* ``peak_rss_mb``: the stage process's own peak resident set, from ``os.wait4``'s rusage
  (``ru_maxrss``; for a stage that starts subprocesses, such as dbt, the largest of the stage
  process and the children it waited for), exact and per stage;
* ``tree_rss_mb``: the largest *sum* of RSS over the stage's whole process tree (the Dagster
  process plus the dbt process it starts), sampled from /proc every 0.2 s.

See benchmarks/README.md for what each stage measures and the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"

# name -> (users, days)
SIZES = {"tiny": (50, 10), "S": (1_000, 30), "M": (10_000, 90), "L": (40_000, 90)}
START_DATE = "2024-01-01"
SEED = 7
PIPELINE_STAGES = ("generate", "load", "dbt", "train", "score", "verdicts")
# The pandas reference holds every event in memory (~0.5 GB per million events measured at M):
# above this many events it cannot fit in 24 GB, so it is skipped with a note. Below it, the
# stage itself checks the memory available (benchmarks/stages.py).
PANDAS_MAX_EVENTS = 45_000_000

TARGETS = {
    "M": {"end_to_end_seconds": 60, "dbt_vs_pandas_speedup": 10, "peak_rss_mb": 3 * 1024},
    "L": {"peak_rss_mb": 6 * 1024},
    "daily_cost_ratio": 1.25,
}


def say(message: str) -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------- measuring one stage


def _process_tree_rss_kb(root_pid: int) -> int:
    """Sum of VmRSS over ``root_pid`` and all its descendants (0 when it is gone)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            with open(f"/proc/{entry}/statm") as handle:
                pages = int(handle.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue
        pid = int(entry)
        children.setdefault(ppid, []).append(pid)
        rss[pid] = pages * os.sysconf("SC_PAGE_SIZE") // 1024
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


IN_PROCESS = False  # --in-process: run stages in this interpreter (the smoke test; memory is then cumulative)


def run_stage_in_process(name: str, params: dict, env: dict, log_path: Path) -> dict:
    """Run one stage in this process: imports are paid once, so it is quick, but the peak RSS is
    this process's peak so far, not the stage's own."""
    import contextlib
    import resource

    from benchmarks import stages

    saved = dict(os.environ)
    os.environ.update(env)
    started = time.perf_counter()
    try:
        with open(log_path, "a") as log, contextlib.redirect_stdout(log):
            try:
                result = stages.STAGES[name](params, Path(params["workdir"]))
            except Exception as error:
                result = {"success": False, "error": f"{type(error).__name__}: {str(error).strip()[:500]}"}
    finally:
        os.environ.clear()
        os.environ.update(saved)
    result.setdefault("success", "error" not in result)
    result["process_seconds"] = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result["peak_rss_mb"] = max(rss, children) / 1024
    result["tree_rss_mb"] = result["peak_rss_mb"]
    result["in_process"] = True
    if result.get("events") and result.get("seconds"):
        result["events_per_second"] = result["events"] / result["seconds"]
    return result


def run_stage(name: str, params: dict, env: dict, log_path: Path) -> dict:
    """Run one stage in a fresh interpreter; its JSON result plus wall time and peak memory."""
    if IN_PROCESS:
        return run_stage_in_process(name, params, env, log_path)
    label = params.get("label", name)
    output = Path(params["workdir"]) / f"stage-{label}.json"
    output.unlink(missing_ok=True)
    started = time.perf_counter()
    with open(log_path, "a") as log:
        log.write(f"\n===== {label} {datetime.now().isoformat(timespec='seconds')}\n")
        log.flush()
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.stages", name, json.dumps(params)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.PIPE,
            text=True,
        )
        peak_tree = [0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak_tree[0] = max(peak_tree[0], _process_tree_rss_kb(process.pid))
                stop.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # Progress lines come on stderr: show them and keep them in the log.
        for line in process.stderr:
            log.write(line)
            if line.startswith("@progress "):
                print("      " + line[len("@progress "):].rstrip(), flush=True)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        stop.set()
        sampler.join()
    wall = time.perf_counter() - started
    result = json.loads(output.read_text()) if output.exists() else {
        "success": False, "error": f"stage process exited with {process.returncode} (see {log_path})"
    }
    result["process_seconds"] = wall
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    result["tree_rss_mb"] = max(peak_tree[0], usage.ru_maxrss) / 1024
    if result.get("events") and result.get("seconds"):
        result["events_per_second"] = result["events"] / result["seconds"]
    return result


# --------------------------------------------------------------------------- one size


def parse_size(text: str) -> tuple[str, int, int]:
    if text in SIZES:
        return (text, *SIZES[text])
    try:
        users, days = text.lower().split("x")
        return text, int(users), int(days)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"unknown size {text!r}: use {', '.join(SIZES)} or USERSxDAYS (e.g. 200x14)"
        ) from None


def stage_environment(workdir: Path, warehouse: Path) -> dict:
    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "LISTENING_WAREHOUSE": str(warehouse), "PYTHONUNBUFFERED": "1"}
    # dagster-dbt looks for `dbt` on PATH: `make benchmark` runs .venv/bin/python without activating the venv.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


def run_pipeline(name: str, users: int, days: int, workdir: Path, *, skip_pandas: bool, stages=PIPELINE_STAGES) -> dict:
    """Every stage once on a fresh warehouse in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    warehouse = workdir / "warehouse.duckdb"
    for stale in (warehouse, Path(f"{warehouse}.wal")):
        stale.unlink(missing_ok=True)
    params = {"n_users": users, "n_days": days, "start_date": START_DATE, "seed": SEED,
              "workdir": str(workdir), "warehouse": str(warehouse)}
    env = stage_environment(workdir, warehouse)
    log = workdir / "stages.log"
    results: dict = {}
    for stage in stages:
        say(f"  [{name}] {stage} ...")
        log_offset = log.stat().st_size if log.exists() else 0
        results[stage] = run_stage(stage, params, env, log)
        if stage == "dbt":
            results[stage].update(dbt_node_seconds(_read_from(log, log_offset)))
        _say_stage(stage, results[stage])
    if not skip_pandas:
        events = results.get("generate", {}).get("events", 0)
        if events > PANDAS_MAX_EVENTS:
            results["pandas"] = {"success": False, "skipped": True,
                                 "error": f"skipped: {events:,} events exceed the {PANDAS_MAX_EVENTS:,} the pandas reference fits in memory here"}
            say(f"  [{name}] pandas reference skipped ({events:,} events would not fit in memory)")
        else:
            say(f"  [{name}] pandas reference ...")
            results["pandas"] = run_stage("pandas", params, env, log)
            _say_stage("pandas", results["pandas"])
    return results


def _say_stage(stage: str, r: dict) -> None:
    if not r.get("success", False):
        say(f"      FAILED: {r.get('error', 'unknown error')}")
        return
    extra = ""
    if r.get("dagster_runs") is not None:
        extra = f", {r['dagster_runs']} Dagster run(s)" + (f" for {r['partitions']} partitions" if r.get("partitions") else "")
    say(f"      {r['seconds']:.1f} s work, {r['process_seconds']:.1f} s process, "
        f"peak RSS {r['peak_rss_mb']:.0f} MB (tree {r['tree_rss_mb']:.0f} MB){extra}")


# --------------------------------------------------------------------------- summarising


def _median_stage(runs: list[dict]) -> dict:
    ok = [r for r in runs if r.get("success")]
    if not ok:
        return {"success": False, "error": runs[-1].get("error") if runs else "not run", "repeats": runs}
    out = {"success": True, "repeats": runs}
    # The lower median, so that every figure is one a run measured (with an even number of runs
    # too), and the details of the run whose work seconds it is, so that its per-model and per-step
    # seconds add up to the stage's.
    for key in ("seconds", "process_seconds", "peak_rss_mb", "tree_rss_mb", "events_per_second"):
        values = [r[key] for r in ok if r.get(key) is not None]
        if values:
            out[key] = statistics.median_low(values)
    median_run = next(r for r in ok if r["seconds"] == out["seconds"])
    out["events"] = median_run.get("events")
    for key in ("dagster_runs", "partitions", "sanity", "step_seconds", "cell_seconds", "read_seconds", "compute_seconds", "model_seconds", "test_seconds", "parquet_seconds"):
        if key in median_run:
            out[key] = median_run[key]
    return out


# dbt's own result lines in the stage log, e.g. "27 of 91 OK created sql incremental model
# analytics.user_day_features .... [OK in 25.06s]" and "24 of 91 PASS not_null_x .... [PASS in 2.29s]".
_DBT_MODEL_LINE = re.compile(r"OK created sql \w+ model \w+\.(\w+) .*? in ([\d.]+)s\]")
_DBT_TEST_LINE = re.compile(r"\d+ of \d+ (?:PASS|WARN|FAIL|ERROR) \S+ .*? in ([\d.]+)s\]")


def _read_from(path: Path, offset: int) -> str:
    with open(path, errors="replace") as handle:
        handle.seek(offset)
        return handle.read()


def dbt_node_seconds(log_text: str) -> dict:
    """Seconds per model and of all data tests, summed over every ``dbt build`` of a dbt stage.

    Read from dbt's own result lines: a range built in several chunks reports only its last
    build's models to Dagster, so the Dagster metadata undercounts the models.
    """
    models: dict[str, float] = {}
    for name, seconds in _DBT_MODEL_LINE.findall(log_text):
        models[name] = models.get(name, 0.0) + float(seconds)
    tests = sum(float(seconds) for seconds in _DBT_TEST_LINE.findall(log_text))
    return {"model_seconds": models, "test_seconds": tests} if models else {}


def dbt_breakdown(dbt: dict) -> dict:
    """dbt seconds per layer (models of every build), data tests, and the rest (dbt start-up,
    parse, ``dbt --version``, Dagster)."""
    models = dbt.get("model_seconds") or {}
    features = sum(v for k, v in models.items() if k.startswith(("stg_", "int_")) or k == "user_day_features")
    layers = {
        "dbt_features": features,
        "dbt_baselines": models.get("user_day_baselines", 0.0),
        "dbt_flags": models.get("user_day_rule_flags", 0.0),
    }
    layers["dbt_models_total"] = sum(models.values())
    layers["dbt_tests"] = dbt.get("test_seconds", 0.0)
    layers["dbt_overhead"] = max(dbt.get("seconds", 0.0) - layers["dbt_models_total"] - layers["dbt_tests"], 0.0)
    return layers


def summarise_size(name: str, users: int, days: int, repeats: list[dict]) -> dict:
    stages = {stage: _median_stage([r[stage] for r in repeats if stage in r]) for stage in repeats[0]}
    pipeline = [s for s in PIPELINE_STAGES if s in stages]
    summary: dict = {
        "users": users,
        "days": days,
        "events": stages.get("generate", {}).get("events"),
        "stages": stages,
        "all_stages_succeeded": all(stages[s].get("success") for s in pipeline),
    }
    if stages.get("dbt", {}).get("success"):
        summary["dbt_breakdown"] = dbt_breakdown(stages["dbt"])
    if all(stages[s].get("success") for s in pipeline):
        summary["end_to_end_seconds"] = sum(stages[s]["seconds"] for s in pipeline)
        summary["end_to_end_process_seconds"] = sum(stages[s]["process_seconds"] for s in pipeline)
        summary["peak_rss_mb"] = max(stages[s]["peak_rss_mb"] for s in pipeline)
        summary["peak_tree_rss_mb"] = max(stages[s]["tree_rss_mb"] for s in pipeline)
    pandas = stages.get("pandas", {})
    if pandas.get("success") and stages.get("dbt", {}).get("success"):
        dbt = stages["dbt"]
        summary["pandas_vs_dbt"] = {
            "pandas_compute_seconds": pandas["compute_seconds"],
            "pandas_total_seconds": pandas["seconds"],
            "pandas_peak_rss_mb": pandas["peak_rss_mb"],
            "dbt_stage_seconds": dbt["seconds"],
            "dbt_models_seconds": summary["dbt_breakdown"]["dbt_models_total"],
            # The headline: the pandas feature/baseline/flag computation vs the whole dbt stage
            # (Dagster run, dbt start-up, every model and every dbt test).
            "speedup": pandas["compute_seconds"] / dbt["seconds"],
            "speedup_models_only": pandas["compute_seconds"] / max(summary["dbt_breakdown"]["dbt_models_total"], 1e-9),
        }
    if pandas.get("sanity"):
        summary["sanity"] = pandas["sanity"]
    summary["targets"] = check_targets(name, summary)
    return summary


def check_targets(name: str, summary: dict) -> dict:
    target = TARGETS.get(name)
    if not target:
        return {}
    out = {}
    if "end_to_end_seconds" in target:
        e2e = summary.get("end_to_end_seconds")
        out["end_to_end_under_60_s"] = {"value": e2e, "met": e2e is not None and e2e < target["end_to_end_seconds"]}
    if "dbt_vs_pandas_speedup" in target:
        speedup = summary.get("pandas_vs_dbt", {}).get("speedup")
        out["dbt_10x_faster_than_pandas"] = {"value": speedup, "met": speedup is not None and speedup >= target["dbt_vs_pandas_speedup"]}
    if "peak_rss_mb" in target:
        peak = summary.get("peak_tree_rss_mb")
        out[f"peak_rss_under_{target['peak_rss_mb'] // 1024}_gb"] = {"value": peak, "met": peak is not None and peak < target["peak_rss_mb"]}
    if name == "L":
        out["completes"] = {"value": summary["all_stages_succeeded"], "met": summary["all_stages_succeeded"]}
    return out


def format_size_table(name: str, s: dict) -> str:
    header = f"{'stage':<22}{'work s':>9}{'process s':>11}{'events/s':>13}{'peak RSS MB':>13}{'tree RSS MB':>13}  note"
    lines = [f"\n== {name}: {s['users']:,} users x {s['days']} days, {s['events'] or 0:,} events", header, "-" * len(header)]
    order = [*PIPELINE_STAGES, "pandas"]
    for stage in [x for x in order if x in s["stages"]] + [x for x in s["stages"] if x not in order]:
        r = s["stages"][stage]
        if not r.get("success"):
            lines.append(f"{stage:<22}{'-':>9}{'-':>11}{'-':>13}{'-':>13}{'-':>13}  {r.get('error', 'failed')[:120]}")
            continue
        note = ""
        if r.get("dagster_runs") is not None:
            note = f"{r['dagster_runs']} Dagster run" + (f", {r['partitions']} partitions" if r.get("partitions") else "")
        if stage == "pandas":
            note = f"read {r['read_seconds']:.1f} s + compute {r['compute_seconds']:.1f} s"
        if r.get("parquet_seconds") is not None:
            note = f"+ {r['parquet_seconds']:.1f} s on the harness's Parquet copy, not counted"
        lines.append(
            f"{stage:<22}{r['seconds']:>9.2f}{r['process_seconds']:>11.2f}{r.get('events_per_second', 0):>13,.0f}"
            f"{r['peak_rss_mb']:>13,.0f}{r['tree_rss_mb']:>13,.0f}  {note}"
        )
        if stage == "dbt" and "dbt_breakdown" in s:
            for layer, seconds in s["dbt_breakdown"].items():
                lines.append(f"  {layer:<20}{seconds:>9.2f}")
    if "end_to_end_seconds" in s:
        lines.append(
            f"end to end (generate..verdicts): {s['end_to_end_seconds']:.1f} s of stage work "
            f"({s['end_to_end_process_seconds']:.1f} s with one fresh process per stage), "
            f"peak RSS {s['peak_rss_mb']:,.0f} MB (process tree {s['peak_tree_rss_mb']:,.0f} MB)"
        )
    if "pandas_vs_dbt" in s:
        c = s["pandas_vs_dbt"]
        lines.append(
            f"pandas reference {c['pandas_compute_seconds']:.1f} s (+{c['pandas_total_seconds'] - c['pandas_compute_seconds']:.1f} s reading), "
            f"peak {c['pandas_peak_rss_mb']:,.0f} MB; dbt stage {c['dbt_stage_seconds']:.1f} s "
            f"(models {c['dbt_models_seconds']:.1f} s): dbt is {c['speedup']:.1f}x faster "
            f"({c['speedup_models_only']:.1f}x counting model time only)"
        )
    if "sanity" in s:
        z = s["sanity"]
        if "error" in z:
            lines.append(f"sanity check: {z['error']}")
        else:
            worst = max(z["max_abs_diff"].items(), key=lambda kv: kv[1], default=("-", 0.0))
            lines.append(
                f"sanity check vs dbt: {z['user_days_matched']:,}/{z['user_days_dbt']:,} user-days matched; "
                f"max |diff| simple features {z['simple_features_max_abs_diff']:.2g}, all features {worst[1]:.2g} ({worst[0]}), "
                f"baselines {z.get('baselines_max_abs_diff', float('nan')):.2g}; deviating families counted alike on "
                f"{100 * z['family_count_agreement']:.2f}% ({z['days_with_deviating_families']} days with any in dbt); "
                f"rule flags agree on {100 * z['rule_flag_agreement']:.2f}% "
                f"({z['rule_flags_pandas']} pandas vs {z['rule_flags_dbt']} dbt)"
            )
    for target, verdict in s.get("targets", {}).items():
        value = verdict["value"]
        shown = f"{value:,.1f}" if isinstance(value, float) else str(value)
        lines.append(f"target {target}: {'MET' if verdict['met'] else 'NOT MET'} ({shown})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- flat daily cost


def run_daily_cost(workdir: Path, users: int, histories: tuple[int, ...], repeats: int) -> dict:
    """Build each history, then time the scheduled daily run on the next ``repeats`` days."""
    out: dict = {"users": users, "histories": {}}
    for history in histories:
        hdir = workdir / f"daily-{users}x{history}"
        say(f"  [daily cost] building {history} days of history for {users:,} users ...")
        build = run_pipeline(f"history {history}d", users, history, hdir, skip_pandas=True,
                             stages=("generate", "load", "dbt", "train", "score", "verdicts"))
        failed = [s for s in ("generate", "load", "dbt") if not build[s].get("success")]
        entry: dict = {"build": {s: {k: r.get(k) for k in ("seconds", "success", "error", "events")} for s, r in build.items()}}
        # Without a trained model the daily run can only cover raw events and dbt: say so.
        with_ml = all(build[s].get("success") for s in ("train", "score", "verdicts"))
        entry["scope"] = "raw events + dbt + scores + verdicts" if with_ml else (
            "raw events + dbt only (ML stages failed: " + next(build[s].get("error", "") for s in ("train", "score", "verdicts") if not build[s].get("success")) + ")"
        )
        if failed:
            entry["error"] = f"history build failed at {failed[0]}: {build[failed[0]].get('error')}"
            out["histories"][history] = entry
            say(f"      {entry['error']}")
            continue
        warehouse = hdir / "warehouse.duckdb"
        env = stage_environment(hdir, warehouse)
        runs = []
        for k in range(repeats):
            day = date.fromisoformat(START_DATE) + timedelta(days=history + k)
            params = {"n_users": users, "n_days": history, "config_days": history + repeats, "start_date": START_DATE,
                      "seed": SEED, "workdir": str(hdir), "warehouse": str(warehouse), "day": day.isoformat(),
                      "label": f"daily-{day}", "with_ml": with_ml}
            say(f"  [daily cost] daily run for {day} on {history} days of history ...")
            r = run_stage("daily", params, env, hdir / "stages.log")
            _say_stage("daily", r)
            runs.append(r)
        entry["runs"] = runs
        entry["daily"] = _median_stage(runs)
        out["histories"][history] = entry
    short, long_ = (out["histories"].get(h, {}).get("daily", {}) for h in (min(histories), max(histories)))
    if short.get("success") and long_.get("success"):
        out["ratio"] = long_["seconds"] / short["seconds"]
        out["ratio_process"] = long_["process_seconds"] / short["process_seconds"]
        out["target_met"] = out["ratio"] <= TARGETS["daily_cost_ratio"]
    return out


def format_daily_cost(d: dict) -> str:
    lines = [f"\n== flat daily cost: {d['users']:,} users, daily run = raw events + dbt + scores + verdicts for one new day (one Dagster run)"]
    for history, entry in d["histories"].items():
        daily = entry.get("daily", {})
        if not daily.get("success"):
            lines.append(f"{history:>4} days of history: FAILED: {entry.get('error') or daily.get('error')}")
            continue
        seconds = ", ".join(f"{r['seconds']:.1f}" for r in entry["runs"] if r.get("success"))
        models = daily.get("model_seconds") or {}
        lines.append(f"     scope: {entry.get('scope')}")
        lines.append(
            f"{history:>4} days of history: median {daily['seconds']:.2f} s work ({seconds}), "
            f"{daily['process_seconds']:.2f} s process, peak RSS {daily['peak_rss_mb']:,.0f} MB; "
            f"dbt models {sum(models.values()):.2f} s; {daily.get('dagster_runs')} Dagster run"
        )
        steps = daily.get("step_seconds") or {}
        if steps:
            lines.append("     steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))
    if "ratio" in d:
        lines.append(
            f"ratio {max(d['histories'])} d / {min(d['histories'])} d: {d['ratio']:.2f} (process {d['ratio_process']:.2f}); "
            f"target <= {TARGETS['daily_cost_ratio']}: {'MET' if d['target_met'] else 'NOT MET'}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="S", help="comma-separated: tiny, S, M, L or USERSxDAYS (default S)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per size; the report takes the median (default 1)")
    parser.add_argument("--skip-pandas", action="store_true", help="do not run the pandas reference")
    parser.add_argument("--daily-cost", action="store_true", help="also run the flat-daily-cost benchmark")
    parser.add_argument("--daily-users", type=int, default=1_000, help="population of the daily-cost benchmark (default 1000)")
    parser.add_argument("--daily-histories", default="30,365", help="history lengths in days compared (default 30,365)")
    parser.add_argument("--daily-repeats", type=int, default=3, help="daily runs per history; the median counts (default 3)")
    parser.add_argument("--json", type=Path, help="write the JSON report here (default benchmarks/results/benchmark-<time>.json)")
    parser.add_argument("--workdir", type=Path, help="where warehouses and events go (default benchmarks/results/work)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the stages in this process (quick, for the smoke test): peak RSS is then cumulative, not per stage")
    parser.add_argument("--keep", action="store_true", help="keep the work folders (warehouses, events) afterwards")
    return parser


def prepare_manifest(env: dict) -> None:
    """``dbt parse`` once, so that the stages can load the dbt assets."""
    completed = subprocess.run(
        [sys.executable, "-c", "from orchestration.manifest import prepare_manifest; prepare_manifest()"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    if completed.returncode != 0:
        raise SystemExit(f"dbt parse failed:\n{completed.stdout}{completed.stderr}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sizes = [parse_size(text.strip()) for text in args.sizes.split(",") if text.strip()]
    global IN_PROCESS
    IN_PROCESS = args.in_process
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = (args.workdir or RESULTS_DIR / "work").resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    json_path = args.json or RESULTS_DIR / f"benchmark-{stamp}.json"
    report: dict = {
        "started": datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
        "command": "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "sizes": {},
    }
    say(f"benchmark: sizes {', '.join(n for n, _, _ in sizes)}, {args.repeats} repeat(s); work folder {workdir}")
    say("preparing the dbt manifest (dbt parse) ...")
    prepare_manifest(stage_environment(workdir, workdir / "parse.duckdb"))
    started = time.perf_counter()
    for name, users, days in sizes:
        repeats = []
        for repeat in range(args.repeats):
            say(f"\n[{name}] {users:,} users x {days} days, run {repeat + 1}/{args.repeats}")
            repeats.append(run_pipeline(name, users, days, workdir / f"{name}-{repeat}", skip_pandas=args.skip_pandas))
        summary = summarise_size(name, users, days, repeats)
        report["sizes"][name] = summary
        say(format_size_table(name, summary))
        _write_json(json_path, report)
        if not args.keep:
            for repeat in range(args.repeats):
                _remove_bulk(workdir / f"{name}-{repeat}")
    if args.daily_cost:
        histories = tuple(int(h) for h in args.daily_histories.split(","))
        say(f"\n[daily cost] {args.daily_users:,} users, histories {histories} days")
        report["daily_cost"] = run_daily_cost(workdir, args.daily_users, histories, args.daily_repeats)
        say(format_daily_cost(report["daily_cost"]))
        if not args.keep:
            for history in histories:
                _remove_bulk(workdir / f"daily-{args.daily_users}x{history}")
    report["total_seconds"] = time.perf_counter() - started
    _write_json(json_path, report)
    say(f"\nJSON report: {json_path}")
    ok = all(s["all_stages_succeeded"] for s in report["sizes"].values())
    return 0 if ok else 1


def _write_json(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str))


def _remove_bulk(folder: Path) -> None:
    """Drop the big files of a work folder (events, warehouse); keep logs and stage JSON."""
    import shutil

    shutil.rmtree(folder / "events", ignore_errors=True)
    for pattern in ("*.duckdb", "*.duckdb.wal"):
        for path in folder.glob(pattern):
            path.unlink(missing_ok=True)
    shutil.rmtree(folder / "warehouse_models", ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
