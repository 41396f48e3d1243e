"""The rules' deviation signals and thresholds, read from the dbt project so that Python shares them.

``dbt_project/macros/signals.sql`` is the one place a signal's metric, family and thresholds are
defined, and ``dbt_project/dbt_project.yml``'s vars the one place their values are; the forest's
features and explanations and the pandas reference in ``benchmarks/`` read them from there
instead of keeping copies.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
SIGNALS_MACRO = DBT_PROJECT_DIR / "macros" / "signals.sql"

_SIGNAL_PATTERN = re.compile(r"\{'metric':.*?\}")
_FIELD_PATTERN = re.compile(r"'(\w+)':\s*(?:'([^']*)'|(true|false)|([0-9.]+))")


@cache
def deviation_signals() -> tuple[dict, ...]:
    """The signals of the ``deviation_signals`` macro, in order.

    Each is a dict with metric, family, direction, log_scale, scale_floor, min_change_var, the
    optional ceiling_var, min_count_var, below_var, record_floor_var and light_day_quantile (None
    when absent), per_play (a share of a property each play has on its own), and rule (False for a
    signal the rules do not count, only the forest).

    Raises
    ------
    RuntimeError
        When the macro file holds no signal (its format changed).
    """
    signals = []
    for match in _SIGNAL_PATTERN.finditer(SIGNALS_MACRO.read_text()):
        fields = {}
        for name, string, boolean, number in _FIELD_PATTERN.findall(match.group(0)):
            fields[name] = string if string or not (boolean or number) else (boolean == "true" if boolean else float(number))
        signals.append(
            {
                "metric": fields["metric"],
                "family": fields["family"],
                "direction": fields["direction"],
                "log_scale": bool(fields.get("log_scale", False)),
                "scale_floor": float(fields["scale_floor"]),
                "min_change_var": fields["min_change_var"],
                "ceiling_var": fields.get("ceiling_var"),
                "min_count_var": fields.get("min_count_var"),
                "below_var": fields.get("below_var"),
                "record_floor_var": fields.get("record_floor_var"),
                "light_day_quantile": fields.get("light_day_quantile"),
                "per_play": bool(fields.get("per_play", False)),
                "rule": fields.get("rule", True),
            }
        )
    if not signals:
        raise RuntimeError(f"no signals found in {SIGNALS_MACRO} (format changed?)")
    return tuple(signals)


def signal_families() -> dict[str, str]:
    """Map of each signal's metric to its family (volume, continuity, timing, ...)."""
    return {signal["metric"]: signal["family"] for signal in deviation_signals()}


@cache
def dbt_var_defaults() -> dict:
    """The vars of ``dbt_project.yml`` with their default values."""
    with open(DBT_PROJECT_DIR / "dbt_project.yml") as handle:
        return yaml.safe_load(handle)["vars"]
