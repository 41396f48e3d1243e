"""Loaders for a person's own listening history ("bring your own data").

Canonical events (CSV/Parquet), Spotify account-data exports and Spotify extended streaming
histories, as files, folders, globs or zips; see docs/loading.md.

    from warehouse.loaders import load_files, LoadOptions
    report = load_files(con, "my_spotify_data.zip", options=LoadOptions(timezone="Europe/Berlin"))
    print("\\n".join(report.summary_lines()))
"""

from warehouse.loaders.errors import LoadError
from warehouse.loaders.load import load_files
from warehouse.loaders.options import ZONE_FROM_COUNTRY, LoadOptions, LoadReport

__all__ = ["ZONE_FROM_COUNTRY", "LoadError", "LoadOptions", "LoadReport", "load_files"]
