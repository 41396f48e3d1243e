"""Generate the parameter table of ``docs/simulation.md`` from :class:`SimulationConfig`.

``python -m warehouse.simulator.docs`` rewrites the table between the marker comments;
``python -m warehouse.simulator.docs --check`` exits 1 when the document is out of date.
"""

from __future__ import annotations

import sys
from dataclasses import MISSING
from pathlib import Path

from warehouse.simulator.config import config_fields

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "simulation.md"
BEGIN = "<!-- BEGIN GENERATED PARAMETERS (python -m warehouse.simulator.docs) -->"
END = "<!-- END GENERATED PARAMETERS -->"


def _default(f) -> str:
    value = f.default if f.default is not MISSING else f.default_factory()
    text = repr(value).replace("|", "\\|")
    if f.name.startswith("persona_hour_"):
        text = "; ".join(" ".join(str(x) for x in row) for row in value)
    return f"`{text}`"


def parameter_table() -> str:
    lines = ["| group | name | default | meaning |", "|---|---|---|---|"]
    for f in config_fields():
        doc = f.metadata.get("doc", "").replace("|", "\\|")
        lines.append(f"| {f.metadata.get('group', '')} | `{f.name}` | {_default(f)} | {doc} |")
    return "\n".join(lines)


def render(text: str) -> str:
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{parameter_table()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    current = DOC_PATH.read_text()
    wanted = render(current)
    if "--check" in argv:
        if wanted != current:
            print(f"{DOC_PATH} is out of date: run python -m warehouse.simulator.docs")
            return 1
        return 0
    DOC_PATH.write_text(wanted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
