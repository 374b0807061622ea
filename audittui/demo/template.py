"""Object templates: the YAML files under ``templates/``, loaded once, filled per request.

Each file maps template names to JSON-shaped values (mappings with string keys, lists, strings,
numbers, booleans, null). A string that is exactly ``${name}`` is replaced by the value given for
``name`` (of any type, inserted as is); a string or mapping key that contains ``${name}`` gets the
value's text. Everything else is copied, so every fill returns new dicts and lists, in the
template's key order."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import yaml

FOLDER = Path(__file__).with_name("templates")
_VAR = re.compile(r"\$\{(\w+)\}")

Builder = Callable[[Mapping[str, Any]], Any]


def fill(template: str, /, **values: Any) -> Any:
    """The template named ``template`` with its placeholders replaced by ``values``."""
    return _templates()[template](values)


@cache
def _templates() -> dict[str, Builder]:
    """Every template of every file, compiled (once: the first fill loads them)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out: dict[str, Builder] = {}
    for path in sorted(FOLDER.glob("*.yaml")):
        if path.name == "policy.yaml":  # the demo's audit policy (levels.py), not templates
            continue
        for name, tree in yaml.load(path.read_text(), Loader=loader).items():
            if name in out:
                raise ValueError(f"{path.name}: template {name!r} defined twice")
            out[name] = _compile(tree)
    return out


def _compile(node: Any) -> Builder:
    """A function of the values that builds ``node`` afresh."""
    if not _has_variable(node):
        if isinstance(node, dict | list):  # copied whole, in C
            blob = orjson.dumps(node)
            return lambda values: orjson.loads(blob)
        return lambda values: node  # a number, a boolean, null or a string
    if isinstance(node, dict):
        if not all(isinstance(k, str) for k in node):
            raise TypeError(f"template keys must be strings: {list(node)}")
        items = [(_compile_text(k), _compile(v)) for k, v in node.items()]
        return lambda values: {key(values): value(values) for key, value in items}
    if isinstance(node, list):
        parts = [_compile(v) for v in node]
        return lambda values: [part(values) for part in parts]
    whole = _VAR.fullmatch(node)
    if whole:
        var = whole[1]
        return lambda values: values[var]
    return _compile_text(node)


def _has_variable(node: Any) -> bool:
    """Whether ``node`` holds a ``${name}`` anywhere (keys included)."""
    if isinstance(node, dict):
        return any(_has_variable(k) or _has_variable(v) for k, v in node.items())
    if isinstance(node, list):
        return any(_has_variable(v) for v in node)
    return isinstance(node, str) and _VAR.search(node) is not None


def _compile_text(text: str) -> Builder:
    """``text`` with each ``${name}`` replaced by the text of its value."""
    if not _VAR.search(text):
        return lambda values: text
    return lambda values: _VAR.sub(lambda m: str(values[m[1]]), text)
