"""Tests of the synthetic listening-behaviour simulator (small populations, fast)."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo, available_timezones

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from warehouse.contract import ANOMALY_LABEL_SCHEMA, BENIGN_LABEL_SCHEMA, EVENT_SCHEMA
from warehouse.simulator import ANOMALY_TYPES, SimulationConfig, simulate_users, simulate_window
from warehouse.simulator import simulate as sim_module
from warehouse.simulator.scenarios import build_plan

CFG = SimulationConfig(n_users=300, n_days=35, anomaly_rate=0.03, seed=11)
# March-April: US, EU and Australian clocks change inside this period.
DST_CFG = SimulationConfig(n_users=250, start_date=date(2024, 3, 1), n_days=42, seed=5)


def _sorted(table: pa.Table) -> pd.DataFrame:
    df = table.to_pandas()
    return df.sort_values(list(df.columns)).reset_index(drop=True)


def _with_local_time(events: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    ev = events.merge(users, on="user_id")
    parts = []
    for tz, g in ev.groupby("timezone"):
        g = g.copy()
        g["local"] = g["played_at"].dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)
        parts.append(g)
    ev = pd.concat(parts, ignore_index=True)
    ev["listen_date"] = ev["local"].dt.date
    ev["hour"] = ev["local"].dt.hour
    ev["ended_at"] = ev["played_at"] + pd.to_timedelta(ev["ms_played"], unit="ms")
    return ev


class World:
    """The small population's whole period, with local times (events one day past the end so
    that the last local days are complete)."""

    def __init__(self, config: SimulationConfig):
        self.config = config
        window = simulate_window(config, config.start_date, config.end_date + timedelta(days=1))
        self.users = simulate_users(config).to_pandas()
        self.events = _with_local_time(window.events.to_pandas(), self.users)
        labels = window.anomaly_labels.to_pandas()
        labels["listen_date"] = pd.to_datetime(labels["listen_date"]).dt.date
        self.labels = labels
        benign = window.benign_labels.to_pandas()
        benign["listen_date"] = pd.to_datetime(benign["listen_date"]).dt.date
        self.benign = benign
        keys = set(zip(labels.user_id, labels.listen_date))
        self.events["is_anomalous_day"] = [k in keys for k in zip(self.events.user_id, self.events.listen_date)]
        self.by_user = dict(tuple(self.events.groupby("user_id")))

    def day(self, user: str, day: date) -> pd.DataFrame:
        ev = self.by_user.get(user, self.events.iloc[:0])
        return ev[ev.listen_date == day].sort_values("played_at")

    def normal_days(self, user: str, day: date) -> pd.DataFrame:
        """The user's other, non-anomalous days inside the period."""
        ev = self.by_user.get(user, self.events.iloc[:0])
        inside = (ev.listen_date >= self.config.start_date) & (ev.listen_date < self.config.end_date)
        return ev[inside & (ev.listen_date != day) & ~ev.is_anomalous_day]

    def injected(self, anomaly_type: str) -> list[tuple[str, date]]:
        lab = self.labels[self.labels.anomaly_type == anomaly_type]
        return list(zip(lab.user_id, lab.listen_date))


@pytest.fixture(scope="module")
def world() -> World:
    return World(CFG)


@pytest.fixture(scope="module")
def dst_world() -> World:
    return World(DST_CFG)


# -- determinism and windows ---------------------------------------------------------------


def _fresh(config, start, end):
    sim_module._cached_day.cache_clear()
    build_plan.cache_clear()
    return simulate_window(config, start, end)


def test_the_same_config_gives_identical_rows():
    config = SimulationConfig(n_users=120, n_days=20, seed=3)
    a = _fresh(config, date(2024, 1, 15), date(2024, 1, 18))
    b = _fresh(config, date(2024, 1, 15), date(2024, 1, 18))
    assert a.events.num_rows > 0
    assert a.events.equals(b.events)
    assert a.anomaly_labels.equals(b.anomaly_labels)
    assert a.benign_labels.equals(b.benign_labels)


def test_different_seeds_give_different_data():
    a = _fresh(SimulationConfig(n_users=120, n_days=20, seed=3), date(2024, 1, 15), date(2024, 1, 17))
    b = _fresh(SimulationConfig(n_users=120, n_days=20, seed=4), date(2024, 1, 15), date(2024, 1, 17))
    assert not _sorted(a.events).equals(_sorted(b.events))
    assert simulate_users(SimulationConfig(n_users=120, seed=3)) != simulate_users(SimulationConfig(n_users=120, seed=4))


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(date(2024, 1, 16), id="a window split after one day gives the same rows"),
        pytest.param(date(2024, 1, 19), id="a window split in the middle gives the same rows"),
    ],
)
def test_window_split_gives_the_same_rows_as_one_window(cut):
    config = SimulationConfig(n_users=150, n_days=30, seed=9, anomaly_rate=0.03)
    d0, d2 = date(2024, 1, 15), date(2024, 1, 22)
    whole = _fresh(config, d0, d2)
    first = _fresh(config, d0, cut)
    second = _fresh(config, cut, d2)
    assert whole.events.num_rows == first.events.num_rows + second.events.num_rows
    assert _sorted(whole.events).equals(_sorted(pa.concat_tables([first.events, second.events])))
    for name in ("anomaly_labels", "benign_labels"):
        joined = pa.concat_tables([getattr(first, name), getattr(second, name)])
        assert _sorted(getattr(whole, name)).equals(_sorted(joined))


def test_the_plan_does_not_depend_on_the_window(world):
    """Labels of a sub-window are exactly the whole period's labels restricted to it."""
    start, end = CFG.start_date + timedelta(days=20), CFG.start_date + timedelta(days=23)
    part = simulate_window(CFG, start, end).anomaly_labels.to_pandas()
    part["listen_date"] = pd.to_datetime(part["listen_date"]).dt.date
    expected = world.labels[(world.labels.listen_date >= start) & (world.labels.listen_date < end)]
    assert len(part) > 0
    assert _sorted(pa.Table.from_pandas(part, preserve_index=False)).equals(
        _sorted(pa.Table.from_pandas(expected, preserve_index=False))
    )


# -- contract ------------------------------------------------------------------------------


def test_events_conform_to_the_raw_event_contract():
    start, end = date(2024, 1, 20), date(2024, 1, 22)
    window = simulate_window(CFG, start, end)
    events = window.events
    assert events.schema.equals(EVENT_SCHEMA, check_metadata=False)
    assert window.anomaly_labels.schema.equals(ANOMALY_LABEL_SCHEMA, check_metadata=False)
    assert window.benign_labels.schema.equals(BENIGN_LABEL_SCHEMA, check_metadata=False)
    df = events.to_pandas()
    assert len(df) > 0
    assert (df.ms_played >= 0).all()
    assert df.played_at.min() >= pd.Timestamp(start)
    assert df.played_at.max() < pd.Timestamp(end)
    for column in ("user_id", "track_id", "artist_id", "track_duration_ms", "skipped", "platform", "country"):
        assert df[column].notna().all(), column
    assert (df.ms_played <= df.track_duration_ms).all()
    full = df[~df.skipped]
    assert (full.ms_played >= full.track_duration_ms - 1000).all()  # a full play lasts the track
    assert df.user_id.str.fullmatch(r"u\d{5}").all() and df.track_id.str.fullmatch(r"t\d{6}").all()
    labels = window.anomaly_labels.to_pandas()
    assert set(labels.severity) <= {"obvious", "subtle"}
    assert pd.to_datetime(labels.listen_date).between(pd.Timestamp(start), pd.Timestamp(end), inclusive="left").all()


def test_users_have_valid_iana_zones_including_dst_zones():
    users = simulate_users(CFG).to_pandas()
    assert len(users) == CFG.n_users and users.user_id.is_unique
    zones = set(users.timezone)
    assert zones <= available_timezones() | {"UTC"}
    for tz in zones:
        ZoneInfo(tz)
    assert {"America/New_York", "Europe/Berlin", "Australia/Sydney", "Asia/Tokyo", "UTC"} <= zones


def test_volume_is_about_thirty_plays_per_user_day_and_heavy_tailed(world):
    ev = world.events
    inside = ev[(ev.listen_date >= CFG.start_date) & (ev.listen_date < CFG.end_date) & ~ev.is_anomalous_day]
    per_user = inside.groupby("user_id").size() / CFG.n_days
    assert 20 <= per_user.sum() / CFG.n_users <= 45
    assert per_user.quantile(0.95) > 4 * per_user.median()


def test_plays_of_one_user_never_overlap_outside_overlay_anomalies(world):
    ev = world.events.sort_values(["user_id", "played_at"])
    overlay_days = set(
        zip(*world.labels[world.labels.anomaly_type.isin(["account_sharing", "account_takeover", "scheduled_bot"])][["user_id", "listen_date"]].T.values)
    )
    travellers = set(world.benign[world.benign.scenario == "travel"].user_id)
    same_user = ev.user_id.values[1:] == ev.user_id.values[:-1]
    overlap = same_user & (ev.played_at.values[1:] < ev.ended_at.values[:-1])
    idx = np.flatnonzero(overlap)
    culprits = {(ev.user_id.values[i], ev.listen_date.values[i + 1]) for i in idx} | {
        (ev.user_id.values[i], ev.listen_date.values[i]) for i in idx
    }
    unexplained = [c for c in culprits if c not in overlay_days and c[0] not in travellers]
    assert unexplained == []


# -- anomaly plan --------------------------------------------------------------------------


def test_anomalous_user_days_are_one_to_three_percent(world):
    plan = build_plan(CFG)
    existing = int(sum(np.clip(CFG.n_days - plan.join_day, 0, None)))
    share = len(world.labels) / existing
    assert 0.01 <= share <= 0.03 + 1e-9
    default = SimulationConfig(n_users=400, n_days=40)
    labels = simulate_window(default, default.start_date, default.end_date).anomaly_labels
    plan = build_plan(default)
    assert 0.01 <= labels.num_rows / int(np.clip(default.n_days - plan.join_day, 0, None).sum()) <= 0.03


def test_every_anomaly_type_is_injected_in_roughly_equal_numbers(world):
    counts = world.labels.anomaly_type.value_counts()
    assert set(counts.index) == set(ANOMALY_TYPES)
    assert counts.max() <= 1.5 * counts.min()
    assert not world.labels.duplicated(["user_id", "listen_date"]).any()


def test_anomalies_only_after_fourteen_days_of_history(world):
    """History counts from the start of the period, or from the join day of a new account."""
    joined = world.benign[world.benign.scenario == "new_account"].groupby("user_id").listen_date.min()
    first_event = world.events.groupby("user_id").listen_date.min()
    for user, day in zip(world.labels.user_id, world.labels.listen_date):
        assert first_event[user] < day
        since = max(CFG.start_date, joined.get(user, CFG.start_date))
        assert (day - since).days >= CFG.min_history_days


def test_labels_are_never_part_of_the_events(world):
    assert not {"anomaly_type", "severity", "scenario"} & set(simulate_window(CFG, date(2024, 1, 20), date(2024, 1, 21)).events.column_names)


# -- each anomaly generator has its described property ---------------------------------------


def _cases(world, anomaly_type):
    cases = world.injected(anomaly_type)
    assert len(cases) >= 5, f"too few {anomaly_type} days to test"
    return cases


def check_marathon(world, user, day, plays):
    covered = plays.ms_played.sum() / 3_600_000
    span = (plays.ended_at.max() - plays.played_at.min()) / pd.Timedelta(hours=1)
    gaps = (plays.played_at.values[1:] - plays.ended_at.values[:-1]) / np.timedelta64(1, "s")
    assert covered >= 19.5 and span >= 20 and gaps.max() < 5 and not plays.skipped.any()


def check_stream_farm(world, user, day, plays):
    assert len(plays) >= 1000
    assert plays.ms_played.between(31_000, 45_000).all()
    assert plays.platform.nunique() == 1 and not plays.skipped.any()
    assert plays.artist_id.nunique() <= 3 and plays.track_id.nunique() <= 300
    assert (plays.ended_at.max() - plays.played_at.min()) >= pd.Timedelta(hours=17)


def check_thin_farm(world, user, day, plays):
    assert 500 <= len(plays) <= 700
    assert plays.track_id.value_counts().max() <= 2
    assert plays.track_id.nunique() >= 0.7 * len(plays)
    assert not set(plays.artist_id) & set(world.normal_days(user, day).artist_id)
    assert plays.hour.nunique() >= 20


def check_scheduled_bot(world, user, day, plays):
    bot = plays[plays.track_duration_ms.between(51_000, 73_000) & (plays.ms_played == plays.track_duration_ms)]
    bot = bot[bot.artist_id.isin(bot.artist_id.value_counts().index[:3])].sort_values("played_at")
    assert 90 <= len(bot) <= 110
    assert bot.ms_played.nunique() <= 5
    starts = np.diff(bot.played_at.values) / np.timedelta64(1, "ms")
    assert starts.max() - starts.min() <= 1  # machine-regular
    first = bot.local.min()
    assert first.minute == 0 and first.second == 0
    # The block is its slots: the last play fills only part of its own.
    block = (bot.played_at.max() - bot.played_at.min()) / pd.Timedelta(hours=1) + np.median(starts) / 3_600_000
    assert 4 <= block <= 6.1


def check_night_short(world, user, day, plays):
    night_short = (plays.ms_played < 40_000) & plays.hour.between(1, 4)
    assert night_short.mean() > 0.5
    normal = world.normal_days(user, day).groupby("listen_date").ms_played.sum() / 60_000
    minutes = plays.ms_played.sum() / 60_000
    assert normal.quantile(0.1) * 0.5 <= minutes <= normal.quantile(0.9) * 1.5


def check_account_takeover(world, user, day, plays):
    normal = world.normal_days(user, day)
    intruder = plays[~plays.country.isin(set(normal.country))]
    assert len(intruder) >= 40
    assert not intruder.platform.isin(set(normal.platform)).any()
    assert not intruder.artist_id.isin(set(normal.artist_id)).any()
    assert (intruder.ms_played < 60_000).all()
    # The owner's hours at home: a trip's days fall on other hours of the home clock.
    travel = world.benign[(world.benign.user_id == user) & (world.benign.scenario == "travel")].listen_date
    owner_hours = normal[~normal.listen_date.isin(set(travel))].hour.value_counts(normalize=True)
    assert owner_hours.reindex(intruder.hour.unique(), fill_value=0).sum() < 0.1
    assert (plays.country.isin(set(normal.country))).sum() >= 1  # the owner's own sessions continue


def check_account_sharing(world, user, day, plays):
    overlap = plays.played_at.values[1:] < plays.ended_at.values[:-1]
    assert overlap.sum() >= 1
    normal = world.normal_days(user, day)
    usual_artists = normal.groupby("listen_date").artist_id.nunique().median()
    assert plays.artist_id.nunique() >= 1.3 * usual_artists
    assert (~plays.artist_id.isin(set(normal.artist_id))).mean() >= 0.1


def check_geo_hop(world, user, day, plays):
    normal = world.normal_days(user, day)
    unseen = set(plays.country) - set(normal.country)
    assert 2 <= len(unseen) <= 4
    assert plays.artist_id.isin(set(normal.artist_id)).mean() >= 0.5  # content otherwise normal


def check_skip_storm(world, user, day, plays):
    assert plays.skipped.mean() >= 0.85
    assert plays.ms_played.median() < 10_000


def check_loop(world, user, day, plays):
    top = plays.track_id.value_counts()
    assert top.iloc[0] / len(plays) >= 0.9
    assert plays[plays.track_id == top.index[0]].ms_played.sum() >= 2.9 * 3_600_000


def check_sudden_drop(world, user, day, plays):
    normal = world.normal_days(user, day).groupby("listen_date").size()
    assert len(plays) <= 5
    assert normal.median() >= 10 * max(len(plays), 1) or normal.median() >= 15


CHECKS = {
    "marathon": pytest.param(check_marathon, id="a marathon day is covered by 20+ hours of near-continuous full plays"),
    "stream_farm": pytest.param(check_stream_farm, id="a stream farm day has 1000+ plays of 31-45 s from a few artists on one platform"),
    "thin_farm": pytest.param(check_thin_farm, id="a thin farm day spreads 500-700 plays of never-heard tracks around the clock"),
    "scheduled_bot": pytest.param(check_scheduled_bot, id="a scheduled bot plays a 4-6 h block on the hour with machine-regular gaps"),
    "night_short": pytest.param(check_night_short, id="a night_short day has mostly sub-40 s plays at 01-05 with usual minutes"),
    "account_takeover": pytest.param(check_account_takeover, id="a takeover adds unseen artists from a new country and platform at quiet hours"),
    "account_sharing": pytest.param(check_account_sharing, id="account sharing overlaps plays and doubles the taste"),
    "geo_hop": pytest.param(check_geo_hop, id="a geo hop day shows two to four unseen countries with normal content"),
    "skip_storm": pytest.param(check_skip_storm, id="a skip storm skips almost every play within seconds"),
    "loop": pytest.param(check_loop, id="a loop day repeats one track for hours"),
    "sudden_drop": pytest.param(check_sudden_drop, id="a sudden drop leaves a heavy listener with a handful of plays"),
}


def test_every_anomaly_type_has_a_property_check():
    assert set(CHECKS) == set(ANOMALY_TYPES)


@pytest.mark.parametrize("anomaly_type,check", [pytest.param(k, v.values[0], id=v.id) for k, v in CHECKS.items()])
def test_injected_anomaly_day_has_the_described_property(world, anomaly_type, check):
    failures = []
    for user, day in _cases(world, anomaly_type):
        try:
            check(world, user, day, world.day(user, day))
        except AssertionError as exc:  # collect, to report every failing day
            failures.append((user, day, str(exc)[:200]))
    assert failures == []


def test_a_sudden_drop_lasts_days_in_a_row(world):
    """One near-silent day is anyone's quiet day: a drop keeps the account near silent for days."""
    lo, hi = world.config.sudden_drop_days_range
    runs = []
    for _, days in world.labels[world.labels.anomaly_type == "sudden_drop"].groupby("user_id").listen_date:
        ordinals = np.sort(np.array([day.toordinal() for day in days]))
        breaks = np.flatnonzero(np.diff(ordinals) > 1)
        runs += list(np.diff(np.r_[0, breaks + 1, len(ordinals)]))
    assert runs and max(runs) <= hi
    assert np.median(runs) >= lo


def test_stream_farm_accounts_share_a_track_pool(world):
    pools = [frozenset(world.day(u, d).track_id) for u, d in world.injected("stream_farm")]
    users = [u for u, _ in world.injected("stream_farm")]
    shared = {(a, b) for i, a in enumerate(users) for j, b in enumerate(users) if a != b and len(pools[i] & pools[j]) >= 10}
    assert shared, "no two farm accounts play from the same pool"


# -- benign look-alikes --------------------------------------------------------------------


def test_every_benign_scenario_is_labelled(dst_world):
    assert set(dst_world.benign.scenario) == {
        "travel", "taste_drift", "holiday_spike", "sleep_music", "superfan_release", "dst_change", "new_account", "steady_heavy",
    }


def test_dst_days_neither_create_nor_lose_plays(dst_world):
    """Every play generated for a local DST day starts on that local calendar day."""
    plan = build_plan(DST_CFG)
    dst = dst_world.benign[dst_world.benign.scenario == "dst_change"]
    assert set(dst_world.users.set_index("user_id").loc[dst.user_id, "timezone"]) >= {"America/New_York", "Europe/Berlin", "Australia/Sydney"}
    for day in sorted(set(dst.listen_date)):
        generated = sim_module.generate_day(DST_CFG, day.toordinal())
        users = set(dst[dst.listen_date == day].user_id)
        ids = plan.pop.user_ids.to_numpy(zero_copy_only=False)
        gen_counts = pd.Series(ids[generated.user]).value_counts()
        got = dst_world.events[(dst_world.events.listen_date == day) & dst_world.events.user_id.isin(users)].groupby("user_id").size()
        expected = gen_counts.reindex(sorted(users), fill_value=0)
        assert expected.sum() > 0
        assert got.reindex(expected.index, fill_value=0).equals(expected)


def test_new_users_have_no_events_before_joining(dst_world):
    joins = dst_world.benign[dst_world.benign.scenario == "new_account"].groupby("user_id").listen_date.min()
    joins = joins[joins > DST_CFG.start_date]
    assert len(joins) >= 5
    first = dst_world.events.groupby("user_id").listen_date.min()
    assert (first.reindex(joins.index) >= joins).all()


def test_holiday_spike_day_raises_population_volume(dst_world):
    day = dst_world.benign[dst_world.benign.scenario == "holiday_spike"].listen_date.iloc[0]
    ev = dst_world.events[(dst_world.events.listen_date >= DST_CFG.start_date) & (dst_world.events.listen_date < DST_CFG.end_date)]
    per_day = ev[~ev.is_anomalous_day].groupby("listen_date").ms_played.sum()
    assert per_day[day] > 1.4 * per_day.drop(day).median()


def test_travellers_play_from_the_destination(dst_world):
    trips = dst_world.benign[dst_world.benign.scenario == "travel"]
    assert len(trips) > 0
    home = dst_world.events.groupby("user_id").country.agg(lambda s: s.mode().iloc[0])
    for user, g in trips.groupby("user_id"):
        middle = sorted(g.listen_date)[1:-1]
        plays = dst_world.events[(dst_world.events.user_id == user) & dst_world.events.listen_date.isin(middle)]
        if len(plays):
            assert (plays.country != home[user]).mean() > 0.8


def test_sleep_music_users_play_long_tracks_every_night(dst_world):
    sleepers = set(dst_world.benign[dst_world.benign.scenario == "sleep_music"].user_id)
    assert sleepers
    for user in sleepers:
        ev = dst_world.by_user[user]
        night = ev[(ev.hour < 10) & (ev.track_duration_ms >= 8 * 60_000) & ~ev.is_anomalous_day]
        hours = night.groupby("listen_date").ms_played.sum() / 3_600_000
        assert hours.quantile(0.2) >= 5.5


def test_config_rejects_unknown_anomaly_types():
    with pytest.raises(ValueError):
        SimulationConfig(anomaly_types=("marathon", "teleport"))
