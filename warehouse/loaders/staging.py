"""Every input row, whatever its format, first becomes one row of a text staging table.

The staging table keeps the original row (as JSON text, private keys dropped) next to the
fields of the canonical event as text; :mod:`warehouse.loaders.load` then parses and checks
all rows in one SQL pass. Canonical CSV, Parquet, JSON and JSON Lines are staged by DuckDB in SQL
(vectorised; CSV and JSON files of one layout in one scan); a Spotify export is parsed with
Python's json, a file at a time, and staged through Arrow.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata

import duckdb
import pyarrow as pa

from warehouse.loaders.errors import LoadError
from warehouse.loaders.sources import InputFile, header_line, is_gzip, pseudonym_sql

STAGED_EVENTS = "_ld_events"
STAGED_USERS = "_ld_users"

STAGED_EVENT_SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string()),
        pa.field("row_number", pa.int64()),
        pa.field("original_row", pa.string()),
        pa.field("user_id", pa.string()),
        pa.field("ts_text", pa.string()),
        pa.field("ts_is_end", pa.bool_()),
        pa.field("ms_text", pa.string()),
        pa.field("track_id", pa.string()),
        pa.field("track_name", pa.string()),
        pa.field("artist_id", pa.string()),
        pa.field("artist_name", pa.string()),
        pa.field("track_duration_text", pa.string()),
        pa.field("skipped_text", pa.string()),
        pa.field("platform", pa.string()),
        pa.field("country", pa.string()),
        pa.field("event_id", pa.string()),
        pa.field("pre_reason", pa.string()),
    ]
)

NOT_MUSIC_PODCAST = "not a music play: podcast episode"
NOT_MUSIC_AUDIOBOOK = "not a music play: audiobook"
MALFORMED_ROW = "malformed row (not a JSON object)"


def is_private_key(key: str) -> bool:
    """IP addresses, user agents and account names: never written anywhere in the warehouse."""
    lowered = key.lower()
    return (
        lowered.startswith("ip_addr")
        or lowered in {"ip", "ip_address", "username", "user_name", "account_name", "email"}
        or "user_agent" in lowered
    )


def create_staging(con: duckdb.DuckDBPyConnection) -> None:
    columns = ", ".join(
        f'"{f.name}" {"bigint" if f.type == pa.int64() else "boolean" if f.type == pa.bool_() else "varchar"}'
        for f in STAGED_EVENT_SCHEMA
    )
    con.execute(f"create or replace temp table {STAGED_EVENTS} ({columns})")
    con.execute(
        f"create or replace temp table {STAGED_USERS} (source_file varchar, \"row_number\" bigint, "
        "original_row varchar, user_id varchar, timezone varchar)"
    )


def drop_staging(con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
    for name in names:
        try:
            con.execute(f"drop table if exists temp.{name}")
        except duckdb.Error:
            pass


# --- canonical CSV / Parquet / JSON, in SQL -------------------------------------------------


def _quote_path(path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


#: How a CSV file is read, on its own or in a scan of several: every cell as text, checked afterwards.
_CSV_OPTIONS = "all_varchar = true, header = true, auto_detect = true"

#: How each canonical JSON layout is read by DuckDB.
_JSON_FORMATS = {
    "json": "array",
    "jsonl": "newline_delimited",
    "json-canonical": "array",
    "jsonl-canonical": "newline_delimited",
}


def _compression(path) -> str:
    # Said outright: DuckDB would go by the name alone (".gz"), and a renamed file must read too.
    return "gzip" if is_gzip(path) else "none"


def _read_sql(kind: str, paths: list, keys: tuple[str, ...] | None, options: str = "") -> str:
    """The DuckDB table function that reads ``paths``, one format, one compression; a JSON file's
    ``keys`` are read as text (None: DuckDB samples the file for its keys and types)."""
    listed = _quote_path(paths[0]) if len(paths) == 1 else "[" + ", ".join(map(_quote_path, paths)) + "]"
    compression = f"compression = '{_compression(paths[0])}'"
    if kind == "csv":
        return f"read_csv({listed}, {_CSV_OPTIONS}, {compression}{options})"
    if kind == "parquet":
        return f"read_parquet({listed}{options})"
    if kind not in _JSON_FORMATS:
        raise ValueError(kind)
    if keys is not None:
        # Every value as text, checked afterwards as CSV's cells are: a key whose values mix types
        # (an id that is a number on some rows) would otherwise read as JSON, strings in quotes.
        as_text = ", ".join("'" + key.replace("'", "''") + "': 'VARCHAR'" for key in keys)
        options = f", columns = {{{as_text}}}{options}"
    return f"read_json({listed}, format = '{_JSON_FORMATS[kind]}', {compression}{options})"


def relation_sql(con: duckdb.DuckDBPyConnection, kind: str, path, label: str, what: str, keys=None) -> str:
    """The SQL relation that reads one file of canonical rows (events or users).

    A JSON file's ``keys`` come from its classification; a users file's are sampled by DuckDB.
    """
    if kind in _JSON_FORMATS and keys is None:
        keys = tuple(name for name, _ in describe(con, _read_sql(kind, [path], None), label, what).values())
    return _read_sql(kind, [path], keys)


def describe(con: duckdb.DuckDBPyConnection, relation: str, source: str, what: str) -> dict[str, tuple[str, str]]:
    """Columns of a file: lower-cased name -> (actual name, DuckDB type)."""
    try:
        rows = con.execute(f"describe select * from {relation}").fetchall()
    except duckdb.Error as error:
        first_line = str(error).splitlines()[0]
        raise LoadError(f"{source}: cannot be read ({first_line}); expected {what}") from None
    return {name.strip().lower(): (name, kind) for name, kind, *_ in rows}


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(columns: dict[str, tuple[str, str]], key: str) -> str:
    if key not in columns:
        return "null"
    name, kind = columns[key]
    return _ident(name) if kind == "VARCHAR" else f"cast({_ident(name)} as varchar)"


def _timestamp_text(columns: dict[str, tuple[str, str]], key: str) -> str:
    name, kind = columns[key]
    if kind.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"strftime(timezone('UTC', {_ident(name)}), '%Y-%m-%d %H:%M:%S.%f')"
    return _text(columns, key)


def _original_row_sql(columns: dict[str, tuple[str, str]], salt: str | None) -> str:
    parts = []
    for key, (name, _) in columns.items():
        if is_private_key(name):
            continue
        value = _ident(name)
        if key == "user_id" and salt is not None:
            value = pseudonym_sql(f"cast({value} as varchar)", salt)
        parts.append(f"'{name.replace(chr(39), chr(39) * 2)}', {value}")
    # json_object takes at most a few hundred arguments: chunk and merge for very wide files.
    chunks = [parts[i : i + 100] for i in range(0, len(parts), 100)] or [[]]
    objects = [f"json_object({', '.join(chunk)})" for chunk in chunks]
    sql = objects[0]
    for other in objects[1:]:
        sql = f"json_merge_patch({sql}, {other})"
    return f"cast({sql} as varchar)"


CANONICAL_EXPECTED = (
    "canonical events with columns user_id, played_at (UTC start of play), ms_played, track_id "
    "and optionally artist_id, track_duration_ms, skipped, platform, country, event_id"
)


#: Columns a read of several files adds: each row's file, and its place in the scan and in its file.
_FILE_PATH_COLUMN = "__listening_source_path"
_SCAN_ROW_COLUMN = "__listening_scan_row"
_FILE_ROW_COLUMN = "__listening_file_row"

#: Files read in one scan at most, and their bytes: a folder of thousands of small files (one per
#: user and month) spent 40 ms a file on sniffing and planning when each was read on its own, while
#: big files gain nothing from sharing a scan that numbers all their rows at once.
FILES_PER_SCAN = 500
BYTES_PER_SCAN = 256 * 2**20

#: The canonical kinds that share a scan with the files before them when they read alike.
SCANNED_KINDS = ("csv", "json-canonical", "jsonl-canonical", "parquet")


def _canonical_columns(con: duckdb.DuckDBPyConnection, relation: str, label: str, user_id: str | None) -> dict:
    columns = describe(con, relation, label, CANONICAL_EXPECTED)
    columns.pop(_FILE_PATH_COLUMN, None)
    required = ["played_at", "ms_played", "track_id"] + ([] if user_id is not None else ["user_id"])
    missing = [name for name in required if name not in columns]
    if missing:
        present = ", ".join(name for name, _ in columns.values())
        raise LoadError(
            f"{label}: missing column(s) {', '.join(missing)} (found: {present}); expected {CANONICAL_EXPECTED}"
        )
    return columns


class CanonicalScan:
    """Canonical files that come one after the other and read alike, staged in one scan: CSV files
    with the same header line, JSON files whose records have the same keys, or Parquet files with
    the same columns of the same types; and the same compression."""

    def __init__(self, con: duckdb.DuckDBPyConnection, *, user_id: str | None, salt: str | None) -> None:
        self.con, self.user_id, self.salt = con, user_id, salt
        self.files: list[InputFile] = []
        self.layout: tuple | None = None
        self.bytes = 0

    def add(self, file: InputFile) -> list[InputFile]:
        """Add ``file`` to the scan. Where it cannot join the files before it (another layout, or no
        room left), those are staged first; returns the files staged (often none)."""
        columns = self._columns(file)
        layout, size = (file.kind, columns, is_gzip(file.path)), file.path.stat().st_size
        fits = len(self.files) < FILES_PER_SCAN and self.bytes + size <= BYTES_PER_SCAN and layout == self.layout
        staged = [] if fits else self.stage()
        self.files.append(file)
        self.layout, self.bytes = layout, self.bytes + size
        return staged

    def _columns(self, file: InputFile):
        if file.kind == "csv":
            return header_line(file.path)
        if file.kind == "parquet":
            # The footer's schema: files whose columns or types differ cannot share a scan.
            try:
                return tuple(self.con.execute("select name, type from parquet_schema(?)", [str(file.path)]).fetchall())
            except duckdb.Error:
                return None  # read on its own, where the error names the file
        return file.keys

    def stage(self) -> list[InputFile]:
        """Stage the scan's files (none is fine); returns them, and the scan starts afresh."""
        files, self.files, self.bytes = self.files, [], 0
        if files:
            stage_canonical_files(self.con, files, user_id=self.user_id, salt=self.salt)
        return files


def stage_canonical_files(
    con: duckdb.DuckDBPyConnection, files: list[InputFile], *, user_id: str | None, salt: str | None
) -> None:
    """Stage files that read alike in one scan, each row numbered within its own file.

    Where the scan fails (a file that reads differently from the first), each file is staged on
    its own, so that the error names the file.
    """
    if len(files) == 1:
        stage_canonical(con, files[0], user_id=user_id, salt=salt)
        return
    relation = _read_sql(
        files[0].kind, [file.path for file in files], files[0].keys, f", filename = '{_FILE_PATH_COLUMN}'"
    )
    try:
        columns = _canonical_columns(con, relation, files[0].label or files[0].source, user_id)
        # Rows come file after file, each file's in order: a row's number in its file is its place
        # in the scan after the rows of the files before it.
        path, scan_row = _ident(_FILE_PATH_COLUMN), _ident(_SCAN_ROW_COLUMN)
        numbered = f"""(
            select *, {scan_row} - min({scan_row}) over (partition by {path}) + 1 as {_ident(_FILE_ROW_COLUMN)}
            from (select *, row_number() over () as {scan_row} from {relation})
        )"""
        source_sql = f"(?::varchar[])[list_position(?::varchar[], {path})]"
        con.execute(
            _canonical_insert_sql(columns, numbered, source_sql, _ident(_FILE_ROW_COLUMN), user_id, salt),
            [[file.source for file in files], [str(file.path) for file in files]],
        )
    except (duckdb.Error, LoadError):
        for file in files:
            stage_canonical(con, file, user_id=user_id, salt=salt)


def stage_canonical(con: duckdb.DuckDBPyConnection, file: InputFile, *, user_id: str | None, salt: str | None) -> None:
    label = file.label or file.source
    relation = relation_sql(con, file.kind, file.path, label, CANONICAL_EXPECTED, file.keys)
    columns = _canonical_columns(con, relation, label, user_id)
    sql = _canonical_insert_sql(columns, relation, "?", 'row_number() over ()', user_id, salt)
    try:
        con.execute(sql, [file.source])
    except duckdb.Error as error:
        first_line = str(error).splitlines()[0]
        raise LoadError(f"{label}: cannot be read ({first_line}); expected {CANONICAL_EXPECTED}") from None


def _canonical_insert_sql(
    columns: dict, relation: str, source_sql: str, row_number_sql: str, user_id: str | None, salt: str | None
) -> str:
    user_sql = _text(columns, "user_id")
    if user_id is not None:
        option = "'" + user_id.replace("'", "''") + "'"
        user_sql = f"coalesce(nullif(trim({user_sql}), ''), {option})" if "user_id" in columns else option
    return f"""
        insert into {STAGED_EVENTS}
        select
            {source_sql} as source_file,
            {row_number_sql} as "row_number",
            {_original_row_sql(columns, salt)} as original_row,
            {user_sql} as user_id,
            {_timestamp_text(columns, 'played_at')} as ts_text,
            false as ts_is_end,
            {_text(columns, 'ms_played')} as ms_text,
            {_text(columns, 'track_id')} as track_id,
            null as track_name,
            {_text(columns, 'artist_id')} as artist_id,
            null as artist_name,
            {_text(columns, 'track_duration_ms')} as track_duration_text,
            {_text(columns, 'skipped')} as skipped_text,
            {_text(columns, 'platform')} as platform,
            {_text(columns, 'country')} as country,
            {_text(columns, 'event_id')} as event_id,
            null as pre_reason
        from {relation}
    """


USERS_EXPECTED = (
    "a users file (CSV, Parquet, JSON or JSON Lines) with columns user_id and timezone (an IANA zone name)"
)


def stage_users(con: duckdb.DuckDBPyConnection, kind: str, path, source: str, salt: str | None) -> None:
    label = str(path)
    relation = relation_sql(con, kind, path, label, USERS_EXPECTED)
    columns = describe(con, relation, label, USERS_EXPECTED)
    for alias in ("time_zone", "tz"):
        if "timezone" not in columns and alias in columns:
            columns["timezone"] = columns[alias]
    missing = [name for name in ("user_id", "timezone") if name not in columns]
    if missing:
        present = ", ".join(name for name, _ in columns.values())
        raise LoadError(f"{label}: missing column(s) {', '.join(missing)} (found: {present}); expected {USERS_EXPECTED}")
    sql = f"""
        insert into {STAGED_USERS}
        select ?, row_number() over (), {_original_row_sql(columns, salt)},
               {_text(columns, 'user_id')}, {_text(columns, 'timezone')}
        from {relation}
    """
    try:
        con.execute(sql, [source])
    except duckdb.Error as error:
        first_line = str(error).splitlines()[0]
        raise LoadError(f"{label}: cannot be read ({first_line}); expected {USERS_EXPECTED}") from None


# --- Spotify exports, in Python -------------------------------------------------------------


def _as_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _name(value) -> str | None:
    if not isinstance(value, str):
        return _as_text(value)
    value = value.strip()
    return unicodedata.normalize("NFC", value) if value else None


# Markers of the kind of device in Spotify's platform text, most specific first: a web player's
# text names the desktop system it runs on ("web_player windows 10;chrome 120.0;desktop").
_DEVICE_KINDS = (
    ("web_player", "web"),
    ("webplayer", "web"),
    ("android", "android"),
    ("iphone", "ios"),
    ("ipad", "ios"),
    ("ios", "ios"),
    ("windows", "windows"),
    ("os x", "macos"),
    ("osx", "macos"),
    ("macos", "macos"),
    ("linux", "linux"),
)

# The phone or tablet model that older extended histories write last in parentheses:
# "Android OS 14 API 34 (Google, Pixel 8)", "iOS 17.1.2 (iPhone15,2)".
_DEVICE_MODEL = re.compile(r"\(([^()]+)\)\s*$")


def spotify_device(platform: str | None) -> str | None:
    """The kind of device in Spotify's ``platform`` text, with the phone's model where it is named.

    Older extended histories write the system version and the model into it ("Android OS 14 API 34
    (Google, Pixel 8)", "iOS 17.1.2 (iPhone15,2)"): the version is dropped, so a system update is
    not a new device, and the model kept ("android (google, pixel 8)"), so someone else's phone of
    the same system is one. Newer histories write the kind alone ("android"). Partner devices keep
    their partner name ("Partner sonos_..." becomes "partner sonos_..."); anything else its first word.
    """
    if platform is None or not platform.strip():
        return None
    text = platform.strip().lower()
    for marker, kind in _DEVICE_KINDS:
        if marker in text:
            model = _DEVICE_MODEL.search(text) if kind in ("android", "ios") else None
            name = model.group(1).strip() if model else ""
            return f"{kind} ({name})" if name else kind
    return " ".join(text.split()[:2]) if text.startswith("partner") else text.split()[0]


#: Spotify leaves ``skipped`` blank in older records of the extended history; how the play ended
#: still says it for two endings: the forward button is a skip, a track played to its end is not.
#: Other endings (stopped, logged out, another track clicked) say nothing, and the skip stays unknown.
SKIPPED_BY_REASON_END = {"fwdbtn": "true", "trackdone": "false"}


@functools.lru_cache(maxsize=1024)
def _spotify_keys(keys: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    """The private keys and the audiobook keys among a record's keys.

    A file's records share a handful of key sets: judged once each, not once per record (a
    service's millions of records).
    """
    return frozenset(filter(is_private_key, keys)), tuple(key for key in keys if key.startswith("audiobook"))


_encode_json = json.JSONEncoder(ensure_ascii=False, default=str).encode


def spotify_original_text(record: object) -> str:
    """A Spotify record as the quarantine keeps it: JSON text, private keys dropped."""
    if isinstance(record, dict):
        private_keys = _spotify_keys(tuple(record))[0]
        if private_keys:
            record = {key: value for key, value in record.items() if key not in private_keys}
    return _encode_json(record)


def spotify_table(file: InputFile) -> pa.Table:
    """Stage one Spotify JSON file (account data or extended history) as Arrow columns.

    Only the rows quarantined here (not music, malformed) get their original text now: the checks
    quarantine few of the others, whose text the load writes from the file again
    (:func:`warehouse.loaders.load.load_files`). Encoding and staging every record's text took a
    third of a load of Spotify exports.
    """
    records = file.records or []
    n = len(records)
    ts, ms, track, artist, skipped, platform, country, pre = ([None] * n for _ in range(8))
    extended = file.kind == "spotify-extended"
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            pre[i] = MALFORMED_ROW
            continue
        audiobook_keys = _spotify_keys(tuple(record))[1]
        if extended:
            ts[i] = _as_text(record.get("ts"))
            ms[i] = _as_text(record.get("ms_played"))
            track[i] = _name(record.get("master_metadata_track_name"))
            artist[i] = _name(record.get("master_metadata_album_artist_name"))
            skipped[i] = _as_text(record.get("skipped"))
            if skipped[i] is None:
                skipped[i] = SKIPPED_BY_REASON_END.get(record.get("reason_end"))
            platform[i] = spotify_device(_as_text(record.get("platform")))
            country[i] = _as_text(record.get("conn_country"))
            if record.get("episode_name") or record.get("episode_show_name") or record.get("spotify_episode_uri"):
                pre[i] = NOT_MUSIC_PODCAST
            elif any(record[key] for key in audiobook_keys):
                pre[i] = NOT_MUSIC_AUDIOBOOK
        else:
            ts[i] = _as_text(record.get("endTime"))
            ms[i] = _as_text(record.get("msPlayed"))
            if record.get("episodeName") or record.get("podcastName"):
                pre[i] = NOT_MUSIC_PODCAST
            elif record.get("audiobookName") or record.get("chapterName"):
                pre[i] = NOT_MUSIC_AUDIOBOOK
            else:
                track[i] = _name(record.get("trackName"))
                artist[i] = _name(record.get("artistName"))
    nulls = pa.nulls(n, pa.string())
    columns = {
        "source_file": pa.array([file.source] * n, pa.string()),
        "row_number": pa.array(range(1, n + 1), pa.int64()),
        "original_row": pa.array(
            [None if reason is None else spotify_original_text(record) for record, reason in zip(records, pre)],
            pa.string(),
        ),
        "user_id": pa.array([file.person] * n, pa.string()),
        "ts_text": pa.array(ts, pa.string()),
        "ts_is_end": pa.array([True] * n, pa.bool_()),
        "ms_text": pa.array(ms, pa.string()),
        "track_id": nulls,
        "track_name": pa.array(track, pa.string()),
        "artist_id": nulls,
        "artist_name": pa.array(artist, pa.string()),
        "track_duration_text": nulls,
        "skipped_text": pa.array(skipped, pa.string()),
        "platform": pa.array(platform, pa.string()),
        "country": pa.array(country, pa.string()),
        "event_id": nulls,
        "pre_reason": pa.array(pre, pa.string()),
    }
    return pa.Table.from_pydict(columns, schema=STAGED_EVENT_SCHEMA)


def stage_spotify(con: duckdb.DuckDBPyConnection, file: InputFile) -> None:
    table = spotify_table(file)
    con.register("_ld_incoming", table)
    try:
        con.execute(f"insert into {STAGED_EVENTS} select * from _ld_incoming")
    finally:
        con.unregister("_ld_incoming")
