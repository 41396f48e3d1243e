"""Loading a person's own listening history: formats, quarantine, reconciliation, privacy."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import tarfile
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from warehouse.connection import WarehouseError, connect
from warehouse.loaders import ZONE_FROM_COUNTRY, LoadError, LoadOptions, load_files, sources, staging
from warehouse.loaders.staging import spotify_device

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "loaders"
USERS = FIXTURES / "users" / "users.csv"
SECRETS = ("198.51.100.23", "192.0.2.45", "203.0.113.77", "SecretAgent", "alice-secret-username")
TABLES = ("raw.listening_events", "raw.users", "raw.quarantined_events", "raw.load_audit")


@pytest.fixture
def con(tmp_path):
    connection = connect(tmp_path / "w.duckdb")
    yield connection
    connection.close()


def _zip_export(tmp_path: Path) -> Path:
    """A zip as Spotify sends it: a top folder around the person's files."""
    target = tmp_path / "my_spotify_data.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for file in sorted((FIXTURES / "spotify_account" / "alice").iterdir()):
            archive.write(file, f"MyData/{file.name}")
    return target


def _parquet_events(tmp_path: Path) -> Path:
    """Canonical Parquet with a time-zone-aware played_at column (converted to UTC on load)."""
    target = tmp_path / "events.parquet"
    table = pa.table(
        {
            "user_id": ["alice", "alice", "bob", None],
            "played_at": pa.array(
                [
                    datetime(2024, 3, 31, 0, 59),
                    datetime(2024, 3, 31, 1, 1),
                    datetime(2024, 3, 31, 12, 0),
                    datetime(2024, 3, 31, 13, 0),
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "ms_played": [100_000, 200_000, 300_000, 1000],
            "track_id": ["trk_a", "trk_b", "trk_c", "trk_d"],
            "skipped": [False, True, None, False],
        }
    )
    pq.write_table(table, target)
    return target


def _counts(con) -> dict[str, int]:
    counts = {}
    for table in TABLES:
        schema, name = table.split(".")
        exists = con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, name]
        ).fetchone()[0]
        counts[table] = con.execute(f"select count(*) from {table}").fetchone()[0] if exists else -1
    return counts


def _all_text(con) -> str:
    """Every varchar value of every table of the warehouse, joined."""
    pieces = []
    for schema, table, column in con.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where data_type = 'VARCHAR' and table_catalog = current_database()"
    ).fetchall():
        pieces += [str(v) for (v,) in con.execute(f'select "{column}" from {schema}."{table}"').fetchall()]
    return "\n".join(pieces)


def _quarantine(con, reason: str) -> list[tuple[str, int, str]]:
    return con.execute(
        "select source_file, row_number, original_row from raw.quarantined_events where reason = ? order by all",
        [reason],
    ).fetchall()


ALL_FIXTURES = [
    pytest.param(lambda tmp: (FIXTURES / "canonical", USERS, LoadOptions()), id="canonical CSV folder with a users file"),
    pytest.param(lambda tmp: (_parquet_events(tmp), None, LoadOptions()), id="canonical Parquet with a zone-aware timestamp"),
    pytest.param(lambda tmp: (str(FIXTURES / "canonical" / "*.csv"), USERS, LoadOptions()), id="a glob of CSV files"),
    pytest.param(
        lambda tmp: (FIXTURES / "spotify_account" / "alice", None, LoadOptions(timezone="Europe/Berlin")),
        id="Spotify account data for one person",
    ),
    pytest.param(
        lambda tmp: (FIXTURES / "spotify_extended", None, LoadOptions(user_id="alice")),
        id="Spotify extended history mixing music podcasts and an audiobook",
    ),
    pytest.param(lambda tmp: (_zip_export(tmp), None, LoadOptions()), id="a zip of an export"),
    pytest.param(lambda tmp: (FIXTURES / "people", None, LoadOptions()), id="a folder of two people's folders"),
]


@pytest.mark.parametrize("make", ALL_FIXTURES)
def test_every_row_is_loaded_quarantined_or_a_counted_duplicate(con, tmp_path, make):
    events, users, options = make(tmp_path)
    report = load_files(con, events, users, options)
    assert report.rows_read > 0
    assert report.rows_read == report.rows_loaded + report.rows_quarantined + report.rows_duplicate
    assert con.execute("select count(*) from raw.listening_events").fetchone()[0] == report.rows_loaded
    quarantined_events = con.execute(
        "select count(*) from raw.quarantined_events where row_kind = 'event' and load_id = ?", [report.load_id]
    ).fetchone()[0]
    assert quarantined_events == report.rows_quarantined
    assert sum(report.quarantined_by_reason.values()) == report.rows_quarantined
    audit = con.execute(
        "select rows_read, rows_loaded, rows_quarantined, rows_duplicate from raw.load_audit"
    ).fetchall()
    assert audit == [(report.rows_read, report.rows_loaded, report.rows_quarantined, report.rows_duplicate)]
    assert report.first_date is not None and report.first_date <= report.last_date
    assert report.summary_lines()


@pytest.mark.parametrize("make", ALL_FIXTURES)
def test_loading_the_same_files_twice_adds_no_event(con, tmp_path, make):
    events, users, options = make(tmp_path)
    first = load_files(con, events, users, options)
    before = con.execute("select count(*) from raw.listening_events").fetchone()[0]
    second = load_files(con, events, users, options)
    assert con.execute("select count(*) from raw.listening_events").fetchone()[0] == before
    assert second.rows_loaded == 0
    assert second.rows_duplicate == first.rows_loaded + first.rows_duplicate
    assert second.first_date is None


@pytest.mark.parametrize(
    "row, reason",
    [
        pytest.param(2, "missing user", id="a row without a user"),
        pytest.param(3, "missing track", id="a row without a track"),
        pytest.param(4, "unparsable timestamp", id="a timestamp that is not a time"),
        pytest.param(5, "unparsable timestamp", id="an impossible date such as 30 February"),
        pytest.param(6, "timestamp before 2000", id="a play before 2000"),
        pytest.param(7, "timestamp more than a day in the future", id="a play far in the future"),
        pytest.param(8, "negative ms_played", id="a negative duration"),
        pytest.param(9, "ms_played over 24 h", id="a duration over a day"),
        pytest.param(10, "unparsable ms_played", id="a duration that is not a number"),
        pytest.param(11, "unknown time zone 'Mars/Olympus'", id="a user whose zone is not an IANA name"),
    ],
)
def test_each_bad_canonical_row_lands_in_quarantine_with_its_reason(con, row, reason):
    load_files(con, FIXTURES / "canonical" / "bad_rows.csv", USERS)
    rows = _quarantine(con, reason)
    assert ("bad_rows.csv", row) in [(source, number) for source, number, _ in rows]


@pytest.mark.parametrize("play_count", [2_000, 200], ids=["a large file", "a file too small for a 99.9th percentile"])
def test_plays_mostly_after_this_machines_clock_are_held_to_their_own_extent(con, tmp_path, play_count):
    """A simulation of next year (or a machine whose clock is behind) loads; client clocks that say 2061 or 2099 do not."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    starts = [now + timedelta(days=30, minutes=7 * number) for number in range(play_count)]
    starts += [datetime(2099, 1, 1), datetime(2061, 6, 1)]
    lines = ["user_id,played_at,ms_played,track_id"]
    lines += [f"amy,{start:%Y-%m-%dT%H:%M:%S}Z,180000,track-{number}" for number, start in enumerate(starts)]
    plays = _write_bytes(tmp_path, "next_year.csv", "\n".join(lines).encode())
    report = load_files(con, plays)
    assert (report.rows_loaded, report.rows_quarantined) == (play_count, 2)
    assert report.loaded_after_clock == play_count
    assert report.last_date == starts[play_count - 1].date()
    beyond = _quarantine(con, "timestamp more than a day beyond the other plays")
    assert sorted(number for _, number, _ in beyond) == [play_count + 1, play_count + 2]
    assert any(f"{play_count} of them start after this machine's clock" in line for line in report.summary_lines())


def test_a_user_with_an_unknown_zone_is_quarantined_with_the_zone_named(con):
    report = load_files(con, FIXTURES / "canonical", USERS)
    user_rows = con.execute(
        "select source_file, reason, original_row from raw.quarantined_events where row_kind = 'user'"
    ).fetchall()
    assert [(source, reason) for source, reason, _ in user_rows] == [("users.csv", "unknown time zone 'Mars/Olympus'")]
    assert "carol" in user_rows[0][2]
    assert report.user_rows_quarantined == 1
    assert con.execute("select count(*) from raw.users where user_id = 'carol'").fetchone()[0] == 0
    assert con.execute("select count(*) from raw.listening_events where user_id = 'carol'").fetchone()[0] == 0
    zones = dict(con.execute("select user_id, timezone from raw.users").fetchall())
    assert zones["alice"] == "Europe/Berlin" and zones["dave"] == "UTC"  # dave's zone is blank: UTC
    assert report.assumed_timezones == {"erin": "UTC"}  # erin is in no users file


@pytest.mark.parametrize(
    "path, reason, count",
    [
        pytest.param("spotify_account/alice", "missing track", 1, id="account data without a track name"),
        pytest.param("spotify_account/alice", "negative ms_played", 1, id="account data with a negative duration"),
        pytest.param("spotify_account/alice", "unparsable timestamp", 1, id="account data with a garbled end time"),
        pytest.param("spotify_account/alice", "not a music play: podcast episode", 1, id="account data podcast file"),
        pytest.param("spotify_extended", "not a music play: podcast episode", 2, id="extended podcast episodes"),
        pytest.param("spotify_extended", "not a music play: audiobook", 1, id="extended audiobook chapter"),
        pytest.param("spotify_extended", "timestamp before 2000", 1, id="extended play before 2000"),
        pytest.param("people", "ms_played over 24 h", 1, id="an absurd duration in a person's folder"),
    ],
)
def test_each_bad_spotify_row_lands_in_quarantine_with_its_reason(con, path, reason, count):
    report = load_files(con, FIXTURES / path, options=LoadOptions(user_id="alice") if "extended" in path else LoadOptions())
    assert len(_quarantine(con, reason)) == count
    assert report.quarantined_by_reason[reason] == count


def test_a_spotify_row_quarantined_by_the_checks_keeps_its_original_text(con, tmp_path):
    """The text of a row the checks quarantine is read from its file again, private keys dropped."""
    records = json.loads((FIXTURES / "spotify_extended" / "endsong_0.json").read_text())
    records[1] = {**records[1], "ms_played": -5}
    export = tmp_path / "alice" / "endsong_0.json"
    export.parent.mkdir()
    export.write_text(json.dumps(records))
    load_files(con, export.parent)
    [(source, row, text)] = _quarantine(con, "negative ms_played")
    expected = {key: value for key, value in records[1].items() if not staging.is_private_key(key)}
    assert (source, row, json.loads(text)) == ("endsong_0.json", 2, expected)
    for secret in SECRETS:
        assert secret not in _all_text(con)


def test_non_music_plays_are_counted_and_kept_out_of_events(con):
    report = load_files(con, FIXTURES / "spotify_extended", options=LoadOptions(user_id="alice"))
    assert report.rows_non_music == 3
    assert report.rows_duplicate == 1  # the same play listed twice
    assert report.rows_loaded == 5
    assert con.execute("select max(ms_played) from raw.listening_events").fetchone()[0] < 1_000_000
    assert con.execute("select rows_non_music from raw.load_audit").fetchone()[0] == 3


def test_start_is_end_minus_ms_played(con):
    load_files(con, FIXTURES / "spotify_account" / "alice")
    played_at = dict(
        con.execute(
            "select track_id, played_at from raw.listening_events where ms_played = 268000 and played_at < '2024-04-01'"
        ).fetchall()
    )
    # endTime "2024-03-30 23:59" minus 268 s
    assert list(played_at.values()) == [datetime(2024, 3, 30, 23, 59) - timedelta(milliseconds=268000)]
    load_files(con, FIXTURES / "spotify_extended", options=LoadOptions(user_id="ext"))
    start = con.execute(
        "select played_at from raw.listening_events where user_id = 'ext' and ms_played = 213000"
    ).fetchone()[0]
    assert start == datetime(2023, 1, 5, 21, 13, 45) - timedelta(milliseconds=213000)


def test_the_daylight_saving_night_keeps_every_play(con):
    """Europe/Berlin skips 02:00-03:00 local on 2024-03-31 (01:00 UTC): UTC storage loses nothing."""
    load_files(con, FIXTURES / "canonical" / "events.csv", USERS)
    around = con.execute(
        "select played_at from raw.listening_events where user_id = 'alice' "
        "and played_at between '2024-03-30 23:00' and '2024-03-31 03:00' order by 1"
    ).fetchall()
    assert [row[0] for row in around] == [
        datetime(2024, 3, 30, 23, 58),
        datetime(2024, 3, 31, 0, 30),
        datetime(2024, 3, 31, 1, 10),  # given as 03:10+02:00
        datetime(2024, 3, 31, 1, 30),  # no zone: read as UTC
        datetime(2024, 3, 31, 2, 0),  # epoch milliseconds
    ]


@pytest.mark.parametrize(
    "platform, device",
    [
        ("Android OS 13 API 33 (Google, Pixel 7)", "android (google, pixel 7)"),
        ("Android OS 14 API 34 (samsung, SM-S911B)", "android (samsung, sm-s911b)"),
        ("iOS 17.1.2 (iPhone15,2)", "ios (iphone15,2)"),
        ("iOS 12.1 (iPad7,5)", "ios (ipad7,5)"),
        ("iOS 12.1 ( )", "ios"),
        ("Windows 10 (10.0.19045; x64; AppX)", "windows"),
        ("OS X 10.15.7 [x86 8]", "macos"),
        ("web_player windows 10;chrome 120.0.0.0;desktop", "web"),
        ("WebPlayer (websocket RFC6455)", "web"),
        ("Partner sonos_one Sonos;One;;", "partner sonos_one"),
        ("android", "android"),
        ("not_applicable", "not_applicable"),
        ("  ", None),
        (None, None),
    ],
)
def test_a_spotify_platform_is_reduced_to_the_kind_of_device(platform, device):
    assert spotify_device(platform) == device


def test_a_system_update_is_not_a_new_device_but_another_phone_is(con, tmp_path):
    plays = [
        {"ts": f"2024-03-{day:02d}T18:00:00Z", "ms_played": 200_000, "platform": platform, "conn_country": "DE",
         "master_metadata_track_name": "Hoppípolla", "master_metadata_album_artist_name": "Sigur Rós"}
        for day, platform in [
            (1, "Android OS 13 API 33 (Google, Pixel 7)"),
            (2, "Android OS 14 API 34 (Google, Pixel 7)"),
            (3, "Android OS 14 API 34 (samsung, SM-S911B)"),
        ]
    ]
    export = tmp_path / "Streaming_History_Audio_2024.json"
    export.write_text(json.dumps(plays))
    load_files(con, export, options=LoadOptions(user_id="alice"))
    assert con.execute("select platform from raw.listening_events order by played_at").fetchall() == [
        ("android (google, pixel 7)",), ("android (google, pixel 7)",), ("android (samsung, sm-s911b)",)
    ]


def test_a_play_recorded_twice_in_an_export_loads_once(con, tmp_path):
    """Extended exports sometimes repeat a play's record, stamped seconds later; replays are plays."""

    def play(end: str, ms_played: int, track: str) -> dict:
        return {"ts": end, "ms_played": ms_played, "conn_country": "PL", "platform": "Android OS 9 API 28 (HUAWEI, POT-LX1)",
                "master_metadata_track_name": track, "master_metadata_album_artist_name": "Artist"}

    extended = [
        play("2019-12-26T09:06:04Z", 128_629, "Repeated record"),
        play("2019-12-26T09:06:17Z", 128_629, "Repeated record"),  # 13 s later, the same 128.629 s: one play
        play("2019-12-26T10:00:00Z", 200_000, "Replayed"),
        play("2019-12-26T10:03:20Z", 200_000, "Replayed"),  # starts as the first ends: a replay
        play("2019-12-26T11:00:00Z", 100_000, "Stopped twice"),
        play("2019-12-26T11:00:13Z", 100_500, "Stopped twice"),  # another length: another play
    ]
    (tmp_path / "ext").mkdir()
    (tmp_path / "ext" / "Streaming_History_Audio_2019.json").write_text(json.dumps(extended))
    report = load_files(con, tmp_path / "ext", options=LoadOptions(user_id="listener"))
    assert (report.rows_loaded, report.rows_duplicate) == (5, 1)
    assert con.execute("select count(*) from raw.listening_events where ms_played = 128629").fetchone()[0] == 1
    # Account data stamps ends to the minute: a replay of a 200 s track ending 3 minutes after the
    # first is a start 20 s "before" the first play's end, within the minute of rounding.
    account = [
        {"endTime": "2024-03-01 10:00", "artistName": "Artist", "trackName": "Replayed", "msPlayed": 200_000},
        {"endTime": "2024-03-01 10:03", "artistName": "Artist", "trackName": "Replayed", "msPlayed": 200_000},
    ]
    (tmp_path / "account").mkdir()
    (tmp_path / "account" / "StreamingHistory_music_0.json").write_text(json.dumps(account))
    report = load_files(con, tmp_path / "account", options=LoadOptions(user_id="stamped"))
    assert (report.rows_loaded, report.rows_duplicate) == (2, 0)


def test_a_blank_spotify_skip_is_read_from_how_the_play_ended(con, tmp_path):
    def play(end: str, skipped: bool | None, reason_end: str | None) -> dict:
        return {"ts": end, "ms_played": 60_000, "master_metadata_track_name": end, "master_metadata_album_artist_name": "Artist",
                "skipped": skipped, "reason_end": reason_end}

    extended = [
        play("2019-12-26T09:00:00Z", None, "fwdbtn"),
        play("2019-12-26T10:00:00Z", None, "trackdone"),
        play("2019-12-26T11:00:00Z", None, "endplay"),
        play("2019-12-26T12:00:00Z", None, None),
        play("2019-12-26T13:00:00Z", False, "fwdbtn"),  # the flag, where given, wins
    ]
    (tmp_path / "Streaming_History_Audio_2019.json").write_text(json.dumps(extended))
    load_files(con, tmp_path, options=LoadOptions(user_id="listener"))
    skipped = con.execute("select skipped from raw.listening_events order by played_at").fetchall()
    assert [row[0] for row in skipped] == [True, False, None, None, False]


def test_a_play_logged_twice_in_canonical_events_loads_once(con, tmp_path):
    """A client log may record a play twice, a second apart; a crossfaded replay is still a play."""
    plays = _write_bytes(
        tmp_path,
        "plays.csv",
        b"user_id,played_at,ms_played,track_id\n"
        b"amy,2024-06-01T10:00:00Z,180000,logged-twice\n"
        b"amy,2024-06-01T10:00:02Z,180000,logged-twice\n"  # 2 s later, the same 180 s: one play
        b"amy,2024-06-01T11:00:00Z,180000,on-repeat\n"
        b"amy,2024-06-01T11:02:50Z,180000,on-repeat\n"  # 10 s before the first ends: a crossfade
        b"amy,2024-06-01T12:00:00Z,180000,two-lengths\n"
        b"amy,2024-06-01T12:00:02Z,90000,two-lengths\n",  # another length: another play
    )
    report = load_files(con, plays)
    assert (report.rows_loaded, report.rows_duplicate) == (5, 1)
    assert con.execute("select count(*) from raw.listening_events where track_id = 'logged-twice'").fetchall() == [(1,)]


def test_a_quick_skip_logged_twice_under_two_ids_loads_once(con, tmp_path):
    """A skip of a few seconds is too short to crossfade into: a record of it starting before it
    ended repeats it, whatever its event id; once it has ended, the same skip again is a play."""
    plays = _write_bytes(
        tmp_path,
        "plays.csv",
        b"event_id,user_id,played_at,ms_played,track_id\n"
        b"e1,amy,2024-06-01T13:00:00.500Z,1900,skipped\n"
        b"e2,amy,2024-06-01T13:00:00.500Z,1900,skipped\n"  # the same instant, another id: one play
        b"e4,amy,2024-06-01T13:00:02.500Z,1900,skipped\n",  # after it ended: skipped again
    )
    report = load_files(con, plays)
    assert (report.rows_loaded, report.rows_duplicate) == (2, 1)
    assert con.execute("select event_id from raw.listening_events order by played_at").fetchall() == [("e1",), ("e4",)]


def test_unicode_names_give_stable_distinct_ids(con, tmp_path):
    load_files(con, FIXTURES / "spotify_account" / "alice")
    artists = con.execute("select count(distinct artist_id) from raw.listening_events").fetchone()[0]
    assert artists == 3  # Sigur Rós, Beyoncé, 坂本龍一
    first = con.execute("select track_id from raw.listening_events order by played_at").fetchall()
    con2 = connect(tmp_path / "other.duckdb")
    load_files(con2, FIXTURES / "spotify_account" / "alice")
    assert con2.execute("select track_id from raw.listening_events order by played_at").fetchall() == first
    con2.close()


def test_a_later_export_adds_only_its_new_days(con):
    first = load_files(con, FIXTURES / "spotify_account" / "alice", options=LoadOptions(user_id="alice"))
    later = load_files(con, FIXTURES / "spotify_account_later", options=LoadOptions())
    assert later.rows_duplicate == 2 and later.rows_loaded == 2
    assert (later.first_date.isoformat(), later.last_date.isoformat()) == ("2024-04-09", "2024-04-10")
    assert first.last_date.isoformat() == "2024-04-02"
    canonical = load_files(con, FIXTURES / "canonical", USERS)
    later_csv = load_files(con, FIXTURES / "canonical_later")
    assert later_csv.rows_duplicate == 1 and later_csv.rows_loaded == 2
    assert later_csv.first_date.isoformat() == "2024-04-05"
    assert canonical.rows_duplicate == 1  # bob's repeated row in the same file


def test_two_peoples_folders_become_two_users_and_ignored_files_are_listed(con):
    report = load_files(con, FIXTURES / "people")
    users = [row[0] for row in con.execute("select distinct user_id from raw.listening_events order by 1").fetchall()]
    assert users == ["alice", "bob"]
    assert report.files_ignored == ["bob/MyData/Identity.json"]
    sources = {row[0] for row in con.execute("select distinct source from raw.listening_events").fetchall()}
    assert sources == {"alice/StreamingHistory_music_0.json", "bob/MyData/StreamingHistory0.json"}


def test_many_peoples_ignored_files_are_summed_up_by_name(con, tmp_path):
    for person in ["ann", "ben", "cy", "dee", "eve", "flo"]:
        folder = tmp_path / "people" / person / "MyData"
        folder.mkdir(parents=True)
        shutil.copy(FIXTURES / "spotify_account" / "alice" / "StreamingHistory_music_0.json", folder)
        (folder / "Userdata.json").write_text(json.dumps({"username": person, "country": "SE"}))
        (folder / "StreamingHistory_podcast_0.json").write_text("[]")
    (tmp_path / "people" / "ann" / "MyData" / "Identity.json").write_text(json.dumps({"displayName": "Ann"}))
    report = load_files(con, tmp_path / "people")
    assert len(report.files_ignored) == 13
    files_line = report.summary_lines()[0]
    assert "ignored (not listening history): 13 files: StreamingHistory_podcast_0.json (6), Userdata.json (6), Identity.json (1)" in files_line
    assert "ann/MyData/Userdata.json" not in files_line


def test_a_zip_export_reads_like_its_folder_and_ignores_non_history_files(con, tmp_path):
    report = load_files(con, _zip_export(tmp_path), options=LoadOptions(user_id="alice"))
    assert sorted(report.files_ignored) == ["MyData/Playlist1.json", "MyData/SearchQueries.json", "MyData/Userdata.json"]
    assert report.rows_loaded == 7
    assert con.execute("select distinct user_id from raw.listening_events").fetchall() == [("alice",)]
    assert report.assumed_timezones == {"alice": "UTC"}
    assert any("time zone assumed: UTC" in line for line in report.summary_lines())


def test_tar_archives_read_like_their_folders(con, tmp_path):
    """A .tar.gz of people's folders is those people; a .tgz of one person's files is the person."""
    reference = connect(tmp_path / "from_folders.duckdb")
    load_files(reference, FIXTURES / "people")
    events = "select user_id, played_at, ms_played, track_id from raw.listening_events order by all"
    people = tmp_path / "people.tar.gz"
    with tarfile.open(people, "w:gz") as archive:
        archive.add(FIXTURES / "people", arcname=".")
    load_files(con, people)
    assert con.execute(events).fetchall() == reference.execute(events).fetchall()
    reference.close()
    one_person = tmp_path / "carol.tgz"
    with tarfile.open(one_person, "w:gz") as archive:
        archive.add(FIXTURES / "people" / "alice" / "StreamingHistory_music_0.json", arcname="StreamingHistory_music_0.json")
    assert load_files(con, one_person).rows_loaded > 0
    assert ("carol",) in con.execute("select distinct user_id from raw.listening_events").fetchall()


def test_a_tar_member_outside_its_folder_or_a_link_is_not_extracted(con, tmp_path):
    archive_path = tmp_path / "export" / "dump.tar"
    archive_path.parent.mkdir()
    with tarfile.open(archive_path, "w") as archive:
        archive.add(FIXTURES / "canonical" / "events.csv", arcname="events.csv")
        archive.add(FIXTURES / "canonical" / "events.csv", arcname="../escaped.csv")
        link = tarfile.TarInfo("linked.csv")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    report = load_files(con, archive_path.parent, USERS)
    assert report.files_read == ["dump.tar/events.csv"]
    assert not (tmp_path / "escaped.csv").exists()


def test_the_export_folder_name_is_the_user_id_by_default(con):
    load_files(con, FIXTURES / "spotify_account" / "alice")
    assert con.execute("select distinct user_id from raw.listening_events").fetchall() == [("alice",)]


def test_format_is_detected_from_content_on_a_renamed_file(con, tmp_path):
    renamed = tmp_path / "alice" / "history.dat"
    renamed.parent.mkdir()
    shutil.copy(FIXTURES / "spotify_extended" / "endsong_0.json", renamed)
    csv_renamed = tmp_path / "plays.txt"
    shutil.copy(FIXTURES / "canonical" / "events.csv", csv_renamed)
    parquet_renamed = tmp_path / "plays.bin"
    shutil.copy(_parquet_events(tmp_path), parquet_renamed)
    assert load_files(con, renamed).rows_loaded == 2
    assert con.execute("select distinct user_id from raw.listening_events").fetchall() == [("alice",)]
    assert load_files(con, csv_renamed).rows_loaded == 8 - 1
    assert load_files(con, parquet_renamed).rows_loaded == 3


CANONICAL_SOURCES = ("events.csv", "bad_rows.csv")


def _canonical_rows_as_json(tmp_path: Path, layout: str) -> Path:
    """The canonical CSV fixtures rewritten as JSON: numbers where a cell is one (so a key's values
    mix types: ``ms_played`` is ``lots`` on one row), an IP address on every row, a service's
    ``session_id`` besides, and ``skipped`` left out where the cell is blank."""
    folder = tmp_path / layout.replace(" ", "_")
    folder.mkdir()
    for source in CANONICAL_SOURCES:
        with open(FIXTURES / "canonical" / source, newline="") as handle:
            rows = list(csv.DictReader(handle))
        records = []
        for row in rows:
            record = {key: int(value) if value.lstrip("-").isdigit() else value for key, value in row.items()}
            if record.get("skipped") == "":
                del record["skipped"]
            records.append({**record, "ip_addr": "198.51.100.23", "session_id": "s1"})
        if layout == "JSON array":
            (folder / source.replace(".csv", ".json")).write_text(json.dumps(records))
            continue
        lines = "".join(json.dumps(record) + "\n" for record in records).encode()
        if layout == "JSON Lines":
            (folder / source.replace(".csv", ".jsonl")).write_bytes(lines)
        else:  # gzip-compressed, under a name that does not say so
            (folder / source.replace(".csv", ".part")).write_bytes(gzip.compress(lines))
    return folder


def _gzip_csv(tmp_path: Path, layout: str) -> Path:
    folder = tmp_path / "gzip_csv"
    folder.mkdir()
    (folder / "events.csv.gz").write_bytes(gzip.compress((FIXTURES / "canonical" / "events.csv").read_bytes()))
    (folder / "bad_rows.dat").write_bytes(gzip.compress((FIXTURES / "canonical" / "bad_rows.csv").read_bytes()))
    return folder


@pytest.mark.parametrize(
    "make, layout",
    [
        pytest.param(_gzip_csv, "", id="gzip CSV, one file renamed"),
        pytest.param(_canonical_rows_as_json, "JSON array", id="a JSON array"),
        pytest.param(_canonical_rows_as_json, "JSON Lines", id="JSON Lines"),
        pytest.param(_canonical_rows_as_json, "gzip JSON Lines", id="gzip JSON Lines, renamed"),
    ],
)
def test_canonical_rows_load_alike_from_csv_json_json_lines_and_gzip(con, tmp_path, make, layout):
    csv_folder = tmp_path / "csv"
    csv_folder.mkdir()
    for source in CANONICAL_SOURCES:
        shutil.copy(FIXTURES / "canonical" / source, csv_folder)
    reference = connect(tmp_path / "from_csv.duckdb")
    expected = load_files(reference, csv_folder, USERS)
    report = load_files(con, make(tmp_path, layout), USERS)
    events = "select * exclude (source), split_part(source, '.', 1) from raw.listening_events order by event_id"
    quarantined = (
        "select split_part(source_file, '.', 1), row_number, reason from raw.quarantined_events "
        "where row_kind = 'event' order by all"
    )
    assert con.execute(events).fetchall() == reference.execute(events).fetchall()
    assert con.execute(quarantined).fetchall() == reference.execute(quarantined).fetchall()
    assert (report.rows_read, report.rows_duplicate) == (expected.rows_read, expected.rows_duplicate)
    reference.close()
    assert "198.51.100.23" not in _all_text(con)


def test_a_json_lines_file_of_one_play_loads_it(con, tmp_path):
    play = {"user_id": "alice", "played_at": "2024-04-02T12:00:00+02:00", "ms_played": 120000, "track_id": "trk_a"}
    single = _write_bytes(tmp_path, "part-0.jsonl", json.dumps(play).encode())
    assert load_files(con, single, USERS).rows_loaded == 1
    assert con.execute("select played_at from raw.listening_events").fetchone()[0] == datetime(2024, 4, 2, 10, 0)


def test_a_spotify_history_in_json_lines_loads_and_keeps_a_damaged_line(con, tmp_path):
    records = json.loads((FIXTURES / "spotify_extended" / "endsong_0.json").read_text())
    folder = tmp_path / "alice"
    folder.mkdir()
    lines = "".join(json.dumps(record) + "\n" for record in records) + '{"ts": "2023-01-06T10:00:00Z", "ms_pl\n'
    (folder / "endsong_0.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    report = load_files(con, folder)
    assert (report.rows_read, report.rows_loaded) == (len(records) + 1, len(records))
    [(source, row, text)] = _quarantine(con, staging.MALFORMED_ROW)
    assert (source, row) == ("endsong_0.jsonl.gz", len(records) + 1)
    assert '"ms_pl' in text
    assert con.execute("select distinct user_id from raw.listening_events").fetchall() == [("alice",)]


def test_a_csv_with_extra_and_missing_optional_columns_loads(con):
    report = load_files(con, FIXTURES / "canonical" / "extra_and_missing_columns.csv")
    assert (report.rows_loaded, report.rows_quarantined) == (1, 1)
    row = con.execute("select platform, artist_id, skipped from raw.listening_events").fetchone()
    assert row == (None, None, None)


def test_no_ip_address_user_agent_or_username_reaches_the_warehouse(con, tmp_path):
    load_files(con, FIXTURES / "spotify_extended", options=LoadOptions(user_id="alice"))
    load_files(con, FIXTURES / "canonical", USERS)
    load_files(con, _zip_export(tmp_path), options=LoadOptions(user_id="zip"))
    text = _all_text(con)
    assert "Science Weekly" in text  # the scan does see quarantined original rows
    for secret in SECRETS:
        assert secret not in text
    for key in ("ip_addr", "user_agent", "username"):
        assert f'"{key}' not in text


def test_pseudonymised_ids_are_stable_and_hide_the_raw_ids(con, tmp_path):
    options = LoadOptions(pseudonymize_salt="pepper")
    load_files(con, FIXTURES / "people", options=options)
    load_files(con, FIXTURES / "canonical", USERS, options)
    ids = {row[0] for row in con.execute("select user_id from raw.listening_events union select user_id from raw.users").fetchall()}
    assert ids and all(user.startswith("u_") for user in ids)
    text = _all_text(con)
    for raw in ('"alice"', '"bob"', '"carol"', "alice/", "bob/"):
        assert raw not in text
    other = connect(tmp_path / "again.duckdb")
    load_files(other, FIXTURES / "people", options=options)
    again = {row[0] for row in other.execute("select user_id from raw.listening_events").fetchall()}
    assert again <= ids
    load_files(other, FIXTURES / "people", options=LoadOptions(pseudonymize_salt="salt"))
    assert {row[0] for row in other.execute("select user_id from raw.listening_events").fetchall()} - again
    other.close()


def _write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    target = tmp_path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


FILE_ERRORS = [
    pytest.param(lambda tmp: FIXTURES / "broken" / "StreamingHistory_music_0.json", "not valid JSON", id="truncated JSON"),
    pytest.param(lambda tmp: FIXTURES / "broken" / "empty.csv", "empty", id="an empty file"),
    pytest.param(lambda tmp: FIXTURES / "broken" / "wrong_columns.csv", "none of the expected columns", id="a CSV of something else"),
    pytest.param(
        lambda tmp: _write_bytes(tmp, "image.json", b"\x89PNG\r\n\x1a\n\x00\x00\x00binary"),
        "not a JSON, CSV or Parquet file",
        id="a binary file",
    ),
    pytest.param(
        lambda tmp: _write_bytes(tmp, "plays.csv", b"user_id,played_at\nalice,2024-01-01\n"),
        "missing column(s) ms_played, track_id",
        id="a CSV missing required columns",
    ),
    pytest.param(
        lambda tmp: FIXTURES / "spotify_account" / "alice" / "Userdata.json",
        "not listening history",
        id="a JSON file that is not listening history",
    ),
    pytest.param(
        lambda tmp: _write_bytes(tmp, "Userdata.json", b'{"username": "alice", "country": "DE"}'),
        "JSON, but not listening history",
        id="a JSON object on one line that is not plays",
    ),
    pytest.param(
        lambda tmp: _write_bytes(
            tmp,
            "plays.jsonl",
            b'{"user_id": "a", "played_at": "2024-01-01T00:00:00Z", "ms_played": 1, "track_id": "t"}\n{"user_id": "a", "pla\n',
        ),
        "cannot be read",
        id="canonical JSON Lines with a damaged line",
    ),
    pytest.param(
        lambda tmp: _write_bytes(
            tmp, "plays.csv.gz", gzip.compress((FIXTURES / "canonical" / "events.csv").read_bytes() * 200)[:-600]
        ),
        "cannot be read",
        id="a truncated gzip file",
    ),
    pytest.param(lambda tmp: tmp / "missing-folder", "no such file or folder", id="a path that does not exist"),
]


@pytest.mark.parametrize("make, expected", FILE_ERRORS)
def test_a_bad_file_raises_one_clear_error_and_writes_nothing(con, tmp_path, make, expected):
    load_files(con, FIXTURES / "canonical", USERS)
    before = _counts(con)
    bad = make(tmp_path)
    with pytest.raises(LoadError) as caught:
        load_files(con, bad, USERS)
    assert isinstance(caught.value, WarehouseError)
    assert expected in str(caught.value)
    assert Path(bad).name in str(caught.value)
    assert _counts(con) == before


def test_a_bad_file_inside_a_folder_fails_the_whole_load(con, tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(FIXTURES / "spotify_account" / "alice", folder)
    shutil.copy(FIXTURES / "broken" / "StreamingHistory_music_0.json", folder / "StreamingHistory_music_9.json")
    before = _counts(con)
    with pytest.raises(LoadError, match="StreamingHistory_music_9.json"):
        load_files(con, folder)
    assert _counts(con) == before  # no table created, nothing half-loaded
    assert con.execute("select count(*) from duckdb_tables() where temporary").fetchone()[0] == 0


def test_linked_export_folders_are_read_once_each(con, tmp_path):
    people = tmp_path / "people"
    people.mkdir()
    (people / "alice").symlink_to(FIXTURES / "people" / "alice", target_is_directory=True)
    (people / "alice_again").symlink_to(FIXTURES / "people" / "alice", target_is_directory=True)
    (people / "loop").symlink_to(people, target_is_directory=True)
    report = load_files(con, people)
    assert report.files_read == ["alice/StreamingHistory_music_0.json"]
    assert con.execute("select distinct user_id from raw.listening_events").fetchall() == [("alice",)]


def test_a_folder_of_exports_is_parsed_one_file_at_a_time(tmp_path):
    # Hundreds of people's exports are gigabytes of JSON, several times that as parsed records.
    folder = tmp_path / "people"
    shutil.copytree(FIXTURES / "people" / "alice", folder / "alice")
    (folder / "zed").mkdir()
    shutil.copy(FIXTURES / "broken" / "StreamingHistory_music_0.json", folder / "zed" / "StreamingHistory_music_0.json")
    files = sources.discover(folder, tmp_path / "unzipped", user_id=None, salt=None)
    alice = next(files)
    assert alice.person == "alice" and alice.records
    with pytest.raises(LoadError, match="zed"):
        next(files)


@pytest.mark.parametrize(
    "options, expected",
    [
        pytest.param(LoadOptions(timezone="Mars/Olympus"), "timezone option 'Mars/Olympus'", id="an unknown zone option"),
        pytest.param(LoadOptions(user_id="x"), "several people", id="a user id option for many people"),
    ],
)
def test_bad_options_raise_a_load_error(con, options, expected):
    with pytest.raises(LoadError, match=expected):
        load_files(con, FIXTURES / "people", options=options)


def test_a_hundred_thousand_row_extended_export_loads_whole(con, tmp_path):
    template = json.loads((FIXTURES / "spotify_extended" / "Streaming_History_Audio_2024_0.json").read_text())[0]
    rows = []
    start = datetime(2022, 1, 1)
    for i in range(100_000):
        row = dict(template)
        row["ts"] = (start + timedelta(seconds=181 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        row["master_metadata_track_name"] = f"Track {i % 5000}"
        rows.append(row)
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "Streaming_History_Audio_2022-2023_0.json").write_text(json.dumps(rows))
    report = load_files(con, folder)
    assert report.rows_loaded == 100_000
    assert con.execute("select count(*) from raw.listening_events").fetchone()[0] == 100_000


def test_a_users_file_with_a_conflicting_zone_keeps_the_first(con, tmp_path):
    users = _write_bytes(tmp_path, "people.csv", b"user_id,timezone\nalice,Europe/Berlin\nalice,Asia/Tokyo\nalice,Europe/Berlin\n")
    report = load_files(con, FIXTURES / "spotify_account" / "alice", users)
    assert con.execute("select timezone from raw.users where user_id = 'alice'").fetchone() == ("Europe/Berlin",)
    assert report.user_rows_quarantined == 1
    assert report.assumed_timezones == {}
    assert _quarantine(con, "conflicting time zone for user (kept 'Europe/Berlin')")[0][:2] == ("people.csv", 2)


def test_a_zone_spelt_in_another_case_is_the_zone(con, tmp_path):
    users = _write_bytes(
        tmp_path, "people.csv", b"user_id,timezone\nalice,europe/berlin\nalice,Europe/Berlin\nbob,utc\ncai,Mars/Olympus\n"
    )
    plays = _write_bytes(
        tmp_path,
        "plays.csv",
        b"user_id,played_at,ms_played,track_id\n"
        b"alice,2024-06-01T10:00:00Z,1000,t1\nbob,2024-06-01T10:00:00Z,1000,t1\n"
        b"cai,2024-06-01T10:00:00Z,1000,t1\ndee,2024-06-01T10:00:00Z,1000,t1\n",
    )
    report = load_files(con, plays, users, LoadOptions(timezone="ASIA/TOKYO"))
    assert dict(con.execute("select user_id, timezone from raw.users").fetchall()) == {
        "alice": "Europe/Berlin",
        "bob": "UTC",
        "dee": "Asia/Tokyo",
    }
    assert report.user_rows_quarantined == 1
    assert _quarantine(con, "unknown time zone 'Mars/Olympus'")


@pytest.mark.parametrize("spelling", [ZONE_FROM_COUNTRY, " From-Country "], ids=["as documented", "in any case"])
def test_zones_from_country_take_each_users_main_country_and_keep_users_file_zones(con, tmp_path, spelling):
    plays = _write_bytes(
        tmp_path,
        "plays.csv",
        b"user_id,played_at,ms_played,track_id,country\n"
        # ana: mostly the US (any case), once Germany; ben: as many plays from Brazil as from
        # Argentina (the tie goes to AR, first alphabetically); cai: no country; dee: in the users file.
        b"ana,2024-06-01T10:00:00Z,1000,t1,us\nana,2024-06-01T11:00:00Z,1000,t2,US\n"
        b"ana,2024-06-01T12:00:00Z,1000,t3,DE\n"
        b"ben,2024-06-01T10:00:00Z,1000,t1,BR\nben,2024-06-01T11:00:00Z,1000,t2,AR\n"
        b"cai,2024-06-01T10:00:00Z,1000,t1,\n"
        b"dee,2024-06-01T10:00:00Z,1000,t1,US\n",
    )
    users = _write_bytes(tmp_path, "users.csv", b"user_id,timezone\ndee,Asia/Tokyo\n")
    report = load_files(con, plays, users, LoadOptions(timezone=spelling))
    expected = {"ana": "America/New_York", "ben": "America/Argentina/Buenos_Aires", "cai": "UTC"}
    assert report.assumed_timezones == expected
    assert dict(con.execute("select user_id, timezone from raw.users").fetchall()) == expected | {"dee": "Asia/Tokyo"}
    assert any("main zone of the country" in line for line in report.summary_lines())


def test_a_fixed_assumed_zone_names_the_from_country_option(con):
    report = load_files(con, FIXTURES / "spotify_extended")
    assert report.assumed_timezones == {"spotify_extended": "UTC"}
    assert any(ZONE_FROM_COUNTRY in line for line in report.summary_lines())


def test_the_user_id_option_fills_a_csv_without_a_user_column(con, tmp_path):
    plays = _write_bytes(tmp_path, "mine.csv", b"played_at;ms_played;track_id\n2024-06-01T10:00:00Z;1000;t1\n")
    report = load_files(con, plays, options=LoadOptions(user_id="me", timezone="Asia/Tokyo"))
    assert report.rows_loaded == 1
    assert con.execute("select user_id, timezone from raw.users").fetchall() == [("me", "Asia/Tokyo")]


def test_each_file_read_is_reported_as_it_is_read(con):
    counts: list[int] = []
    report = load_files(con, FIXTURES / "people", None, LoadOptions(), on_file_read=counts.append)
    assert counts == list(range(1, len(report.files_read) + 1))
    assert len(counts) >= 2


def _write_csv(path: Path, header: str, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")


def _write_json_lines(path: Path, header: str, rows: list[str]) -> None:
    """The same rows as gzip-compressed JSON Lines, each cell a string."""
    path = path.with_suffix(".jsonl.gz")
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = header.split(",")
    lines = [json.dumps(dict(zip(keys, row.split(",")))) for row in rows]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))


def _write_parquet(path: Path, header: str, rows: list[str]) -> None:
    """The same rows as Parquet, each cell a string."""
    path = path.with_suffix(".parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    cells = [row.split(",") for row in rows]
    pq.write_table(pa.table({key: [row[i] for row in cells] for i, key in enumerate(header.split(","))}), path)


@pytest.mark.parametrize("files_per_scan", [500, 1], ids=["one scan", "a scan per file"])
@pytest.mark.parametrize(
    "write, suffix",
    [(_write_csv, ".csv"), (_write_json_lines, ".jsonl.gz"), (_write_parquet, ".parquet")],
    ids=["CSV", "JSON Lines", "Parquet"],
)
def test_files_read_in_one_scan_keep_each_rows_place_in_its_own_file(
    con, tmp_path, monkeypatch, files_per_scan, write, suffix
):
    monkeypatch.setattr(staging, "FILES_PER_SCAN", files_per_scan)
    header = "user_id,played_at,ms_played,track_id"
    play = "alice,2024-04-02T10:0{}:00Z,120000,trk_{}"
    folder = tmp_path / "events"
    write(folder / "a.csv", header, [play.format(i, f"a{i}") for i in range(4)])
    write(folder / "b.csv", header, [play.format(5, "b0"), "alice,2024-04-02T10:06:00Z,abc,trk_b1", play.format(7, "b2")])
    write(folder / "c.csv", "track_id,user_id,played_at,ms_played,platform", ["trk_c0,alice,2024-04-02T11:00:00Z,oops,web"])
    report = load_files(con, folder, USERS)
    assert [(source, number) for source, number, _ in _quarantine(con, "unparsable ms_played")] == [
        ("b" + suffix, 2),
        ("c" + suffix, 1),
    ]
    assert report.rows_loaded == 6 and report.files_read == ["a" + suffix, "b" + suffix, "c" + suffix]
    original = json.loads(_quarantine(con, "unparsable ms_played")[0][2])
    assert original == {"user_id": "alice", "played_at": "2024-04-02T10:06:00Z", "ms_played": "abc", "track_id": "trk_b1"}


def test_parquet_files_whose_columns_differ_in_type_are_each_read_as_typed(con, tmp_path):
    folder = tmp_path / "events"
    folder.mkdir()
    start = datetime(2024, 4, 2, 10, 0, tzinfo=timezone.utc)
    epoch_ms = pa.array([int(start.timestamp() * 1000)], pa.int64())
    for name, played_at in [("a", epoch_ms), ("b", pa.array([start.replace(hour=11)], pa.timestamp("ms", tz="UTC"))), ("c", epoch_ms)]:
        table = pa.table({"user_id": ["alice"], "played_at": played_at, "ms_played": [120000], "track_id": [f"trk_{name}"]})
        pq.write_table(table, folder / f"{name}.parquet")
    report = load_files(con, folder, USERS)
    assert report.rows_loaded == 3 and report.rows_quarantined == 0
    starts = dict(con.execute("select track_id, played_at from raw.listening_events").fetchall())
    assert starts == {"trk_a": datetime(2024, 4, 2, 10, 0), "trk_b": datetime(2024, 4, 2, 11, 0), "trk_c": datetime(2024, 4, 2, 10, 0)}


def test_a_csv_file_that_cannot_be_read_is_named_though_read_in_a_scan_with_others(con, tmp_path):
    header = "user_id,played_at,ms_played,track_id"
    folder = tmp_path / "events"
    _write_csv(folder / "a.csv", header, ["alice,2024-04-02T10:00:00Z,120000,trk_a"])
    _write_csv(folder / "b.csv", header, ["alice,2024-04-02T10:05:00Z,120000,trk_b,one,two,three"])
    with pytest.raises(LoadError, match="b.csv") as error:
        load_files(con, folder, USERS)
    assert "a.csv" not in str(error.value)
    assert _counts(con)["raw.listening_events"] in (-1, 0), "nothing is loaded"


def test_a_damaged_json_lines_file_is_named_though_read_in_a_scan_with_others(con, tmp_path):
    header = "user_id,played_at,ms_played,track_id"
    folder = tmp_path / "events"
    _write_json_lines(folder / "a", header, ["alice,2024-04-02T10:00:00Z,120000,trk_a"])
    _write_json_lines(folder / "b", header, ["alice,2024-04-02T10:05:00Z,120000,trk_b"])
    damaged = folder / "b.jsonl.gz"
    damaged.write_bytes(gzip.compress(gzip.decompress(damaged.read_bytes()) + b'{"user_id": "alice", "pla\n'))
    with pytest.raises(LoadError, match="b.jsonl.gz") as error:
        load_files(con, folder, USERS)
    assert "a.jsonl.gz" not in str(error.value)
    assert _counts(con)["raw.listening_events"] in (-1, 0), "nothing is loaded"
