"""Everything about data getting into and out of the DuckDB warehouse."""
