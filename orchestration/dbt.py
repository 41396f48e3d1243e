"""The dbt project as Dagster sees it.

The manifest must exist before the dbt assets are defined. ``prepare_if_dev`` builds it under
``dagster dev``; everything else (the CLI, tests, CI, ``make ui``) calls :func:`prepare_manifest`
first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from ml.signals import DBT_PROJECT_DIR
from warehouse.paths import WAREHOUSE_ENV_VAR, warehouse_path

# The dbt installed beside this interpreter, so nothing depends on the virtual environment being activated.
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def prepare_manifest() -> Path:
    """Run ``dbt parse`` so that ``target/manifest.json`` matches the project. Returns its path."""
    environment = {**os.environ, WAREHOUSE_ENV_VAR: str(warehouse_path())}
    completed = subprocess.run(
        [DBT_EXECUTABLE, "parse", "--quiet", "--profiles-dir", str(DBT_PROJECT_DIR)],
        cwd=DBT_PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"dbt parse failed:\n{completed.stdout}{completed.stderr}")
    return dbt_project.manifest_path
