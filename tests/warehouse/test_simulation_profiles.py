"""Named simulation profiles: each is a valid configuration, unknown names are refused by name."""

from __future__ import annotations

import dataclasses

import pytest

from warehouse.simulator import SIMULATION_PROFILES, SimulationConfig, profile_config


def test_the_default_profile_is_the_documented_configuration():
    assert profile_config("default", seed=3) == dataclasses.replace(SimulationConfig(), seed=3)


@pytest.mark.parametrize("profile", [name for name in SIMULATION_PROFILES if name != "default"])
def test_every_other_profile_changes_the_fields_it_names_and_keeps_the_caller_fields(profile):
    config = profile_config(profile, n_users=40, seed=5)
    assert (config.n_users, config.seed) == (40, 5)
    for field, value in SIMULATION_PROFILES[profile].items():
        assert getattr(config, field) == value
        assert getattr(SimulationConfig(), field) != value, f"{field} repeats the default"


def test_an_unknown_profile_names_the_known_ones():
    with pytest.raises(ValueError, match="default, gentle"):
        profile_config("harsh")


def test_the_source_resource_simulates_with_its_profile():
    from orchestration.resources import ListeningSourceResource

    config = ListeningSourceResource(profile="gentle", n_users=30, seed=2).simulation_config()
    assert config.anomaly_rate == SIMULATION_PROFILES["gentle"]["anomaly_rate"]
    assert (config.n_users, config.seed) == (30, 2)
