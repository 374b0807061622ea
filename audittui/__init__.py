"""audittui: read, index, query and summarise Kubernetes API-server audit logs.

import audittui
store = audittui.load("audit.log", "/var/log/kubernetes/audit/")
rows = audittui.select(store, "user:alice verb:delete")
store.event(rows[0])
audittui.summarize(store, rows, by="user")
"""

from .analyses.summary import summarize
from .index.evaluate import select
from .index.loader import load
from .index.store import Malformed, Store
from .ingest.sources import InputError
from .query.syntax import QueryError

__all__ = ["InputError", "Malformed", "QueryError", "Store", "load", "select", "summarize"]
__version__ = "0.1.0"
