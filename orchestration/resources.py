"""Resources: the warehouse connection and the choice of raw-event source."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Iterator

import dagster as dg
import duckdb
from pydantic import Field

from warehouse.connection import open_warehouse
from warehouse.loaders import LoadOptions
from warehouse.paths import warehouse_path
from warehouse.simulator import SIMULATION_PROFILES, SimulationConfig, profile_config

_SIMULATION_DEFAULTS = SimulationConfig()


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file (``$LISTENING_WAREHOUSE`` or the embedded default)."""

    path: str = Field(default_factory=lambda: str(warehouse_path()), description="Path of the DuckDB warehouse file.")

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with open_warehouse(self.path, read_only=read_only) as con:
            yield con

    @property
    def model_directory(self) -> Path:
        """Where Isolation Forest artifacts are kept: beside the warehouse file."""
        warehouse_file = Path(self.path)
        return warehouse_file.parent / f"{warehouse_file.stem}_models"


class ListeningSourceResource(dg.ConfigurableResource):
    """Where raw listening events come from: the simulator (default) or a person's own files."""

    events_path: str = Field(default="", description="Events file, folder, glob or .zip; empty means the simulator.")
    users_path: str = Field(default="", description="Optional users file (user_id, timezone).")
    user_id: str = Field(default="", description="User id for a single person's Spotify export (default: the folder name).")
    timezone: str = Field(
        default="",
        description=(
            "IANA zone assumed where no users file gives one (default UTC), or `from-country`: the main zone "
            "of the country most of the user's plays come from."
        ),
    )
    pseudonymize_salt: str = Field(default="", description="When set, user ids are replaced by salted hashes.")
    n_users: int = Field(default=_SIMULATION_DEFAULTS.n_users, description="Simulated population size.")
    n_days: int = Field(default=_SIMULATION_DEFAULTS.n_days, description="Simulated period length in days.")
    start_date: str = Field(default=_SIMULATION_DEFAULTS.start_date.isoformat(), description="First simulated day.")
    seed: int = Field(default=_SIMULATION_DEFAULTS.seed, description="Simulation seed.")
    profile: str = Field(
        default="default",
        description=f"Simulation profile, a named set of assumptions: {', '.join(SIMULATION_PROFILES)} (docs/simulation.md).",
    )

    @property
    def uses_files(self) -> bool:
        return bool(self.events_path.strip())

    def load_options(self) -> LoadOptions:
        return LoadOptions(
            user_id=self.user_id or None,
            timezone=self.timezone or None,
            pseudonymize_salt=self.pseudonymize_salt or None,
        )

    def simulation_config(self) -> SimulationConfig:
        return profile_config(
            self.profile,
            n_users=self.n_users,
            n_days=self.n_days,
            start_date=date.fromisoformat(self.start_date),
            seed=self.seed,
        )
