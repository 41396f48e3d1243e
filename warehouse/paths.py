"""Where the warehouse file lives.

One environment variable, ``LISTENING_WAREHOUSE``, is read by the Python code and by dbt's
``profiles.yml`` alike, so both always open the same file.
"""

from __future__ import annotations

import os
from pathlib import Path

WAREHOUSE_ENV_VAR = "LISTENING_WAREHOUSE"
REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WAREHOUSE_PATH = REPOSITORY_ROOT / "warehouse" / "listening_anomalies.duckdb"
#: Every IANA zone with its country and whether it is the country's main zone (a dbt seed, also read by the loader).
COUNTRY_TIME_ZONES_PATH = REPOSITORY_ROOT / "dbt_project" / "seeds" / "time_zone_countries.csv"


def warehouse_path() -> Path:
    """The warehouse file: ``$LISTENING_WAREHOUSE`` when set, else the embedded default."""
    configured = os.environ.get(WAREHOUSE_ENV_VAR, "").strip()
    return Path(configured).expanduser().resolve() if configured else DEFAULT_WAREHOUSE_PATH


def use_warehouse(path: str | os.PathLike[str]) -> Path:
    """Point this process (and the dbt processes it starts) at ``path``."""
    resolved = Path(path).expanduser().resolve()
    os.environ[WAREHOUSE_ENV_VAR] = str(resolved)
    return resolved
