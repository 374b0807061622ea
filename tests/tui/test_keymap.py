"""One keymap: the widgets' bindings, the help, the palette and the README come from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from textual.binding import Binding

from audittui.tui import (
    app,
    event_list,
    filter_bar,
    findings_pane,
    histogram_pane,
    json_tree,
    policy_pane,
    screens,
    summary_pane,
)
from audittui.tui.keymap import KEYMAP, help_sections, markdown_table, palette

README = Path(__file__).resolve().parents[2] / "README.md"
OWNERS = {
    "app": app.AuditApp,
    "EventList": event_list.EventList,
    "FilterBar": filter_bar.FilterBar,
    "FindingsPane": findings_pane.FindingsPane,
    "HistogramPane": histogram_pane.HistogramPane,
    "JsonTree": json_tree.JsonTree,
    "PolicyPane": policy_pane.PolicyPane,
    "SummaryPane": summary_pane.SummaryPane,
    "HelpScreen": screens.HelpScreen,
    "MalformedScreen": screens.MalformedScreen,
    "ObjectHistoryScreen": screens.ObjectHistoryScreen,
    "AccessScreen": screens.AccessScreen,
    "PathScreen": screens.PathScreen,
    "ConfirmScreen": screens.ConfirmScreen,
}
BINDS = [(row, b) for row in KEYMAP for b in row.binds]


def test_the_readme_key_table_is_the_keymap():
    text = README.read_text()
    m = re.search(r"<!-- keys:[^\n]*-->\n(.*?)<!-- /keys -->", text, re.S)
    assert m, "README lacks the generated key table"
    assert m.group(1) == markdown_table(), "run: python -m audittui.tui.keymap"


@pytest.mark.parametrize("owner", sorted(OWNERS))
def test_each_widget_binds_exactly_its_keys_from_the_keymap(owner):
    held = [(b.key, b.action, b.description) for b in OWNERS[owner].BINDINGS]
    want = [(b.keys, b.action, b.label) for _, b in BINDS if b.owner == owner]
    assert held == want and want


@pytest.mark.parametrize(("row", "bind"), BINDS, ids=lambda x: getattr(x, "keys", ""))
def test_every_bound_action_exists_on_its_widget(row, bind):
    cls = OWNERS[bind.owner]
    name = bind.action.split("(")[0]
    assert hasattr(cls, f"action_{name}"), f"{bind.owner} has no action_{name} ({row.keys})"


def test_every_widget_binding_in_the_package_comes_from_the_keymap():
    # no BINDINGS list written by hand anywhere in the app
    for path in (Path(app.__file__).parent).glob("*.py"):
        source = path.read_text()
        assert not re.search(r"BINDINGS\s*=\s*\[", source), path.name
        assert "Binding(" not in source or path.name == "keymap.py", path.name


def test_the_help_lists_every_row_and_the_palette_runs_app_actions():
    shown = {(section, keys, does) for section, rows in help_sections() for keys, does in rows}
    assert shown == {(r.section, r.keys, r.does) for r in KEYMAP}
    entries = palette()
    assert {"Filter", "Export", "Follow", "Summary", "Findings", "Wrapper"} <= {
        title for title, _, _ in entries
    }
    for title, description, action in entries:
        assert hasattr(app.AuditApp, f"action_{action.split('(')[0]}"), title
        assert description.endswith(")"), description  # the key, in parentheses


def test_bindings_are_textual_bindings():
    assert all(isinstance(b, Binding) for cls in OWNERS.values() for b in cls.BINDINGS)
