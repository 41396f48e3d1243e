"""``load_files``: read and validate everything, then write it in one transaction."""

from __future__ import annotations

import tempfile
import uuid
import zoneinfo
from collections.abc import Callable
from datetime import datetime, timezone as dt_timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse.connection import transaction
from warehouse.contract import DEFAULT_TIMEZONE, DERIVED_EVENT_ID_SQL
from warehouse.loaders import sources
from warehouse.loaders.errors import LoadError
from warehouse.loaders.options import ZONE_FROM_COUNTRY, LoadOptions, LoadReport
from warehouse.loaders.staging import (
    STAGED_EVENTS,
    SCANNED_KINDS,
    STAGED_USERS,
    USERS_EXPECTED,
    CanonicalScan,
    create_staging,
    drop_staging,
    spotify_original_text,
    stage_canonical,
    stage_spotify,
    stage_users,
)
from warehouse.paths import COUNTRY_TIME_ZONES_PATH
from warehouse.store import ensure_raw_tables, table_exists

MAX_MS_PLAYED = 24 * 60 * 60 * 1000
# Spotify's clients crossfade up to 12 s: a replay of a track may start that much before the
# previous play of it ends.
MAX_CROSSFADE_MS = 12_000
NON_MUSIC_PREFIX = "not a music play"
BEYOND_CLOCK_REASON = "timestamp more than a day in the future"
BEYOND_PLAYS_REASON = "timestamp more than a day beyond the other plays"
_TEMP_TABLES = [STAGED_EVENTS, STAGED_USERS, "_ld_zones", "_ld_user_checked", "_ld_bad_zones", "_ld_checked"]


def valid_timezones(con: duckdb.DuckDBPyConnection) -> set[str]:
    """IANA names both Python's zoneinfo and DuckDB (ICU) know: what the models can convert with."""
    duck = {row[0] for row in con.execute("select name from pg_timezone_names()").fetchall()}
    return (zoneinfo.available_timezones() & duck) | {"UTC"}


def _timestamp_sql(text: str) -> str:
    """Parse ISO text (with or without 'Z'/offset; offsets converted to UTC) or epoch ms/s digits."""
    t = f"trim({text})"
    return f"""(case
        when {t} is null or {t} = '' then null
        when regexp_full_match({t}, '\\d{{12,15}}') then epoch_ms(try_cast({t} as bigint))
        when regexp_full_match({t}, '\\d{{1,11}}') then to_timestamp(try_cast({t} as bigint))::timestamp
        when regexp_full_match({t}, '.*\\d[T ]\\d{{1,2}}:\\d{{2}}(:\\d{{2}}(\\.\\d+)?)?\\s*([Zz]|[+-]\\d{{2}}(:?\\d{{2}})?)')
            then timezone('UTC', try_cast({t} as timestamptz))
        else try_cast({t} as timestamp)
    end)"""


def _users_kind(path: Path, source: str) -> str:
    sniffed = sources._sniff_bytes(path)
    if sniffed == "empty":
        raise LoadError(f"{source}: the file is empty; expected {USERS_EXPECTED}")
    if sniffed == "parquet":
        return "parquet"
    if sniffed in ("json", "jsonl"):
        return sniffed
    if sniffed == "text":
        return "csv"
    raise LoadError(f"{source}: not a CSV, JSON or Parquet file; expected {USERS_EXPECTED}")


def _validate_users(con: duckdb.DuckDBPyConnection, zones: set[str], salt: str | None) -> None:
    con.execute("create or replace temp table _ld_zones (name varchar)")
    con.register("_ld_zone_list", pa.table({"name": sorted(zones)}))
    try:
        con.execute("insert into _ld_zones select name from _ld_zone_list")
    finally:
        con.unregister("_ld_zone_list")
    con.execute(
        f"""
        create or replace temp table _ld_user_checked as
        with given as (
            select source_file, "row_number", original_row,
                   nullif(trim(user_id), '') as raw_user,
                   coalesce(nullif(trim(timezone), ''), '{DEFAULT_TIMEZONE}') as given_zone
            from {STAGED_USERS}
        ),
        -- No two zone names differ only in case: 'europe/berlin' is Europe/Berlin, spelt as the
        -- models and the engine know it.
        typed as (
            select given.* exclude (given_zone), coalesce(_ld_zones.name, given_zone) as timezone
            from given
            left join _ld_zones on lower(_ld_zones.name) = lower(given.given_zone)
        ),
        checked as (
            select t.*,
                case
                    when raw_user is null then 'missing user'
                    when timezone not in (select name from _ld_zones)
                        then 'unknown time zone ''' || timezone || ''''
                end as zone_reason
            from typed t
        ),
        ranked as (
            select *,
                first_value(case when zone_reason is null then timezone end ignore nulls) over (
                    partition by raw_user order by source_file, "row_number"
                    rows between unbounded preceding and unbounded following
                ) as kept_zone,
                row_number() over (
                    partition by raw_user, zone_reason is null order by source_file, "row_number"
                ) as valid_rank
            from checked
        )
        select source_file, "row_number", original_row, raw_user, timezone,
            {sources.pseudonym_sql('raw_user', salt)} as user_id,
            case
                when zone_reason is not null then zone_reason
                when timezone <> kept_zone then 'conflicting time zone for user (kept ''' || kept_zone || ''')'
            end as reason,
            zone_reason is null and valid_rank = 1 as is_kept
        from ranked
        """
    )
    con.execute(
        """
        create or replace temp table _ld_bad_zones as
        select raw_user as user_id, min(timezone) as bad_zone
        from _ld_user_checked
        where raw_user is not null and reason like 'unknown time zone%'
          and raw_user not in (select raw_user from _ld_user_checked where is_kept)
        group by raw_user
        """
    )


def _validate_events(con: duckdb.DuckDBPyConnection, salt: str | None, now: datetime) -> None:
    warehouse_has_events = table_exists(con, "raw.listening_events")
    existing = (
        "(select distinct event_id from raw.listening_events where event_id in (select event_id from ided))"
        if warehouse_has_events
        else "(select null::varchar as event_id where false)"
    )
    con.execute(
        f"""
        create or replace temp table _ld_checked as
        with typed as (
            select s.source_file, s."row_number", s.pre_reason, s.ts_is_end,
                nullif(trim(s.user_id), '') as raw_user,
                coalesce(
                    nullif(trim(s.track_id), ''),
                    case when nullif(trim(s.track_name), '') is not null then
                        'trk_' || substr(md5(coalesce(trim(s.artist_name), '') || chr(31) || trim(s.track_name)), 1, 20)
                    end
                ) as track_id,
                coalesce(
                    nullif(trim(s.artist_id), ''),
                    case when nullif(trim(s.artist_name), '') is not null then
                        'art_' || substr(md5(trim(s.artist_name)), 1, 20)
                    end
                ) as artist_id,
                {_timestamp_sql('s.ts_text')} as ts,
                try_cast(trim(s.ms_text) as double) as ms_d,
                try_cast(round(try_cast(trim(s.track_duration_text) as double)) as bigint) as track_duration_ms,
                case
                    when lower(trim(s.skipped_text)) in ('true', 't', '1', 'yes', 'y', '1.0') then true
                    when lower(trim(s.skipped_text)) in ('false', 'f', '0', 'no', 'n', '0.0') then false
                end as skipped,
                nullif(trim(s.platform), '') as platform,
                nullif(trim(s.country), '') as country,
                nullif(trim(s.event_id), '') as given_event_id
            from {STAGED_EVENTS} s
        ),
        measured as (
            select t.*, bz.bad_zone,
                case when isfinite(ms_d) and ms_d >= 0 and ms_d <= {MAX_MS_PLAYED}
                     then cast(round(ms_d) as bigint) end as ms_played
            from typed t left join _ld_bad_zones bz on bz.user_id = t.raw_user
        ),
        placed as (
            select *,
                case when ts_is_end then ts - to_milliseconds(ms_played) else ts end as played_at
            from measured
        ),
        -- The latest start a clock can be trusted with: a day after now, unless most plays start
        -- later than that (a simulation of the future, or this machine's clock behind): then a
        -- day after the plays' own extent, the earlier of the start 99.9% of them have reached and
        -- Tukey's far fence (the upper quartile plus three interquartile ranges), since in a file
        -- of fewer than a thousand plays the 99.9th percentile is the latest play, however wrong.
        -- Either way a client whose clock says 2099 is set aside, not a reason to run detection
        -- over 70 years.
        horizon as (
            select
                median(played_at) > $1::timestamp + interval 1 day as beyond_clock,
                quantile_disc(played_at, [0.25, 0.75, 0.999]) as start_quantiles,
                case
                    when beyond_clock then least(
                        start_quantiles[3], start_quantiles[2] + 3 * (start_quantiles[2] - start_quantiles[1])
                    )
                    else $1::timestamp
                end + interval 1 day as latest_trusted_start
            from placed
            where played_at >= timestamp '2000-01-01'
        ),
        reasoned as (
            select placed.*,
                case
                    when pre_reason is not null then pre_reason
                    when raw_user is null then 'missing user'
                    when track_id is null then 'missing track'
                    when bad_zone is not null then 'unknown time zone ''' || bad_zone || ''''
                    when ts is null then 'unparsable timestamp'
                    when ms_d is null or not isfinite(ms_d) then 'unparsable ms_played'
                    when ms_d < 0 then 'negative ms_played'
                    when ms_d > {MAX_MS_PLAYED} then 'ms_played over 24 h'
                    when played_at < timestamp '2000-01-01' then 'timestamp before 2000'
                    when played_at > latest_trusted_start and beyond_clock then '{BEYOND_PLAYS_REASON}'
                    when played_at > latest_trusted_start then '{BEYOND_CLOCK_REASON}'
                end as reason,
                {sources.pseudonym_sql('raw_user', salt)} as user_id
            from placed cross join horizon
        ),
        ided as (
            select *,
                case when reason is null then coalesce(given_event_id, {DERIVED_EVENT_ID_SQL}) end as event_id
            from reasoned
        ),
        -- Clients sometimes record one play twice, the second record stamped a few seconds later
        -- (Spotify's exports 13-18 s, client logs a second or two): the same track for the same
        -- milliseconds, starting before the first record's play could have ended. Nobody hears
        -- one track twice at once for the same time to the millisecond, so the later record
        -- repeats the first. A replay starts as the play before it ends, or a crossfade earlier
        -- (a play no longer than a crossfade, a quick skip, is not crossfaded into); where both
        -- ends are stamped to the minute (account data), a minute earlier.
        repeated_records as (
            select source_file, "row_number",
                epoch_ms(played_at) - lag(epoch_ms(played_at)) over same_play
                    < ms_played - case
                        when ends_on_a_whole_minute and lag(ends_on_a_whole_minute) over same_play then 60000
                        when ms_played > {MAX_CROSSFADE_MS} then {MAX_CROSSFADE_MS}
                        else 0
                    end as repeats_a_record
            from (
                select *, ts_is_end and ts = date_trunc('minute', ts) as ends_on_a_whole_minute
                from ided
                where reason is null and ms_played > 0
            )
            window same_play as (partition by user_id, track_id, ms_played order by played_at, source_file, "row_number")
        ),
        -- The same event id twice in the input: the records after the first repeat it. Numbered
        -- over the ids and row positions alone, apart from the wide rows they are joined back to.
        repeated_ids as (
            select source_file, "row_number",
                row_number() over (partition by event_id order by source_file, "row_number") > 1 as repeats_an_id
            from ided
            where reason is null
        )
        select ided.*,
            case
                when reason is not null then 'quarantined'
                when repeated_ids.repeats_an_id then 'duplicate'
                when ex.event_id is not null then 'duplicate'
                when repeated_records.repeats_a_record then 'duplicate'
                else 'loaded'
            end as status
        from ided
        left join {existing} ex on ex.event_id = ided.event_id
        left join repeated_ids using (source_file, "row_number")
        left join repeated_records using (source_file, "row_number")
        """,
        [now],
    )


def _option_zone(options: LoadOptions, zones: set[str]) -> str:
    if options.timezone is None:
        return DEFAULT_TIMEZONE
    asked = options.timezone.strip().lower()
    if asked == ZONE_FROM_COUNTRY:
        return ZONE_FROM_COUNTRY
    spelt = {zone.lower(): zone for zone in zones}.get(asked)
    if spelt is None:
        raise LoadError(
            f"timezone option {options.timezone!r} is neither a known IANA time zone name "
            f"(examples: Europe/Berlin, America/New_York, UTC) nor {ZONE_FROM_COUNTRY}"
        )
    return spelt


def load_files(
    con: duckdb.DuckDBPyConnection,
    events_path: str | Path,
    users_path: str | Path | None = None,
    options: LoadOptions = LoadOptions(),
    on_file_read: Callable[[int], None] | None = None,
) -> LoadReport:
    """Load listening history files into ``raw.listening_events`` (see docs/loading.md).

    Everything is read and validated first; then users, new events, quarantined rows and one
    audit row are written in one transaction. A file that cannot be used raises
    :class:`LoadError` and leaves the warehouse as it was. ``on_file_read``, when given, is called
    with the number of history files read so far after each one (a folder may hold thousands).
    """
    zones = valid_timezones(con)
    assumed_zone = _option_zone(options, zones)
    salt = options.pseudonymize_salt
    report = LoadReport(load_id=uuid.uuid4().hex)
    report.clock = datetime.now(dt_timezone.utc).replace(tzinfo=None)
    with tempfile.TemporaryDirectory(prefix="listening-load-") as tmp:
        try:
            create_staging(con)
            scan = CanonicalScan(con, user_id=options.user_id, salt=salt)
            spotify_paths: dict[str, Path] = {}
            for file in sources.discover(events_path, Path(tmp), user_id=options.user_id, salt=salt):
                if file.kind == "ignored":
                    report.files_ignored.append(file.source)
                    continue
                if file.kind in SCANNED_KINDS:
                    _count_read(report, scan.add(file), on_file_read)
                    continue
                _count_read(report, scan.stage(), on_file_read)
                if file.kind in sources.SPOTIFY_KINDS:
                    stage_spotify(con, file)
                    spotify_paths[file.source] = file.path
                else:
                    stage_canonical(con, file, user_id=options.user_id, salt=salt)
                file.records = None
                _count_read(report, [file], on_file_read)
            _count_read(report, scan.stage(), on_file_read)
            if users_path is not None:
                users_target = Path(users_path)
                if not users_target.is_file():
                    raise LoadError(f"{users_path}: no such file; expected {USERS_EXPECTED}")
                users_source = users_target.name
                stage_users(con, _users_kind(users_target, str(users_target)), users_target, users_source, salt)
            _validate_users(con, zones, salt)
            _validate_events(con, salt, report.clock)
            _fill_spotify_originals(con, spotify_paths)
            _fill_report(con, report, assumed_zone)
            _write(con, report)
        finally:
            drop_staging(con, _TEMP_TABLES)
    return report


def _fill_spotify_originals(con: duckdb.DuckDBPyConnection, spotify_paths: dict[str, Path]) -> None:
    """The original text of the Spotify rows the checks quarantined, read from their files again
    (staged, a Spotify row has its text only when it was quarantined as it was staged)."""
    missing = con.execute(
        f"""
        select staged.source_file, list(staged."row_number" order by staged."row_number")
        from _ld_checked as checked
        inner join {STAGED_EVENTS} as staged using (source_file, "row_number")
        where checked.status = 'quarantined' and staged.original_row is null
        group by staged.source_file
        """
    ).fetchall()
    for source, numbers in missing:
        records = sources.spotify_records(spotify_paths[source])
        texts = pa.table(
            {
                "source_file": [source] * len(numbers),
                "row_number": numbers,
                "original_row": [spotify_original_text(records[number - 1]) for number in numbers],
            }
        )
        con.register("_ld_original_texts", texts)
        try:
            con.execute(
                f"""
                update {STAGED_EVENTS} as staged set original_row = texts.original_row
                from _ld_original_texts as texts
                where staged.source_file = texts.source_file and staged."row_number" = texts."row_number"
                """
            )
        finally:
            con.unregister("_ld_original_texts")


def _count_read(
    report: LoadReport, files: list[sources.InputFile], on_file_read: Callable[[int], None] | None
) -> None:
    for file in files:
        report.files_read.append(file.source)
        if on_file_read is not None:
            on_file_read(len(report.files_read))


def _fill_report(con: duckdb.DuckDBPyConnection, report: LoadReport, assumed_zone: str) -> None:
    for status, reason, count in con.execute(
        "select status, reason, count(*) from _ld_checked group by all"
    ).fetchall():
        report.rows_read += count
        if status == "loaded":
            report.rows_loaded += count
        elif status == "duplicate":
            report.rows_duplicate += count
        else:
            report.rows_quarantined += count
            report.quarantined_by_reason[reason] = report.quarantined_by_reason.get(reason, 0) + count
            if reason.startswith(NON_MUSIC_PREFIX):
                report.rows_non_music += count
    report.first_played_at, report.last_played_at, report.loaded_after_clock = con.execute(
        "select min(played_at), max(played_at), count(*) filter (played_at > ?) from _ld_checked where status = 'loaded'",
        [report.clock],
    ).fetchone()
    report.user_rows_read, report.user_rows_quarantined = con.execute(
        "select count(*), count(reason) from _ld_user_checked"
    ).fetchone()
    known = "select user_id from _ld_user_checked where is_kept"
    if table_exists(con, "raw.users"):
        known += " union all select user_id from raw.users"
    rows = con.execute(
        f"""
        select distinct user_id from _ld_checked
        where status <> 'quarantined' and user_id not in ({known})
        order by 1
        """
    ).fetchall()
    users = [user for (user,) in rows]
    if assumed_zone == ZONE_FROM_COUNTRY:
        report.assumed_timezones = _zones_from_country(con, users)
        report.zones_from_country = True
    else:
        report.assumed_timezones = {user: assumed_zone for user in users}


def _zones_from_country(con: duckdb.DuckDBPyConnection, users: list[str]) -> dict[str, str]:
    """Each user's zone: the main zone of the country (among those with one) most of their loaded plays come from.

    A tie goes to the first country code alphabetically; a user none of whose plays names a country
    with a known zone gets UTC.
    """
    rows = con.execute(
        """
        with plays_by_country as (
            select user_id, upper(country) as country_code, count(*) as plays
            from _ld_checked
            where status <> 'quarantined' and country is not null
            group by all
        ),
        main_zones as (
            select country_code, time_zone
            from read_csv(?, header = true, columns = {
                'time_zone': 'varchar', 'country_code': 'varchar', 'is_main_zone_of_country': 'boolean'
            })
            where is_main_zone_of_country
        )
        select plays_by_country.user_id, first(main_zones.time_zone order by plays desc, plays_by_country.country_code)
        from plays_by_country
        inner join main_zones using (country_code)
        group by plays_by_country.user_id
        """,
        [str(COUNTRY_TIME_ZONES_PATH)],
    ).fetchall()
    main_zones = dict(rows)
    return {user: main_zones.get(user, DEFAULT_TIMEZONE) for user in users}


def _write(con: duckdb.DuckDBPyConnection, report: LoadReport) -> None:
    load_id = report.load_id
    with transaction(con):
        ensure_raw_tables(con)
        loaded_at = con.execute("select now()::timestamptz at time zone 'UTC'").fetchone()[0]
        con.execute(
            "insert or replace into raw.users (user_id, timezone) "
            "select user_id, timezone from _ld_user_checked where is_kept"
        )
        if report.assumed_timezones:
            assumed = pa.table(
                {"user_id": list(report.assumed_timezones), "timezone": list(report.assumed_timezones.values())}
            )
            con.register("_ld_assumed", assumed)
            try:
                con.execute("insert or ignore into raw.users (user_id, timezone) select user_id, timezone from _ld_assumed")
            finally:
                con.unregister("_ld_assumed")
        report.users_written = con.execute(
            "select count(*) from _ld_user_checked where is_kept"
        ).fetchone()[0] + len(report.assumed_timezones)
        con.execute(
            """
            insert into raw.listening_events (event_id, user_id, played_at, ms_played, track_id, artist_id,
                track_duration_ms, skipped, platform, country, source)
            select event_id, user_id, played_at, ms_played, track_id, artist_id,
                track_duration_ms, skipped, platform, country, source_file
            from _ld_checked where status = 'loaded'
            order by user_id, played_at
            """
        )
        con.execute(
            f"""
            insert into raw.quarantined_events
            select md5(concat_ws('|', ?, kind, source_file, "row_number")), ?, kind, source_file, "row_number",
                   reason, original_row, ?
            from (
                -- A row's original text stays in the staging table until here: carried through the
                -- checks of 3.8 M plays, it made their sorts spill gigabytes to disk.
                select 'event' as kind, checked.source_file, checked."row_number", checked.reason, staged.original_row
                from _ld_checked as checked
                inner join {STAGED_EVENTS} as staged using (source_file, "row_number")
                where checked.status = 'quarantined'
                union all
                select 'user', source_file, "row_number", reason, original_row
                from _ld_user_checked where reason is not null
            )
            """,
            [load_id, load_id, loaded_at],
        )
        con.execute(
            "insert into raw.load_audit values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                load_id,
                loaded_at,
                report.rows_read,
                report.rows_loaded,
                report.rows_quarantined,
                report.rows_duplicate,
                report.rows_non_music,
                report.first_played_at,
                report.last_played_at,
                len(report.files_read),
                len(report.files_ignored),
                report.user_rows_quarantined,
            ],
        )
