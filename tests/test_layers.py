"""The package's layers, bottom up: ingest → query (the language) → index → analyses (with
findings and policy) → clickhouse (and the demo generator) → backend → output → webhook (the
receiver) → cli and tui. A module imports only from its own layer or below, with no exception;
the modules import no cycle; and the headless core (the receiver with it) imports neither
Textual nor the command line.

Imports are read from the source (every ``import`` a module runs, at its top or inside a
function). Those under ``if TYPE_CHECKING:`` count for the layers and the cycles too: a
type-only import is still a dependency, and one hid a cycle of five modules. Only the check of
what the core loads at run time leaves them out.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "audittui"
LAYERS = {  # first part of the module name below audittui → its rank
    "ingest": 0,
    "query": 1,  # the query language: lexer, fields, parser, patterns, completion
    "index": 2,
    "analyses": 3,
    "findings": 3,
    "policy": 3,
    "demo": 4,  # the log generator: ingest's names, the policy checker's levels; never the index
    "clickhouse": 4,  # the ClickHouse store: its client, table, SQL and the analyses run there
    "output": 4,  # everything printed or written: inert text, masks, tables, JSON
    "backend": 5,  # one protocol over the in-memory index and the ClickHouse store
    "webhook": 6,  # the audit webhook receiver: a server for `audittui webhook`, no front end
    "cli": 7,
    "tui": 7,
}
TOP = 8  # the public API and the command over everything
ENTRY = {"audittui", "audittui.__main__", "audittui.command"}
PEERS_APART = {("cli", "tui"), ("tui", "cli")}  # the two front ends never import each other
CORE = {
    "ingest",
    "query",
    "index",
    "analyses",
    "findings",
    "policy",
    "clickhouse",
    "backend",
    "output",
    "webhook",
}
NOT_IN_CORE = ("textual", "argparse")  # Rich measures cell widths for output: allowed


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path, type_only: bool = True) -> set[str]:
    """Every module ``name`` imports (audittui's own and third-party, top level); those under
    ``if TYPE_CHECKING:`` too unless ``type_only`` is False."""
    tree = ast.parse(path.read_text())
    skip = set()
    if not type_only:
        skip = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for child in node.body
            for n in ast.walk(child)
        }
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from . import store` names a module
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}
RUN_TIME = {name: _imports(name, path, type_only=False) for name, path in MODULES.items()}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def _rank(module: str) -> int:
    layer = _layer(module)
    if layer is not None:
        return LAYERS[layer]
    return TOP


def test_every_module_is_in_a_layer():
    loose = [m for m in MODULES if _rank(m) == TOP and m not in ENTRY]
    assert not loose, f"modules outside the layer packages: {loose}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_layer_above_its_own(module):
    mine = _rank(module)
    wrong = []
    for target in GRAPH[module]:
        if not target.startswith("audittui.") or target == module:
            continue
        if _rank(target) > mine or (_layer(module), _layer(target)) in PEERS_APART:
            wrong.append(target)
    assert not wrong, f"{module} (layer {_layer(module)}) imports upward: {sorted(wrong)}"


def test_the_demo_generator_uses_only_ingest_and_the_policy_checker():
    for module in (m for m in MODULES if _layer(m) == "demo"):
        own = {t for t in GRAPH[module] if t.startswith("audittui.") and _layer(t) != "demo"}
        assert all(_layer(t) in ("ingest", "policy") for t in own), (module, own)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) in CORE))
def test_the_core_imports_no_ui_and_no_command_line(module):
    third_party = {t.split(".")[0] for t in RUN_TIME[module]}
    assert not third_party & set(NOT_IN_CORE), (module, third_party & set(NOT_IN_CORE))


def _reached(module: str) -> set[str]:
    """Every module of the package ``module`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for t in GRAPH[todo.pop()]:
            if t in MODULES and t not in seen:
                seen.add(t)
                todo.append(t)
    return seen


def test_neither_backend_imports_the_other():
    memory = _reached("audittui.backend.memory")
    assert not {m for m in memory if m.startswith(("audittui.clickhouse", "audittui.backend.c"))}
    store = _reached("audittui.backend.clickhouse")
    assert "audittui.backend.memory" not in store


def test_no_import_cycle():
    own = {m: {t for t in GRAPH[m] if t in MODULES and t != m} for m in MODULES}
    # the package's own __init__ re-exports: importing audittui.x.y runs it, not a cycle
    own = {m: ts - {"audittui"} for m, ts in own.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(own[m]):
            if state.get(t) == 1:
                cycle = stack[stack.index(t) :] + [t]
                pytest.fail("import cycle: " + " → ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(own):
        if m not in state:
            visit(m)


def test_the_contract_sees_a_violation(tmp_path):
    # the checker itself: an upward import in a core module is found, a type-only one too
    code = (
        "from typing import TYPE_CHECKING\n"
        "from ..tui.app import AuditApp\n"
        "import textual\n"
        "if TYPE_CHECKING:\n"
        "    from ..cli.main import main\n"
    )
    path = tmp_path / "bad.py"
    path.write_text(code)
    found = _imports("audittui.index.bad", path)
    assert {"audittui.tui.app", "audittui.cli.main", "textual"} <= found
    assert "audittui.cli.main" not in _imports("audittui.index.bad", path, type_only=False)
    assert _rank("audittui.tui.app") > _rank("audittui.index.bad")


def test_the_sql_compiler_reads_the_language_not_the_index():
    # the two compilers sit on the language (audittui.query); neither backend imports the other
    sql = {_layer(t) for t in GRAPH["audittui.clickhouse.sql"] if t.startswith("audittui.")}
    assert sql <= {"query", "ingest", "clickhouse"}, sql
    index = {m: GRAPH[m] for m in MODULES if _layer(m) == "index"}
    assert not [m for m, ts in index.items() if any(_layer(t) == "clickhouse" for t in ts)]


def test_the_python_api_runs_without_textual_or_the_command_line(tmp_path):
    log = tmp_path / "audit.log"
    log.write_text(
        '{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","stage":"ResponseComplete",'
        '"verb":"get","user":{"username":"alice"},"requestURI":"/api/v1/pods",'
        '"requestReceivedTimestamp":"2024-01-01T00:00:00.000000Z",'
        '"stageTimestamp":"2024-01-01T00:00:00.100000Z"}\n'
    )
    code = f"""
import sys, audittui
from audittui.findings import Findings, load_rules
from audittui.policy import load
from audittui.index.evaluate import select
from audittui.analyses.summary import summarize
store = audittui.load({str(log)!r})
assert len(select(store, "user:alice")) == 1, "the query"
findings = Findings(load_rules().rules)
findings.update(store)
findings.attach(store)
assert len(select(store, "finding:*")) == 0
summarize(store, select(store, ""), by="user")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "argparse")
                or m.startswith(("audittui.cli", "audittui.tui")))
print(loaded)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
