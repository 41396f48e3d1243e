from __future__ import annotations

import numpy as np
import pytest

from ml.features import (
    AMOUNT_FAMILIES,
    BASELINED_METRICS,
    PREVIEW_METRICS,
    amount_only_departures,
    build_feature_matrix,
    engagement_departures,
    feature_names,
    previewing_departures,
)
from ml.signals import signal_families


def test_matrix_has_one_row_per_day_and_named_columns(flags):
    X, names = build_feature_matrix(flags)
    assert X.shape == (len(flags), len(names))
    assert names == feature_names()
    assert len(set(names)) == len(names)
    assert {f"{m}_z" for m in BASELINED_METRICS} <= set(names)


def test_cold_start_deviations_become_zero_and_matrix_is_finite(flags):
    X, names = build_feature_matrix(flags)
    cold = flags["short_play_share_z"].isna().to_numpy()
    assert cold.any()
    assert np.isfinite(X).all()
    assert (X[cold, names.index("short_play_share_z")] == 0).all()


def test_extreme_deviations_are_clipped(flags):
    frame = flags.copy()
    frame.loc[frame.index[5], "play_count_z"] = 1e6
    X, names = build_feature_matrix(frame)
    assert X[5, names.index("play_count_z")] == 8.0


def test_extra_columns_are_ignored(flags):
    X, _ = build_feature_matrix(flags.assign(something_new=1.0))
    assert np.array_equal(X, build_feature_matrix(flags)[0])


def test_novelty_of_a_brand_new_account_does_not_count(flags):
    frame = flags.copy()
    first, seasoned = frame.index[0], frame.index[15]
    frame.loc[[first, seasoned], ["new_artist_share", "new_platform_count", "new_country_count"]] = [1.0, 1, 1]
    X, names = build_feature_matrix(frame)
    breadth = names.index("context_novelty_breadth")
    assert X[0, breadth] == 0.0
    assert X[15, breadth] >= 2.0


def test_one_new_country_while_travelling_counts_less_than_a_takeover(flags):
    frame = flags.copy()
    travel, takeover = frame.index[14], frame.index[15]
    frame.loc[travel, "new_country_count"] = 1
    frame.loc[takeover, ["new_country_count", "new_platform_count", "new_artist_share_z"]] = [1, 1, 6.0]
    X, names = build_feature_matrix(frame)
    breadth = names.index("context_novelty_breadth")
    assert X[14, breadth] == 1.0
    assert X[15, breadth] == 3.0


def test_every_baselined_metric_is_a_rule_signal_with_a_family():
    assert set(BASELINED_METRICS) <= set(signal_families())


def test_strong_deviations_count_once_per_family(flags):
    frame = flags.copy()
    frame.loc[:, [f"{m}_z" for m in BASELINED_METRICS]] = 0.0
    families = signal_families()
    volume = [m for m in BASELINED_METRICS if families[m] == "volume"]
    assert len(volume) >= 2, "the volume family must hold several metrics for this test to mean anything"
    binge, two_kinds = frame.index[14], frame.index[15]
    frame.loc[binge, [f"{m}_z" for m in volume]] = 5.0
    frame.loc[two_kinds, [f"{volume[0]}_z", "skip_rate_z"]] = 5.0
    frame.loc[two_kinds, "play_count"] = 1_000  # shares of a day of many plays count in full
    X, names = build_feature_matrix(frame)
    strong = names.index("strong_deviation_families")
    assert X[14, strong] == 1.0
    assert X[15, strong] == 2.0
    assert X[0, strong] == 0.0


@pytest.mark.parametrize(
    "dropped",
    [
        pytest.param(["night_share"], id="one missing day feature is named"),
        pytest.param(["play_count_z", "baseline_days"], id="every missing column is named"),
    ],
)
def test_missing_columns_raise_a_value_error_naming_them(flags, dropped):
    with pytest.raises(ValueError) as error:
        build_feature_matrix(flags.drop(columns=dropped))
    for column in dropped:
        assert column in str(error.value)


def test_an_empty_frame_gives_an_empty_matrix(flags):
    X, names = build_feature_matrix(flags.iloc[:0])
    assert X.shape == (0, len(names))


def test_a_departure_in_amount_alone_is_told_apart_from_a_change_of_pattern(flags):
    frame = flags.copy()
    frame.loc[:, [f"{m}_z" for m in BASELINED_METRICS]] = 0.0
    frame.loc[:, "play_count"] = 1_000  # shares of a day of many plays count in full
    families = signal_families()
    amount = [m for m in BASELINED_METRICS if families[m] in AMOUNT_FAMILIES]
    pattern = [m for m in BASELINED_METRICS if families[m] not in AMOUNT_FAMILIES]
    long_day, long_skipped_day, skipped_day = frame.index[14], frame.index[15], frame.index[16]
    frame.loc[long_day, [f"{m}_z" for m in amount]] = 6.0
    frame.loc[long_skipped_day, [f"{amount[0]}_z", f"{pattern[0]}_z"]] = 6.0
    frame.loc[skipped_day, f"{pattern[0]}_z"] = 6.0
    X, names = build_feature_matrix(frame)
    amount_only = amount_only_departures(X, names)
    assert amount_only[14]
    assert not amount_only[15]
    assert not amount_only[16]
    assert not amount_only[0], "a day without strong deviations departs in nothing"


def test_skipping_through_new_artists_alone_is_told_apart_from_other_departures(flags):
    frame = flags.copy()
    frame.loc[:, [f"{m}_z" for m in BASELINED_METRICS]] = 0.0
    frame.loc[:, ["new_artist_share", "usual_new_artist_share"]] = 0.1
    frame.loc[:, "play_count"] = 1_000  # shares of a day of many plays count in full
    frame.loc[:, "usual_short_play_share"] = 0.2
    days = frame.index[14:24]
    (
        previewing, without_new_artists, at_night, machine_paced, often_new, few_new, often_skips, short_unskipped,
        short_up_by_a_quarter, short_up_less,
    ) = days
    for day in days:
        frame.loc[day, ["skip_rate_z", "short_play_share_z", "median_play_seconds_z"]] = [6.0, 6.0, -6.0]
        frame.loc[day, ["new_artist_share_z", "new_track_share_z", "new_artist_share"]] = [6.0, 6.0, 0.2]
    frame.loc[without_new_artists, ["new_artist_share_z", "new_artist_share"]] = [0.0, 0.1]
    frame.loc[at_night, "night_share_z"] = 6.0
    frame.loc[machine_paced, "inter_play_gap_cv_z"] = -6.0
    # A listener whose days often bring new artists: a wide spread of them, so the preview's are
    # no strong deviation; a quarter of the plays more is still the rules' smallest change.
    frame.loc[often_new, ["new_artist_share_z", "new_artist_share"]] = [2.0, 0.4]
    frame.loc[few_new, ["new_artist_share_z", "new_artist_share"]] = [2.0, 0.3]
    # A listener who often skips: a wide spread of skips, which the preview's do not pass; the skip
    # flag still says the short plays were skipped. Short plays nobody skipped are no preview.
    frame.loc[often_skips, ["skip_rate_z", "skip_rate", "short_play_share"]] = [2.0, 0.8, 0.8]
    frame.loc[short_unskipped, ["skip_rate_z", "skip_rate", "short_play_share"]] = [0.0, 0.1, 0.8]
    # Short plays count as the new artists do: strongly, or up by the rules' smallest change of a share.
    frame.loc[short_up_by_a_quarter, ["skip_rate_z", "short_play_share_z", "skip_rate", "short_play_share"]] = [2.0, 2.0, 0.55, 0.5]
    frame.loc[short_up_less, ["skip_rate_z", "short_play_share_z", "skip_rate", "short_play_share"]] = [2.0, 2.0, 0.55, 0.35]
    X, names = build_feature_matrix(frame)
    found = previewing_departures(frame, X, names)
    assert found[14]
    assert not found[15], "skips of familiar artists are a change of engagement, not a preview"
    assert not found[16], "a departure outside the preview's metrics is a second change"
    assert not found[17], "plays paced like a machine's are no listener previewing"
    assert found[18], "a quarter of the plays more from new artists is a preview however wide their spread"
    assert not found[19], "new artists neither strong nor the smallest change are no preview"
    assert found[20], "short plays the skip flag says were skipped are a preview, however wide the spread of skips"
    assert not found[21], "short plays nobody skipped are no preview"
    assert found[22], "skipped short plays up by a quarter of the plays are a preview however wide their spread"
    assert not found[23], "skipped short plays neither strong nor the smallest change are no preview"
    assert not found[0], "a day without strong deviations departs in nothing"


#: A listener's usual engagement, for the days of the test below.
USUAL_ENGAGEMENT = {
    "skip_rate": 0.1, "short_play_share": 0.05, "median_play_seconds": 190.0,
    "distinct_play_length_share": 0.95, "inter_play_gap_cv": 1.5,
}


@pytest.mark.parametrize(
    "day, departs",
    [
        pytest.param({"skip_rate": (6.0, 0.9), "short_play_share": (6.0, 0.85), "median_play_seconds": (-6.0, 20.0)}, True, id="every play skipped"),
        pytest.param({"median_play_seconds": (-4.0, 60.0)}, True, id="plays cut short"),
        pytest.param({"distinct_play_length_share": (-5.0, 0.3)}, True, id="the same few play lengths"),
        pytest.param({"inter_play_gap_cv": (-5.0, 0.1)}, False, id="a steadier pace is one long session's as well as a machine's"),
        pytest.param({"median_play_seconds": (6.0, 600.0)}, False, id="longer plays than usual are listened to"),
        pytest.param({"inter_play_gap_cv": (6.0, 4.0)}, False, id="irregular gaps are a listener's"),
        pytest.param({"skip_rate": (-4.0, 0.0)}, False, id="fewer skips than usual"),
        pytest.param({"skip_rate": (2.5, 0.4), "median_play_seconds": (-2.5, 90.0)}, False, id="moderate deviations are not strong"),
        pytest.param({"skip_rate": (6.0, 0.25)}, False, id="a strong deviation smaller than the rules' smallest change"),
        pytest.param({"median_play_seconds": (-5.0, 130.0)}, False, id="a shorter median of plays still listened to"),
        pytest.param({"minutes_played": (6.0, None), "night_share": (6.0, None), "new_artist_share": (6.0, None)}, False, id="volume, timing and content are the rules'"),
        pytest.param({"skip_rate": (6.0, 0.8), "median_play_seconds": (-6.0, 30.0), "new_artist_share": (6.0, None)}, False, id="previewing new music"),
        pytest.param(
            {"skip_rate": (6.0, 0.8), "median_play_seconds": (-6.0, 30.0), "new_artist_share": (6.0, None), "inter_play_gap_cv": (-6.0, 0.1)},
            True,
            id="skipping new artists at a machine's pace",
        ),
    ],
)
def test_a_change_in_how_the_plays_are_played_is_told_apart(flags, day, departs):
    frame = flags.copy()
    frame.loc[:, [f"{m}_z" for m in BASELINED_METRICS]] = 0.0
    frame.loc[:, "play_count"] = 1_000  # shares of a day of many plays count in full
    for metric, usual in USUAL_ENGAGEMENT.items():
        frame.loc[:, [metric, f"usual_{metric}"]] = usual
    row = frame.index[14]
    for metric, (z, value) in day.items():
        frame.loc[row, f"{metric}_z"] = z
        if value is not None:
            frame.loc[row, metric] = value
    found = engagement_departures(frame, *build_feature_matrix(frame))
    assert found[14] == departs
    assert not found[np.arange(len(frame)) != 14].any(), "days without strong deviations depart in nothing"


def test_a_change_in_how_the_plays_are_played_needs_plays_to_show_it(flags):
    frame = flags.copy()
    frame.loc[:, [f"{m}_z" for m in BASELINED_METRICS]] = 0.0
    frame.loc[:, ["median_play_seconds", "usual_median_play_seconds"]] = 190.0
    frame.loc[frame.index[14:16], ["median_play_seconds", "median_play_seconds_z"]] = [30.0, -4.0]
    frame.loc[frame.index[14], "play_count"] = 1_000
    frame.loc[frame.index[15], "play_count"] = 3
    found = engagement_departures(frame, *build_feature_matrix(frame))
    assert found[14]
    assert not found[15], "three short plays are weak evidence of a change"


def test_the_preview_metrics_are_baselined_metrics():
    assert PREVIEW_METRICS < set(BASELINED_METRICS)


def test_the_amount_families_are_families_of_the_rules():
    assert AMOUNT_FAMILIES < set(signal_families().values())
