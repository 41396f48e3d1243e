"""Read-only summaries of a run, for the CLI and people."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from warehouse.store import table_exists


@dataclass(frozen=True)
class RunSummary:
    """What a run left in the warehouse over a window of local days."""

    days: int
    user_days: int
    users: int
    verdict_counts: dict[str, int]

    @property
    def flagged_user_days(self) -> int:
        return sum(count for verdict, count in self.verdict_counts.items() if verdict != "normal")

    def lines(self) -> list[str]:
        rate = self.flagged_user_days / self.user_days if self.user_days else 0.0
        lines = [
            f"days: {self.days}   users: {self.users:,}   user-days: {self.user_days:,}",
            f"flagged user-days: {self.flagged_user_days:,} ({rate:.2%})",
        ]
        for verdict in ("both", "rule_only", "ml_only", "normal"):
            lines.append(f"  {verdict:<10} {self.verdict_counts.get(verdict, 0):>10,}")
        return lines


def plays_per_day(con: duckdb.DuckDBPyConnection, start: date, end: date) -> float:
    """Average plays per UTC day in ``raw.listening_events`` over ``[start, end)`` (0 when none)."""
    if not table_exists(con, "raw.listening_events") or end <= start:
        return 0.0
    plays = con.execute(
        "select count(*) from raw.listening_events where played_at >= ? and played_at < ?", [start, end]
    ).fetchone()[0]
    return plays / (end - start).days


def run_summary(con: duckdb.DuckDBPyConnection) -> RunSummary:
    """Summarise ``analytics.user_day_verdicts``."""
    if not table_exists(con, "analytics.user_day_verdicts"):
        return RunSummary(days=0, user_days=0, users=0, verdict_counts={})
    days, user_days, users = con.execute(
        "select count(distinct listen_date), count(*), count(distinct user_id) from analytics.user_day_verdicts"
    ).fetchone()
    counts = con.execute("select verdict, count(*) from analytics.user_day_verdicts group by verdict").fetchall()
    return RunSummary(days=days, user_days=user_days, users=users, verdict_counts=dict(counts))
