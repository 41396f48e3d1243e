"""Finding the input files and telling their format from their content.

A path may be a file, a folder (walked recursively), a glob, or an archive (a ``.zip``, a ``.tar``,
``.tar.gz`` or ``.tgz``), read like a folder.
Formats are detected from the bytes, never from the name alone:

* ``PAR1`` magic: Parquet (canonical events);
* ``PK`` magic: a zip archive, read like a folder; a tar archive (``ustar`` at byte 257, compressed
  or not) too;
* ``[``/``{`` first: JSON, or JSON Lines (one object per line) when the first line is a whole
  object and the next line starts another. Records with ``endTime``/``msPlayed`` are a Spotify
  account-data export, with ``ts``/``ms_played`` a Spotify extended streaming history, with
  ``played_at`` canonical events. Other JSON (Userdata.json, SearchQueries.json, playlists) is
  ignored inside a folder and reported as ignored;
* other text: CSV (canonical events), when its header names a canonical column;
* gzip magic: any of the text formats above, compressed (a service's dump is often ``.csv.gz`` or
  ``.jsonl.gz``), told apart by the decompressed bytes.

Inside a folder, files that are clearly something else (a PDF read-me, images) are ignored and
reported; a file that claims a data format by its name (``.json``, ``.csv``, ``.parquet``) but
cannot be read as one is an error, and so is any unusable file given directly.
"""

from __future__ import annotations

import glob as globlib
import gzip
import hashlib
import json
import os
import re
import shutil
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from warehouse.contract import OPTIONAL_EVENT_COLUMNS, REQUIRED_EVENT_COLUMNS
from warehouse.loaders.errors import LoadError
from warehouse.loaders.options import summarize_ignored_files

DATA_SUFFIXES = {".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".parquet", ".pq"}
GZIP_MAGIC = b"\x1f\x8b"
ARCHIVES = ("zip", "tar")
# Folder names Spotify puts around the files of one person's export: not a person's name.
GENERIC_EXPORT_FOLDERS = {
    "mydata",
    "my_spotify_data",
    "my spotify data",
    "spotify account data",
    "spotify_account_data",
    "spotify extended streaming history",
    "spotify_extended_streaming_history",
}
CANONICAL_COLUMNS = {*REQUIRED_EVENT_COLUMNS, *OPTIONAL_EVENT_COLUMNS}
SPOTIFY_KINDS = ("spotify-account", "spotify-extended")


@dataclass
class InputFile:
    """One readable input file."""

    path: Path  # where the bytes are (inside a temporary folder for archive members)
    source: str  # name written to the warehouse: relative to the given path
    kind: str  # csv | parquet | json-canonical | jsonl-canonical | spotify-account | spotify-extended | ignored
    person: str | None = None  # raw user id of a Spotify export file
    records: list | None = field(default=None, repr=False)  # parsed JSON of a Spotify file
    label: str = ""  # the file as the user would find it, for error messages
    keys: tuple[str, ...] | None = None  # the keys of a canonical JSON file's records, sorted


@dataclass
class _Entry:
    path: Path
    parts: tuple[str, ...]  # path components relative to the root, file name last
    direct: bool  # given by the user by name (not found while walking a folder)
    root_name: str  # name of the given folder/zip/parent: the person of a single-person export
    label: str = ""  # where the user can find the file: the given path joined with the parts


def pseudonym(user_id: str, salt: str) -> str:
    """Salted, stable replacement of a user id (the SQL side uses the same formula)."""
    return "u_" + hashlib.sha256(f"{salt}\x1f{user_id}".encode()).hexdigest()[:16]


def pseudonym_sql(column: str, salt: str | None) -> str:
    if salt is None:
        return column
    quoted = salt.replace("'", "''")
    return f"('u_' || substr(sha256('{quoted}' || chr(31) || {column}), 1, 16))"


def _is_glob(text: str) -> bool:
    return any(char in text for char in "*?[")


def _person_name(folder: Path) -> str:
    """The folder name, going up past Spotify's generic export folder names."""
    current = folder.resolve()
    while current.name.lower() in GENERIC_EXPORT_FOLDERS and current.parent != current:
        current = current.parent
    return current.name or "user"


def _walk(
    folder: Path, prefix: tuple[str, ...], root_name: str, tmp: Path, counter: list[int], label_root: str
) -> list[_Entry]:
    entries: list[_Entry] = []
    # Linked folders are followed (people gather exports by linking them), each real folder once
    # (a link back up the tree would never end).
    visited: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
        rel_dir = Path(dirpath).relative_to(folder).parts
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            parts = prefix + rel_dir + (name,)
            label = os.path.join(label_root, *rel_dir, name)
            if (kind := _sniff_bytes(path)) in ARCHIVES:
                entries.extend(_expand_archive(kind, path, parts, root_name, tmp, counter, label))
            else:
                entries.append(_Entry(path, parts, False, root_name, label))
    return entries


def _expand_archive(
    kind: str, path: Path, parts: tuple[str, ...], root_name: str, tmp: Path, counter: list[int], label: str
) -> list[_Entry]:
    """Extract a zip or tar archive (``kind``, as sniffed) and walk it like a folder."""
    counter[0] += 1
    target = tmp / f"archive{counter[0]}"
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as archive:
                archive.extractall(target)
        else:
            with tarfile.open(path) as archive:
                _extract_tar_files(archive, target)
    except (zipfile.BadZipFile, tarfile.TarError, OSError, RuntimeError) as error:
        raise LoadError(
            f"{label}: cannot read this {kind} archive ({error}); expected an archive of listening history files"
        ) from None
    return _walk(target, parts, root_name, tmp, counter, label)


def _extract_tar_files(archive: tarfile.TarFile, target: Path) -> None:
    """The archive's regular files under ``target``; links, devices and paths that would land
    outside it are left out (they are not listening history)."""
    for member in archive.getmembers():
        name = Path(member.name)
        if not member.isfile() or name.is_absolute() or ".." in name.parts:
            continue
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        with archive.extractfile(member) as source, open(destination, "wb") as sink:
            shutil.copyfileobj(source, sink)


#: What an archive's name ends with: a folder named after it is the name without it.
_ARCHIVE_SUFFIX = re.compile(r"\.(zip|tar|tar\.gz|tgz)$", re.IGNORECASE)


def archive_stem(name: str) -> str:
    """A file or folder name without its archive suffix (``alice.tar.gz`` -> ``alice``)."""
    return _ARCHIVE_SUFFIX.sub("", name)


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def open_bytes(path: Path):
    """The file's bytes, decompressed when it is gzip."""
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def read_bytes(path: Path) -> bytes:
    with open_bytes(path) as handle:
        return handle.read()


def _sniff_bytes(path: Path) -> str:
    """zip | tar | parquet | json | jsonl | text | binary | empty, from the first (decompressed) bytes."""
    compressed = is_gzip(path)
    try:
        with open_bytes(path) as handle:
            head = handle.read(4096)
            stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
            first_line = b""
            if stripped[:1] == b"{":  # only an object may begin JSON Lines; its first line may run past the head
                first_line = head.split(b"\n", 1)[0] if b"\n" in head else head + handle.readline(2**20)
    except (OSError, EOFError):  # gzip's own errors (a damaged or truncated stream) are OSErrors
        return "binary"
    if not head:
        return "empty"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "binary" if compressed else "zip"
    if head.startswith(b"PAR1"):
        return "binary" if compressed else "parquet"
    if head[257:262] == b"ustar":
        return "tar"
    if not stripped:
        return "empty"
    if stripped[:1] == b"{" and _is_json_lines(first_line, head):
        return "jsonl"
    if stripped[:1] in (b"[", b"{"):
        return "json"
    if b"\x00" in head:
        return "binary"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 4:  # not just a character cut by the 4 KiB window
            return "binary"
    return "text"


def _is_json_lines(first_line: bytes, head: bytes) -> bool:
    """Whether the first line is a whole JSON object and the next line, if any, starts another.

    A pretty-printed object (``{`` alone on its first line) is JSON, not JSON Lines.
    """
    try:
        json.loads(first_line.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    rest = head[len(first_line) :].lstrip(b" \t\r\n")
    return not rest or rest[:1] == b"{"


def header_line(path: Path) -> str:
    """The first line of a text file (up to 64 KiB, decompressed), without a byte-order mark."""
    with open_bytes(path) as handle:
        return handle.readline(65536).decode("utf-8", errors="replace").lstrip("\ufeff")


def _header_columns(path: Path) -> set[str]:
    first = header_line(path)
    for delimiter in (",", ";", "\t", "|"):
        first = first.replace(delimiter, ",")
    return {cell.strip().strip('"').strip().lower() for cell in first.split(",")}


def _json_kind(records: object) -> str:
    """spotify-account | spotify-extended | json-canonical | empty-list | other."""
    if not isinstance(records, list):
        return "other"
    if not records:
        return "empty-list"
    keys: set[str] = set()
    for record in records[:200]:
        if isinstance(record, dict):
            keys.update(record)
    if "ts" in keys and ("ms_played" in keys or "master_metadata_track_name" in keys):
        return "spotify-extended"
    if "endTime" in keys and "msPlayed" in keys:
        return "spotify-account"
    if "played_at" in keys and ({"user_id", "track_id"} & keys):
        return "json-canonical"
    return "other"


_EXPECTED = (
    "expected canonical events (CSV, Parquet, JSON or JSON Lines, each text format also gzip-compressed, "
    "with user_id, played_at, ms_played, track_id), "
    "a Spotify account-data export (StreamingHistory*.json) or a Spotify extended streaming "
    "history (Streaming_History_Audio_*.json / endsong_*.json)"
)


def _display(entry: _Entry) -> str:
    return "/".join(entry.parts)


def _record_keys(records: list) -> tuple[str, ...]:
    return tuple(sorted(set().union(*(record for record in records if isinstance(record, dict)))))


def _classify(entry: _Entry) -> tuple[str, list | None, tuple[str, ...] | None]:
    """Return (kind, Spotify records, canonical JSON keys); raise LoadError for unusable data files."""
    path = entry.path
    name = entry.label or _display(entry)
    suffixes = [suffix.lower() for suffix in path.suffixes]
    claimed = suffixes[-2:-1] if suffixes[-1:] == [".gz"] else suffixes[-1:]
    claims_data = entry.direct or bool(set(claimed) & DATA_SUFFIXES)
    sniffed = _sniff_bytes(path)
    if sniffed == "empty":
        if claims_data:
            raise LoadError(f"{name}: the file is empty; {_EXPECTED}")
        return "ignored", None, None
    if sniffed == "parquet":
        return "parquet", None, None
    if sniffed == "jsonl":
        return _classify_json_lines(entry, name)
    if sniffed == "json":
        try:
            records = json.loads(read_bytes(path).decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise LoadError(f"{name}: not UTF-8 text, cannot be read as JSON; {_EXPECTED}") from None
        except json.JSONDecodeError as error:
            raise LoadError(
                f"{name}: not valid JSON (truncated or damaged: {error.msg} at line {error.lineno}, "
                f"column {error.colno}); {_EXPECTED}"
            ) from None
        kind = _json_kind(records)
        if kind in SPOTIFY_KINDS:
            return kind, records, None
        if kind == "json-canonical":
            return kind, None, _record_keys(records)
        if kind == "empty-list":
            if entry.direct:
                raise LoadError(f"{name}: the JSON array is empty, there are no plays in it; {_EXPECTED}")
            return "ignored", None, None
        if entry.direct:
            raise LoadError(f"{name}: JSON, but not listening history; {_EXPECTED}")
        return "ignored", None, None
    if sniffed == "text":
        if _header_columns(path) & CANONICAL_COLUMNS:
            return "csv", None, None
        if claims_data:
            raise LoadError(f"{name}: none of the expected columns in its header; {_EXPECTED}")
        return "ignored", None, None
    if claims_data:
        raise LoadError(f"{name}: not a JSON, CSV or Parquet file; {_EXPECTED}")
    return "ignored", None, None


#: Lines of a JSON Lines file whose keys tell what it holds.
JSON_LINES_SAMPLE = 200


def _classify_json_lines(entry: _Entry, name: str) -> tuple[str, list | None, tuple[str, ...] | None]:
    """Canonical events are read by DuckDB (the keys of the first lines are its columns); a Spotify
    export's lines are parsed here, a line that is not JSON kept as its text (quarantined as a
    malformed row, never dropped)."""
    sample = []
    with open_bytes(entry.path) as handle:
        for line in handle:
            if line.strip():
                sample.append(_json_line(line))
            if len(sample) == JSON_LINES_SAMPLE:
                break
    kind = _json_kind(sample)
    if kind == "json-canonical":
        return "jsonl-canonical", None, _record_keys(sample)
    if kind in SPOTIFY_KINDS:
        return kind, _json_lines(entry.path), None
    if entry.direct:
        raise LoadError(f"{name}: JSON, but not listening history; {_EXPECTED}")
    return "ignored", None, None


def spotify_records(path: Path) -> list:
    """A Spotify file's records: the elements of its JSON array, or its JSON Lines (a line that is
    not JSON kept as its text)."""
    if _sniff_bytes(path) == "jsonl":
        return _json_lines(path)
    return json.loads(read_bytes(path).decode("utf-8-sig"))


def _json_lines(path: Path) -> list:
    with open_bytes(path) as handle:
        return [_json_line(line) for line in handle if line.strip()]


def _json_line(line: bytes) -> object:
    text = line.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def resolve_paths(path: str | Path, tmp: Path) -> list[_Entry]:
    """Expand a file, folder, glob or archive into file entries (members extracted under ``tmp``)."""
    text = str(path)
    counter = [0]
    if not Path(text).exists() and _is_glob(text):
        matches = sorted(globlib.glob(os.path.expanduser(text), recursive=True))
        if not matches:
            raise LoadError(f"{text}: no file matches this pattern; {_EXPECTED}")
        static = []
        for part in Path(text).parts:
            if _is_glob(part):
                break
            static.append(part)
        base = Path(*static) if static else Path(".")
        entries: list[_Entry] = []
        for match in matches:
            target = Path(match)
            rel = target.relative_to(base).parts if target.is_relative_to(base) else (target.name,)
            if target.is_dir():
                entries.extend(_walk(target, rel, _person_name(base), tmp, counter, match))
            elif (kind := _sniff_bytes(target)) in ARCHIVES:
                entries.extend(_expand_archive(kind, target, rel, _person_name(base), tmp, counter, match))
            else:
                entries.append(_Entry(target, rel, True, _person_name(target.parent), match))
        return entries
    target = Path(text).expanduser()
    if not target.exists():
        raise LoadError(f"{text}: no such file or folder; {_EXPECTED}")
    if target.is_dir():
        entries = _walk(target, (), _person_name(target), tmp, counter, text)
        if not entries:
            raise LoadError(f"{text}: the folder holds no files; {_EXPECTED}")
        return entries
    if (kind := _sniff_bytes(target)) in ARCHIVES:
        person = archive_stem(target.name) if _ARCHIVE_SUFFIX.search(target.name) else target.stem
        return _expand_archive(kind, target, (), person, tmp, counter, text)
    return [_Entry(target, (target.name,), True, _person_name(target.parent), text)]


def discover(path: str | Path, tmp: Path, *, user_id: str | None, salt: str | None) -> Iterator[InputFile]:
    """Classify every file under ``path``, one file at a time.

    A Spotify file's records are parsed when it comes up and are the consumer's to release
    before it asks for the next: a folder of hundreds of people's exports (gigabytes of JSON)
    never sits in memory at once. Files that are not listening history come as kind
    ``ignored``. Raises :class:`LoadError` for an unusable file, for the ``user_id`` option on
    several people's exports (as soon as a second person appears) and, after the last file,
    when nothing was listening history.
    """
    ignored: list[str] = []
    people_from_folders: set[str] = set()
    found_history = False
    for entry in resolve_paths(path, tmp):
        kind, records, keys = _classify(entry)
        if kind == "ignored":
            ignored.append(_display(entry))
            yield InputFile(entry.path, _display(entry), kind, label=entry.label)
            continue
        parts = list(entry.parts)
        person = None
        if kind in SPOTIFY_KINDS:
            folders = [
                (index, part)
                for index, part in enumerate(parts[:-1])
                if archive_stem(part).lower() not in GENERIC_EXPORT_FOLDERS
            ]
            if folders:
                index, part = folders[0]
                person = archive_stem(part)
                people_from_folders.add(person)
                if user_id is not None and len(people_from_folders) > 1:
                    raise LoadError(
                        f"{path}: the user_id option is for a single person's export, but this path holds the "
                        f"exports of several people ({' and '.join(sorted(people_from_folders))} among them); drop the "
                        "option to use the folder names as user ids"
                    )
                if user_id is not None:
                    person = user_id
                if salt is not None:
                    parts[index] = pseudonym(person, salt) + part[len(archive_stem(part)) :]
            else:
                person = user_id if user_id is not None else entry.root_name
        found_history = True
        yield InputFile(entry.path, "/".join(parts), kind, person, records, entry.label, keys)
    if not found_history:
        shown = f" (ignored: {summarize_ignored_files(ignored)})" if ignored else ""
        raise LoadError(f"{path}: no listening history found{shown}; {_EXPECTED}")
