"""Synthetic listening-behaviour simulator (see docs/simulation.md).

>>> from warehouse.simulator import SimulationConfig, simulate_users, simulate_window
"""

from warehouse.simulator.config import ANOMALY_TYPES, BENIGN_SCENARIOS, PERSONAS, SimulationConfig
from warehouse.simulator.profiles import SIMULATION_PROFILES, profile_config
from warehouse.simulator.simulate import SimulatedWindow, simulate_users, simulate_window

__all__ = [
    "ANOMALY_TYPES",
    "BENIGN_SCENARIOS",
    "PERSONAS",
    "SIMULATION_PROFILES",
    "SimulatedWindow",
    "SimulationConfig",
    "simulate_users",
    "simulate_window",
    "profile_config",
]
