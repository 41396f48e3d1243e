"""Options of a load and the report it returns."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import PurePosixPath

#: The ``timezone`` option that reads each user's zone off the countries of their plays.
ZONE_FROM_COUNTRY = "from-country"


@dataclass(frozen=True)
class LoadOptions:
    """How to read files that do not say everything themselves.

    ``user_id``: the person of a single-person Spotify export (default: the export's folder name).
    ``timezone``: the IANA zone assumed for users no users file covers (default UTC), or
    :data:`ZONE_FROM_COUNTRY`: for each such user, the main zone of the country most of their plays
    come from (UTC when none of their plays names a country with a known zone).
    ``pseudonymize_salt``: when set, every user id is replaced by a salted hash (stable for the
    same salt), in events, users, quarantine and source names.
    """

    user_id: str | None = None
    timezone: str | None = None
    pseudonymize_salt: str | None = None


@dataclass
class LoadReport:
    """What a load read, wrote, set aside and assumed.

    Reconciliation: ``rows_read == rows_loaded + rows_quarantined + rows_duplicate``;
    ``rows_non_music`` (podcast episodes, audiobooks) is part of ``rows_quarantined``.
    Users-file rows are counted apart (``user_rows_read``, ``user_rows_quarantined``).
    """

    load_id: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_non_music: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    files_read: list[str] = field(default_factory=list)
    files_ignored: list[str] = field(default_factory=list)
    assumed_timezones: dict[str, str] = field(default_factory=dict)
    zones_from_country: bool = False
    user_rows_read: int = 0
    user_rows_quarantined: int = 0
    users_written: int = 0
    first_played_at: datetime | None = None
    last_played_at: datetime | None = None
    #: This machine's clock (UTC) when the load began, and how many loaded plays start after it.
    clock: datetime | None = None
    loaded_after_clock: int = 0

    @property
    def first_date(self) -> date | None:
        """UTC date of the earliest loaded event (None when nothing new was loaded)."""
        return self.first_played_at.date() if self.first_played_at else None

    @property
    def last_date(self) -> date | None:
        """UTC date of the latest loaded event (None when nothing new was loaded)."""
        return self.last_played_at.date() if self.last_played_at else None

    @property
    def reconciles(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_quarantined + self.rows_duplicate

    def metadata(self) -> dict[str, object]:
        """The counts as flat key/value pairs (for run metadata)."""
        return {
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_quarantined": self.rows_quarantined,
            "rows_duplicate": self.rows_duplicate,
            "rows_non_music": self.rows_non_music,
            "files_read": len(self.files_read),
            "files_ignored": len(self.files_ignored),
            "first_date": str(self.first_date),
            "last_date": str(self.last_date),
            "loaded_after_clock": self.loaded_after_clock,
            **{f"quarantined: {reason}": count for reason, count in sorted(self.quarantined_by_reason.items())},
        }

    def summary_lines(self) -> list[str]:
        """Lines a person can read, for printing after a load."""
        lines = [
            f"files read: {len(self.files_read)}"
            + (f"; ignored (not listening history): {summarize_ignored_files(self.files_ignored)}" if self.files_ignored else ""),
            f"rows read: {self.rows_read}",
            f"  loaded: {self.rows_loaded}",
            f"  duplicates (already loaded or repeated in the input): {self.rows_duplicate}",
            f"  quarantined: {self.rows_quarantined} (of which not music plays: {self.rows_non_music})",
        ]
        for reason, count in sorted(self.quarantined_by_reason.items(), key=lambda item: (-item[1], item[0])):
            lines.append(f"    {reason}: {count}")
        if self.user_rows_read or self.user_rows_quarantined:
            lines.append(
                f"users-file rows read: {self.user_rows_read}, quarantined: {self.user_rows_quarantined}"
            )
        if self.assumed_timezones:
            by_zone: dict[str, list[str]] = {}
            for user, zone in sorted(self.assumed_timezones.items()):
                by_zone.setdefault(zone, []).append(user)
            for zone, users in sorted(by_zone.items()):
                shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
                lines.append(f"time zone assumed: {zone} for {len(users)} user(s) without a users-file entry ({shown})")
            if self.zones_from_country:
                lines.append(
                    "  each the main zone of the country most of the user's plays come from "
                    "(UTC when no play names a country with a known zone)"
                )
            else:
                lines.append(
                    "  to change it: a users file, or the timezone option (an IANA zone, or "
                    f"{ZONE_FROM_COUNTRY} for the main zone of the country most of each user's plays come from)"
                )
        if self.first_played_at is not None:
            lines.append(f"loaded events span {self.first_date} to {self.last_date} (UTC)")
            if self.loaded_after_clock:
                lines.append(
                    f"  {self.loaded_after_clock} of them start after this machine's clock "
                    f"({self.clock:%Y-%m-%d %H:%M} UTC)"
                )
        else:
            lines.append("no new events were loaded")
        return lines


def summarize_ignored_files(files: list[str], shown: int = 5) -> str:
    """The ignored files by name: a folder of a thousand people's exports ignores each one's
    ``Userdata.json``, which reads as one line, not a thousand paths."""
    if len(files) <= shown:
        return ", ".join(files)
    by_name = sorted(Counter(PurePosixPath(file).name for file in files).items(), key=lambda item: (-item[1], item[0]))
    names = ", ".join(f"{name} ({count})" for name, count in by_name[:shown])
    more = f" and {len(by_name) - shown} more names" if len(by_name) > shown else ""
    return f"{len(files)} files: {names}{more}"
