"""The messages worker threads post to the app and its panes, typed. Results of a pane's own
worker are delivered to that pane only (``bubble = False``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from textual.message import Message

from ..analyses.histogram import Histogram
from ..analyses.requests import Requests
from ..analyses.summary import Summary
from ..analyses.view import CatchUp
from ..findings import Finding, Rule
from ..ingest.follow import Notice
from ..policy.simulate import Simulation
from ..query.syntax import Node


class StoreGrew(Message):
    """New events are in the store (coalesced: one queued at a time is enough)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StoreGrew)


@dataclass
class FileNotices(Message):
    """What happened to the files read: rotated, truncated, unreadable..."""

    notices: list[Notice]


class InputEnded(Message):
    """Standard input, spooled for the app, has ended: say so in the status."""


@dataclass
class FilterResult(Message):
    """The rows of a filter, computed over the first ``upto`` events of the store."""

    text: str
    node: Node | None
    rows: np.ndarray
    upto: int
    order: str
    requests: Requests | None


@dataclass
class CaughtUp(Message):
    """What the filter selects among the events appended since the list's last merge
    (``found`` None: the catch-up was superseded or failed)."""

    job: CatchUp
    found: np.ndarray | None


@dataclass
class SummaryResult(Message, bubble=False):
    by: str
    summary: Summary  # its top rows, listed, and the rest counted


@dataclass
class HistogramResult(Message, bubble=False):
    hist: Histogram | None


@dataclass
class PolicyResult(Message, bubble=False):
    simulation: Simulation


@dataclass
class FindingsResult(Message, bubble=False):
    findings: list[Finding] | list[Any]  # Finding, or a backend's protocol.Fired
    blind: list[tuple[Rule, str]]
    changed: bool  # events already in a finding's list may have changed (a threshold crossed)


@dataclass
class SaveText(Message):
    """Write a text the user asked for (generated RBAC YAML) to the file they named."""

    path: str
    text: str
