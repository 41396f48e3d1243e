"""Opening the warehouse, with errors a person can act on.

DuckDB allows one writing process per file; a second writer fails with "Could not set lock on
file". That is turned into :class:`WarehouseLockedError` naming the file and what to do.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from warehouse.paths import warehouse_path

SCHEMAS = ("raw", "analytics")

# DuckDB takes 80% of RAM by default; bounded, it spills to disk instead. dbt's profiles.yml
# reads the same variable with the same default, so Python and dbt stay within one budget.
MEMORY_LIMIT_ENV_VAR = "LISTENING_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "2GB"


class WarehouseError(RuntimeError):
    """A problem with the warehouse file that the user can fix."""


class WarehouseLockedError(WarehouseError):
    """Another process holds the DuckDB write lock."""


class WarehouseMissingError(WarehouseError):
    """The warehouse file does not exist yet."""


def require_warehouse(path: str | Path) -> Path:
    """``path`` as a Path, when a warehouse file is there; :class:`WarehouseMissingError` otherwise."""
    target = Path(path)
    if not target.exists():
        raise WarehouseMissingError(
            f"warehouse file {target} does not exist: run `make run` or "
            "`listening-anomalies run` first, or pass --warehouse"
        )
    return target


def connect(path: str | Path | None = None, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse at ``path`` (default: :func:`warehouse.paths.warehouse_path`).

    Read-only connections never create a file; writable ones create the file, its folder and the
    ``raw`` and ``analytics`` schemas.
    """
    target = Path(path) if path is not None else warehouse_path()
    if read_only:
        require_warehouse(target)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(
            str(target),
            read_only=read_only,
            config={
                "memory_limit": os.environ.get(MEMORY_LIMIT_ENV_VAR, DEFAULT_MEMORY_LIMIT),
                # Rows need no order in these tables; keeping it costs memory on large inserts.
                "preserve_insertion_order": False,
            },
        )
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            raise WarehouseLockedError(
                f"warehouse file {target} is in use by another process (DuckDB allows one writer): "
                "wait for the other run to finish or stop it, then try again"
            ) from None
        raise WarehouseError(f"cannot open warehouse file {target}: {error}") from None
    if not read_only:
        for schema in SCHEMAS:
            con.execute(f"create schema if not exists {schema}")
    return con


@contextmanager
def open_warehouse(path: str | Path | None = None, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """:func:`connect` as a context manager that always closes the connection."""
    con = connect(path, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Commit everything inside the block, or nothing."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")
