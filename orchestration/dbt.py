"""The dbt project as Dagster sees it.

The manifest must exist before the dbt assets are defined. ``prepare_if_dev`` builds it under
``dagster dev``; everything else (the CLI, tests, CI, ``make ui``) runs ``dbt parse`` first
(:mod:`orchestration.manifest`).
"""

from __future__ import annotations

from functools import cached_property
from importlib.metadata import version as installed_version

from dagster_dbt import DbtCliResource, DbtProject
from packaging.version import Version

from ml.signals import DBT_PROJECT_DIR
from orchestration.manifest import DBT_EXECUTABLE

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class ListeningDbtCliResource(DbtCliResource):
    """``DbtCliResource`` without two start-up costs of every Dagster run that builds dbt.

    dagster-dbt 0.29 runs ``dbt --version`` in a subprocess (to tell dbt Core from the Fusion
    engine) and opens a dbt adapter inside the Dagster process (only used to fetch column metadata
    or row counts, which these assets do not ask for): 5.2 s and 4.0 s measured on this machine, of
    a daily run of about 20 s. The executable is the one beside this interpreter
    (:data:`DBT_EXECUTABLE`), so its version is the installed dbt-core's. Both are private methods
    of the pinned dagster-dbt; ``tests/orchestration`` fails if an upgrade renames them.
    """

    @cached_property
    def _cli_version(self) -> Version:
        return Version(installed_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None
