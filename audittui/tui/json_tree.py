"""Foldable, coloured JSON for one event (a Textual ``Tree``). Every key and string from the
log is made inert and given to the tree as ``Text``, never as markup."""

from __future__ import annotations

from typing import Any

import orjson
from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from ..output.inert import inert_json
from .keymap import bindings

MAX_STRING = 2000  # characters of a string shown in a label (c copies the whole event)
MAX_NODES = 1500  # nodes expanded by default; bigger bodies stay folded
MAX_OPEN_ITEMS = 100  # arrays longer than this start folded
OPEN_DEPTH = 4

KEY = "bold #87afd7"
STRING = "#87af87"
NUMBER = "#5fd7d7"
LITERAL = "#d787d7"
DIM = "dim"


def quoted(text: str) -> str:
    """A string as JSON: controls, bidi and invisible characters become ``\\uXXXX`` escapes,
    so they are visible, inert and unambiguous (a literal backslash shows as ``\\\\``)."""
    return inert_json(orjson.dumps(text)).decode()


def scalar(value: Any) -> Text:
    if isinstance(value, str):
        text = quoted(value[:MAX_STRING])
        if len(text) > MAX_STRING + 2:  # escapes made it longer
            text = text[:MAX_STRING] + '…"'
        out = Text(text, STRING)
        if len(value) > MAX_STRING or text.endswith('…"'):
            out.append(f" … ({len(value):,} chars)", DIM)
        return out
    if isinstance(value, bool) or value is None:
        return Text(orjson.dumps(value).decode(), LITERAL)
    return Text(str(value), NUMBER)


def label(key: str | int | None, value: Any) -> Text:
    text = Text()
    if isinstance(key, str):
        text.append(quoted(key), KEY)
        text.append(": ")
    elif isinstance(key, int):
        text.append(f"{key}: ", DIM)
    if isinstance(value, dict):
        text.append("{…}", DIM)
        text.append(f" {len(value)} keys", DIM)
    elif isinstance(value, list):
        text.append("[…]", DIM)
        text.append(f" {len(value)} items", DIM)
    else:
        text.append_text(scalar(value))
    return text


class JsonTree(Tree[Any]):
    """One JSON value as a tree: space/enter folds, ``z`` folds or unfolds everything."""

    BINDINGS = bindings("JsonTree")
    DEFAULT_CSS = "JsonTree { background: $surface; padding: 0 1; }"

    def __init__(self, label: str = "event", *, id: str | None = None) -> None:
        super().__init__(label, id=id)
        self.show_root = False
        self.guide_depth = 2
        self._shown_nodes = 0

    def show(self, value: Any, *, hide: frozenset[str] = frozenset({"managedFields"})) -> None:
        """Display ``value``; keys in ``hide`` (at any depth) show as one folded line."""
        self.clear()
        self._shown_nodes = 0
        if value is None:
            return
        self._add_nodes(self.root, value, hide, 0)
        self.root.expand()
        # Lay the lines out now: done during the next render instead, it changes the virtual
        # size there and costs extra frames (about 50 ms at 60 fps) per event shown.
        self._build()

    def _add_nodes(self, node: TreeNode, value: Any, hide: frozenset[str], depth: int) -> None:
        """Add the children of a container node; folded containers get theirs when opened,
        so a huge body costs nothing until it is looked at."""
        node.data = None  # populated
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and key in hide:
                hidden = Text(quoted(key), KEY)
                hidden.append(": … hidden (m shows)", DIM)
                node.add_leaf(hidden)
                continue
            self._shown_nodes += 1
            if isinstance(item, dict | list) and item:
                child = node.add(label(key, item), data=(item, hide, depth + 1))
                if (
                    depth < OPEN_DEPTH
                    and self._shown_nodes + len(item) < MAX_NODES
                    and len(item) <= MAX_OPEN_ITEMS
                ):
                    self._add_nodes(child, item, hide, depth + 1)
                    child.expand()
            else:
                node.add_leaf(label(key, item))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded) -> None:
        node = event.node
        if node.data is not None:
            value, hide, depth = node.data
            self._add_nodes(node, value, hide, depth)

    def action_toggle_all(self) -> None:
        children = self.root.children
        if any(c.is_expanded for c in children):
            for c in children:
                c.collapse_all()
        else:
            for c in children:
                if c.allow_expand:
                    c.expand()
