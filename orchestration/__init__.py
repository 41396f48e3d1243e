"""Dagster wiring: assets, partitions, resources, schedules, checks and the CLI. No business logic."""
