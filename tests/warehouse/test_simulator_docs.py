"""The simulator's parameter documentation is generated from the code and kept up to date."""

from warehouse.simulator import docs
from warehouse.simulator.config import ANOMALY_TYPES, BENIGN_SCENARIOS, config_fields


def test_simulation_doc_parameter_table_is_up_to_date():
    current = docs.DOC_PATH.read_text()
    assert docs.render(current) == current, "run: python -m warehouse.simulator.docs"


def test_every_config_field_is_documented():
    undocumented = [f.name for f in config_fields() if len(f.metadata.get("doc", "")) < 10]
    assert undocumented == []


def test_every_anomaly_type_and_scenario_has_a_section_in_the_doc():
    text = docs.DOC_PATH.read_text()
    for name in ANOMALY_TYPES:
        assert f"### `{name}`" in text, name
    for name in BENIGN_SCENARIOS:
        assert f"`{name}`" in text, name
