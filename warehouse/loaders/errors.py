"""The one exception a load raises for a file it cannot use."""

from __future__ import annotations

from warehouse.connection import WarehouseError


class LoadError(WarehouseError):
    """A whole input file (or an option) cannot be used; nothing was written.

    The message names the file and what was expected, and is meant to be shown as is
    (the CLI prints ``str(error)``, no traceback).
    """
