"""audittui: read, index, query and summarise Kubernetes API-server audit logs.

import audittui
store = audittui.load("audit.log", "/var/log/kubernetes/audit/")
sel = store.query("user:alice verb:delete")
store.event(sel[0])
"""

from .index.loader import load
from .index.query import QueryError
from .index.store import Malformed, Selection, Store
from .ingest.sources import InputError

__all__ = ["InputError", "Malformed", "QueryError", "Selection", "Store", "load"]
__version__ = "0.1.0"
