"""Python asset checks on the detection tables (dbt's own tests arrive as dbt asset checks)."""


import dagster as dg

from orchestration.assets import user_day_verdicts
from orchestration.resources import WarehouseResource
from warehouse.checks import invalid_verdicts, unmatched_rows

USER_DAY_KEYS = ("user_id", "listen_date")


@dg.asset_check(asset=user_day_verdicts, description="Every rule-flag row has exactly one verdict row, and no verdict lacks one.")
def one_verdict_per_user_day(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        without_verdict = unmatched_rows(con, "analytics.user_day_rule_flags", "analytics.user_day_verdicts", USER_DAY_KEYS)
        without_flags = unmatched_rows(con, "analytics.user_day_verdicts", "analytics.user_day_rule_flags", USER_DAY_KEYS)
    return dg.AssetCheckResult(
        passed=without_verdict == 0 and without_flags == 0,
        metadata={"user_days_without_verdict": without_verdict, "verdicts_without_user_day": without_flags},
    )


@dg.asset_check(asset=user_day_verdicts, description="Each verdict is normal, rule_only, ml_only or both, consistent with the two detectors' flags.")
def verdicts_agree_with_detectors(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        invalid = invalid_verdicts(con)
    return dg.AssetCheckResult(passed=invalid == 0, metadata={"invalid_verdicts": invalid})
