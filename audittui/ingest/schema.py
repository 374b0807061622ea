"""The vocabulary of audit.k8s.io/v1 events that audittui reasons about: the stages a request
passes, in order, and the levels of detail, least first (../shared/docs/audit-format.md)."""

from __future__ import annotations

RECEIVED = "RequestReceived"  # logged as soon as the request arrives, before any handler
STARTED = "ResponseStarted"  # headers sent, body still streaming (watch, exec, logs -f)
COMPLETE = "ResponseComplete"
PANIC = "Panic"  # the handler panicked: as final as ResponseComplete
STAGES = (RECEIVED, STARTED, COMPLETE, PANIC)
FINAL_STAGES = frozenset({COMPLETE, PANIC})

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
NONE, METADATA, REQUEST, REQUEST_RESPONSE = LEVELS
