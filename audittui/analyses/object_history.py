"""One object's history: every event that touched it in time order, and, where the log holds
the bodies, what each write changed, as JSON-patch paths with the old and the new value.

The object's versions come from the bodies of its writes: a create's or update's response (else
its request), a patch's response (its request is the patch document, shown as such). Each is
compared with the version before it. Secrets stay masked in the diff unless revealed. Noise is
marked, not hidden: dry runs (``dryRun=All``: not persisted), no-op updates (the same
resourceVersion before and after), status-only writes, conflicts (409: a server-side apply
whose fields another manager owns, or an update of a version since replaced).

:func:`entries` yields the history event by event (an object may have 100,000 writes: the app
shows the first ones while the rest are read); :func:`history` collects it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..index import evaluate
from ..index.store import Store
from ..ingest.formats import format_time
from ..ingest.schema import COMPLETE, PANIC
from ..query.completion import term

WRITES = ("create", "update", "patch", "delete")
READS = ("get",)
# Left out of diffs unless asked: they change on every write and say nothing about intent.
NOISE = ("/metadata/managedFields", "/metadata/resourceVersion", "/metadata/generation")
TIMESTAMP_KEYS = ("creationTimestamp", "lastTransitionTime", "lastUpdateTime", "lastHeartbeatTime",
                  "lastProbeTime", "renewTime", "acquireTime", "time")  # fmt: skip


@dataclass
class Change:
    path: str  # JSON-patch (RFC 6901) path: /spec/replicas, /metadata/labels/app~1name
    op: str  # add, remove, replace
    old: Any = None
    new: Any = None


@dataclass
class Entry:
    """One event of the object's history."""

    index: int  # the store's event index
    audit_id: str | None
    time: str
    verb: str | None
    user: str | None
    ip: str | None
    code: int
    subresource: str | None
    notes: list[str] = field(default_factory=list)  # dry run, no-op, status write, …
    changes: list[Change] | None = None  # None: no version to compare (no body, or the first)
    patch: Any = None  # a patch event's patch document, as sent
    body: bool = False  # did the event carry a body of this object


@dataclass
class History:
    entries: list[Entry]


class Events(Protocol):
    """What a history reads of its events: a :class:`Store`, or a store's selected rows."""

    def event(self, i: int) -> dict[str, Any]: ...
    def value(self, name: str, i: int) -> Any: ...


def select(
    store: Store, resource: str, namespace: str | None, name: str, reads: bool = False
) -> list[int]:
    """The events of one object (its subresources included), final stages, in time order."""
    return evaluate.select(store, object_query(resource, namespace, name, reads)).tolist()


def object_query(resource: str, namespace: str | None, name: str, reads: bool = False) -> str:
    """The query that selects one object's events (as :func:`select` reads them): a store
    runs it on the server."""
    verbs = WRITES + READS if reads else WRITES
    ns = term("ns", namespace) if namespace else 'ns:""'
    return (
        f"{term('resource', resource)} {ns} {term('name', name)} verb:{','.join(verbs)} "
        f'(stage:{COMPLETE},{PANIC} OR stage:"")'
    )


def history(
    store: Events,
    rows: list[int],
    shown: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    all_fields: bool = False,
) -> History:
    """The entries of ``rows`` (as :func:`select` gives them); ``shown`` turns each event into
    what may be shown (the caller's secret masking) before anything is compared."""
    return History(list(entries(store, rows, shown, all_fields)))


def entries(
    store: Events,
    rows: list[int],
    shown: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    all_fields: bool = False,
) -> Iterator[Entry]:
    """:func:`history`'s entries one by one, each as soon as it is read."""
    current: dict[str, Any] | None = None
    for i in rows:
        event = store.event(i)
        if shown is not None:
            event = shown(event)
        entry = _entry(store, i, event)
        verb = entry.verb
        request, response = (
            _object(event.get("requestObject")),
            _object(event.get("responseObject")),
        )
        entry.body = request is not None or response is not None
        uri = str(event.get("requestURI") or "")
        dry = "dryRun=All" in uri
        if dry:
            entry.notes.append("dry run (dryRun=All): not persisted")
        refused = entry.code >= 300  # conflict, forbidden, invalid…: nothing was written
        if entry.code == 409 and verb in ("update", "patch"):
            entry.notes.append(_conflict(verb, uri, event))
        elif refused and verb in WRITES:
            entry.notes.append(f"refused ({entry.code}): not written")
        if entry.subresource == "status" and verb in ("update", "patch"):
            entry.notes.append("status write")
        version: dict[str, Any] | None = None
        if verb == "create":
            version = response or request
            if not refused:
                entry.notes.append("created")
        elif verb == "update":
            version = response or request
        elif verb == "patch":
            entry.patch = event.get("requestObject")
            version = response
        elif verb == "delete" and not refused:
            entry.notes.append("deleted")
        if refused:
            version = None
        if version is not None and verb != "create" and current is not None:
            if _resource_version(version) == _resource_version(current) is not None:
                entry.notes.append("no-op (the same resourceVersion)")
            entry.changes = diff(current, version, all_fields=all_fields)
        if not dry and not refused:
            if verb == "delete":
                current = None
            elif version is not None:
                current = version
        yield entry


# "Apply failed with 2 conflicts: conflict with "kubectl-client-side-apply" using apps/v1:
# .spec.replicas" (one conflict), or the conflicts listed on the lines that follow.
_MANAGER = re.compile(r'conflicts? with "([^"]*)"')
_FIELD = re.compile(r"(?:^|\s|: )(\.[\w.\[\]=\\\"'-]+)")


def _conflict(verb: str, uri: str, event: dict[str, Any]) -> str:
    """A 409's note: a server-side apply's conflicts (whose fields), or a stale update."""
    status = event.get("responseStatus")
    message = status.get("message") if isinstance(status, dict) else None
    message = message if isinstance(message, str) else ""
    if verb == "patch" and ("fieldManager=" in uri or "Apply failed" in message):
        managers = sorted(set(_MANAGER.findall(message)))
        fields = list(dict.fromkeys(_FIELD.findall(message)))
        said = ", ".join(f'"{m}"' for m in managers)
        return (
            "server-side apply conflict (409, not applied)"
            + (f": fields owned by {said}" if said else "")
            + (f" ({', '.join(fields[:5])}{', …' if len(fields) > 5 else ''})" if fields else "")
        )
    return "conflict (409, not written: the object changed since it was read)"


def diff(old: Any, new: Any, path: str = "", all_fields: bool = False) -> list[Change]:
    """What changed from ``old`` to ``new``: objects key by key, lists item by item when their
    lengths agree (else the list as one value), anything else by equality."""
    if not all_fields and _noise(path):
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[Change] = []
        for key in sorted(old.keys() | new.keys(), key=str):
            sub = f"{path}/{_escape(str(key))}"
            if key not in new:
                if all_fields or not _noise(sub):
                    out.append(Change(sub, "remove", old[key], None))
            elif key not in old:
                if all_fields or not _noise(sub):
                    out.append(Change(sub, "add", None, new[key]))
            else:
                out.extend(diff(old[key], new[key], sub, all_fields))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for k, (a, b) in enumerate(zip(old, new, strict=True)):
            out.extend(diff(a, b, f"{path}/{k}", all_fields))
        return out
    return [] if old == new else [Change(path or "/", "replace", old, new)]


def _noise(path: str) -> bool:
    return path in NOISE or path.rsplit("/", 1)[-1] in TIMESTAMP_KEYS


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _object(value: Any) -> dict[str, Any] | None:
    """A body that is a version of the object (not a Status)."""
    return value if isinstance(value, dict) and value.get("kind") != "Status" else None


def _resource_version(obj: dict[str, Any]) -> str | None:
    meta = obj.get("metadata")
    rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return rv if isinstance(rv, str) else None


def _entry(store: Events, i: int, event: dict[str, Any]) -> Entry:
    v = store.value
    ips = v("ips", i)
    return Entry(
        index=i,
        audit_id=v("audit_id", i),
        time=format_time(v("time", i)),
        verb=v("verb", i),
        user=v("user", i),
        ip=ips[0] if ips else None,
        code=v("code", i) or 0,
        subresource=v("subresource", i),
    )
