"""Shared fixtures: every test gets its own warehouse file; the dbt manifest is built once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from warehouse.paths import WAREHOUSE_ENV_VAR


@pytest.fixture(autouse=True, scope="session")
def ephemeral_dagster_instance() -> Iterator[None]:
    """Runs made by tests stay out of the person's Dagster instance (`make` exports DAGSTER_HOME)."""
    saved = os.environ.pop("DAGSTER_HOME", None)
    yield
    if saved is not None:
        os.environ["DAGSTER_HOME"] = saved


@pytest.fixture
def warehouse_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh warehouse path, also exported as $LISTENING_WAREHOUSE for dbt."""
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv(WAREHOUSE_ENV_VAR, str(path))
    return path


@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    """``dbt parse`` once per session: the dbt assets cannot be defined without the manifest."""
    from orchestration.manifest import prepare_manifest

    return prepare_manifest()
