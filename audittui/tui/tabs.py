"""The ids of the app's tabs (also the TabPane ids, and what ``tab(…)`` bindings name)."""

from __future__ import annotations

EVENTS = "events"
SUMMARY = "summary"
HISTOGRAM = "histogram"
FINDINGS = "findings"
POLICY = "policy"
ANALYSES = (SUMMARY, HISTOGRAM, FINDINGS, POLICY)  # Esc from these goes back to the list
