"""The README's "How it is built" names every module of the package, each under its own
package's heading, so a newcomer finds every file there (and a new module cannot be left out)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "audittui"


def _sections() -> dict[str, str]:
    """The map's text under each top-level package ("" for the lines outside one)."""
    readme = (ROOT / "README.md").read_text()
    part = readme.split("## How it is built", 1)[1]
    block = part.split("```", 2)[1]
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for line in block.splitlines():
        m = re.match(r"  ([a-z_]+)/\s", line + " ")
        if m and not line.startswith("   "):
            current = m.group(1)
            sections.setdefault(current, [])
        elif re.match(r"  \S", line):  # a top-level file, or tests/
            current = ""
        sections.setdefault(current, []).append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


def test_every_module_is_named_under_its_package() -> None:
    sections = _sections()
    missing = []
    for path in sorted(PACKAGE.rglob("*")):
        if path.suffix not in {".py", ".sh", ".tcss"} or "__pycache__" in path.parts:
            continue
        if path.name in {"__init__.py", "__main__.py"}:
            continue
        parts = path.relative_to(PACKAGE).parts
        package = parts[0] if len(parts) > 1 else ""
        if not re.search(rf"(?<![\w.]){re.escape(path.name)}\b", sections.get(package, "")):
            missing.append("/".join(parts))
    assert not missing, f"modules the README's map does not name: {missing}"
