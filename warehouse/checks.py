"""Queries behind the Dagster asset checks: cross-table consistency of the warehouse."""

from __future__ import annotations

import duckdb

from warehouse.store import table_exists

VERDICT_KINDS = ("normal", "rule_only", "ml_only", "both")


def unmatched_rows(con: duckdb.DuckDBPyConnection, table: str, other: str, keys: tuple[str, ...]) -> int:
    """Rows of ``table`` with no row of ``other`` sharing ``keys`` (0 when ``other`` is missing too)."""
    if not table_exists(con, table):
        return 0
    if not table_exists(con, other):
        return con.execute(f"select count(*) from {table}").fetchone()[0]
    join = " and ".join(f"t.{key} = o.{key}" for key in keys)
    return con.execute(
        f"select count(*) from {table} t where not exists (select 1 from {other} o where {join})"
    ).fetchone()[0]


def invalid_verdicts(con: duckdb.DuckDBPyConnection, table: str = "analytics.user_day_verdicts") -> int:
    """Verdict rows whose kind is unknown or disagrees with the two detectors' flags.

    A forest flag alone may leave a day normal: it counts alone only where the rules cannot judge
    (``ml.verdicts.build_verdicts``).
    """
    kinds = ", ".join(f"'{kind}'" for kind in VERDICT_KINDS)
    return con.execute(
        f"""
        select count(*) from {table}
        where verdict not in ({kinds})
            or not case
                when rule_flag and ml_flag then verdict = 'both'
                when rule_flag then verdict = 'rule_only'
                when ml_flag then verdict in ('ml_only', 'normal')
                else verdict = 'normal'
            end
            or is_anomaly <> (verdict <> 'normal')
        """
    ).fetchone()[0]
