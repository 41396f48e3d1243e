"""``dbt parse``, which the dbt assets need before they are defined.

Kept apart from :mod:`orchestration.dbt` and free of Dagster imports, so that a run starts the
parse before it loads its libraries (Dagster, dagster-dbt, scikit-learn: several seconds).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ml.signals import DBT_PROJECT_DIR
from warehouse.paths import WAREHOUSE_ENV_VAR, warehouse_path

# The dbt installed beside this interpreter, so nothing depends on the virtual environment being activated.
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))
MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"


class ManifestParse:
    """``dbt parse`` in a subprocess, started at once, so that a run loads files and imports its
    libraries meanwhile (dbt parses on one core for about 5 s). A context manager: leaving it stops
    a parse still running (the run ended early, with nothing new or an error)."""

    def __init__(self) -> None:
        environment = {**os.environ, WAREHOUSE_ENV_VAR: str(warehouse_path())}
        self.process = subprocess.Popen(
            [DBT_EXECUTABLE, "parse", "--quiet", "--profiles-dir", str(DBT_PROJECT_DIR)],
            cwd=DBT_PROJECT_DIR,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait(self) -> Path:
        """The manifest's path, once ``target/manifest.json`` matches the project."""
        stdout, stderr = self.process.communicate()
        if self.process.returncode != 0:
            raise RuntimeError(f"dbt parse failed:\n{stdout}{stderr}")
        return MANIFEST_PATH

    def __enter__(self) -> ManifestParse:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def prepare_manifest() -> Path:
    """Run ``dbt parse`` so that ``target/manifest.json`` matches the project. Returns its path."""
    with ManifestParse() as parse:
        return parse.wait()
