"""One output boundary: the command line (and the app's start-up errors) write only through
audittui.output.terminal, whose Out formats the program's own templates with log values made
inert. Checked on the source: no print, no write to sys.stdout or sys.stderr, no f-string
as a template (which would put a log value in unescaped)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "audittui"
FRONT = sorted(
    [*(PACKAGE / "cli").glob("*.py"), PACKAGE / "command.py", PACKAGE / "tui" / "run.py"]
)
TEMPLATED = {"line", "lines", "warn"}  # their first argument is a format template


def _problems(source: str) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        target = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
        if name == "print":
            out.append(f"line {node.lineno}: print()")
        if name == "write" and target.startswith(("sys.stdout", "sys.stderr")):
            out.append(f"line {node.lineno}: {target}.write()")
        if name in TEMPLATED and node.args and isinstance(node.args[0], ast.JoinedStr):
            out.append(f"line {node.lineno}: an f-string as the template of {name}()")
    return out


@pytest.mark.parametrize("path", FRONT, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_front_ends_write_only_through_the_output_module(path):
    assert not _problems(path.read_text())


def test_the_check_finds_each_way_around_the_boundary():
    bad = (
        "print(user)\n"
        "sys.stdout.write(user)\n"
        "sys.stderr.buffer.write(raw)\n"
        "out.line(f'{user}')\n"
        "warn(f'{user}: gone')\n"
    )
    assert len(_problems(bad)) == 5
    good = "out.line('{}', user)\nwarn('{}: gone', path)\nsink.write(block)\n"
    assert not _problems(good)


def test_out_makes_every_string_value_inert_and_keeps_numbers(capsys):
    import sys

    from audittui.output.terminal import Out

    Out(sys.stdout).line("{:<6}|{:>5,}|{}", "a\x1bb", 12345, "\u202eevil [red]x[/]")
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "\u202e" not in printed
    assert printed.startswith("a\\x1bb|12,345|\\u202eevil [red]x[/]")
