from __future__ import annotations

import duckdb
import pytest

from warehouse.checks import invalid_verdicts


@pytest.mark.parametrize(
    "rule_flag, ml_flag, verdict, invalid",
    [
        pytest.param(True, True, "both", 0, id="both flags make both"),
        pytest.param(True, False, "rule_only", 0, id="the rules alone make rule_only"),
        pytest.param(False, True, "ml_only", 0, id="the forest alone may make ml_only"),
        pytest.param(False, True, "normal", 0, id="the forest alone may leave a day the rules judged normal"),
        pytest.param(False, False, "normal", 0, id="no flag is normal"),
        pytest.param(True, False, "normal", 1, id="a rule flag is never normal"),
        pytest.param(True, True, "ml_only", 1, id="both flags are never one detector's"),
        pytest.param(False, False, "ml_only", 1, id="no flag is never an anomaly"),
        pytest.param(False, False, "odd", 1, id="an unknown kind"),
    ],
)
def test_a_verdict_must_agree_with_the_detectors_flags(rule_flag, ml_flag, verdict, invalid):
    con = duckdb.connect()
    con.execute("create table verdicts (rule_flag boolean, ml_flag boolean, verdict varchar, is_anomaly boolean)")
    con.execute("insert into verdicts values (?, ?, ?, ?)", [rule_flag, ml_flag, verdict, verdict != "normal"])
    assert invalid_verdicts(con, "verdicts") == invalid


def test_is_anomaly_must_follow_the_verdict():
    con = duckdb.connect()
    con.execute("create table verdicts as select true as rule_flag, false as ml_flag, 'rule_only' as verdict, false as is_anomaly")
    assert invalid_verdicts(con, "verdicts") == 1
