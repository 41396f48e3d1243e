"""dbt run the way a person runs it: in the project folder, with its profiles, output captured."""

from __future__ import annotations

import subprocess
from typing import Callable

import pytest

from orchestration.dbt import DBT_EXECUTABLE, DBT_PROJECT_DIR


def _run_dbt(*arguments: str, target: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DBT_EXECUTABLE, *arguments, *(["--target", target] if target else []), "--profiles-dir", str(DBT_PROJECT_DIR)],
        cwd=DBT_PROJECT_DIR,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def dbt() -> Callable[..., subprocess.CompletedProcess]:
    """``dbt(*arguments, target=None)``: the finished dbt command (profile's default target unless given)."""
    return _run_dbt
