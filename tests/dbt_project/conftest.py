"""dbt run the way a person runs it: in the project folder, with its profiles, output captured.

The commands of one call share a process: dbt starts once, and dbt-spark's session method keeps
its Spark (a JVM, its JIT warm) from one command to the next. A process per command cost the
Spark test about 90 s more (330 s against 240 s here) and the DuckDB ones about 45 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Callable, Sequence

import pytest

from orchestration.dbt import DBT_PROJECT_DIR

# dbt's programmatic entry point, command after command, stopping at the first that fails with
# the exit code dbt's CLI gives (1 failed, 2 could not run).
_COMMANDS_IN_ONE_PROCESS = """
import json, sys
from dbt.cli.main import dbtRunner
for arguments in json.loads(sys.argv[1]):
    outcome = dbtRunner().invoke(arguments)
    if not outcome.success:
        sys.exit(1 if outcome.exception is None else 2)
"""


def _run_dbt(*commands: Sequence[str], target: str | None = None) -> subprocess.CompletedProcess:
    options = [*(["--target", target] if target else []), "--profiles-dir", str(DBT_PROJECT_DIR)]
    return subprocess.run(
        [sys.executable, "-c", _COMMANDS_IN_ONE_PROCESS, json.dumps([[*command, *options] for command in commands])],
        cwd=DBT_PROJECT_DIR,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def dbt() -> Callable[..., subprocess.CompletedProcess]:
    """``dbt(*commands, target=None)``: dbt's commands (each a list of its arguments) run in one
    process until one fails, on the profile's default target unless given; the finished process."""
    return _run_dbt
