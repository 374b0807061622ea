"""Log values that reach the filter bar never reach the terminal raw: the real app in tmux on
a log whose every field carries terminal escapes (OSC 52 clipboard, OSC 0 title, CSI clear
screen, C1 CSI), bidi overrides and Rich markup. Tab completion of every completable field,
the summary's drill-down of every grouping and history recall in a second run each put such a
value into the filter bar; the app's raw output (``tmux pipe-pane``) must hold none of those
sequences, the bar and its hint show them as escapes and markup as text, and each resulting
filter selects exactly the hostile events (the count on screen). (A raw paste is tested with
Textual's Paste event in test_app.py: tmux itself escapes control characters it pastes.)"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid

import orjson
from conftest import v1_event

from audittui.query.completion import VALUE_FIELDS
from audittui.tui.summary_pane import GROUP_ORDER, GROUP_TITLES
from e2e.test_e2e_tmux import quit_and_wait, tmux, wait_for

OSC52 = "\x1b]52;c;cHduZWQ=\x07"  # would write "pwned" to the clipboard
OSC0 = "\x1b]0;PWNED\x07"  # would set the window title
BIDI = "\u202e"
MARKUP = "[bold red]M[/]"  # markup, if parsed: a bold red M
LINK = "[link=https://evil.example]L[/link]"
MARKUP_AGENTS = ["[b]A[/b]", "[i]B[/i]"]  # short: the hint line shows both
HOSTILE_N, NORMAL_N = 3, 12
TOTAL = HOSTILE_N + NORMAL_N


def hostile(field: str) -> str:
    """A value for ``field``: a plain prefix to complete from, then every payload; its CSI
    clear-screen is followed by the field's name, so a leak names the field. (No '/' in a
    resource: it separates the subresource there, quoted or not.)"""
    markup = MARKUP + LINK if field != "resource" else "[bold red]M"
    return f"x{field}-{OSC52}{OSC0}\x1b[2J{field}CSI\x9b2J{field}C1{BIDI}{markup}"


def _reason(binding: str, role: str, user: str) -> str:
    return (
        f'RBAC: allowed by ClusterRoleBinding "{binding}" of ClusterRole "{role}" to User "{user}"'
    )


def write_log(path) -> None:
    """Twelve ordinary events, each value held by two of them, and three hostile ones that
    share their values: the hostile key is the first row of every summary grouping."""
    lines = []
    verbs = ["get", "list", "watch", "create", "update", "patch"]
    resources = ["pods", "services", "configmaps", "secrets", "nodes", "leases"]
    for k in range(NORMAL_N):
        j = k // 2
        lines.append(
            v1_event(
                auditID=f"normal-{k}",
                user={"username": f"user-{j}", "groups": [f"grp-{j}"]},
                verb=verbs[j],
                objectRef={"resource": resources[j], "namespace": f"ns-{j}", "name": f"o-{j}"},
                userAgent=MARKUP_AGENTS[k - 10] if k >= 10 else f"agent/{j}",
                sourceIPs=[f"10.0.0.{j}"],
                responseStatus={"code": [200, 201, 404, 409, 500, 401][j]},
                requestReceivedTimestamp=f"2024-05-01T10:00:{k:02d}.000000Z",
                stageTimestamp=f"2024-05-01T10:00:{k:02d}.002000Z",
                annotations={
                    "authorization.k8s.io/decision": "allow",
                    "authorization.k8s.io/reason": _reason(f"crb-{j}", f"cr-{j}", "u"),
                },
            )
        )
    for k in range(HOSTILE_N):
        lines.append(
            v1_event(
                auditID=f"hostile-{k}",
                user={
                    "username": hostile("user"),
                    "groups": [hostile("group")],
                    "extra": {"authentication.kubernetes.io/credential-id": [hostile("cred")]},
                },
                impersonatedUser={"username": hostile("as")},
                verb=hostile("verb"),
                objectRef={
                    "resource": hostile("resource"),
                    "subresource": hostile("sub"),
                    "apiGroup": hostile("api"),
                    "namespace": hostile("ns"),
                    "name": hostile("name"),
                    "apiVersion": "v1",
                },
                requestURI="/api/" + hostile("uri"),
                userAgent=hostile("ua"),
                sourceIPs=[hostile("ip")],
                stage=hostile("stage"),
                level=hostile("level"),
                responseStatus={"code": 418},
                requestReceivedTimestamp=f"2024-05-01T10:01:0{k}.000000Z",
                stageTimestamp=f"2024-05-01T10:01:0{k}.002000Z",
                annotations={
                    "authorization.k8s.io/decision": hostile("decision"),
                    "authorization.k8s.io/reason": _reason(
                        hostile("binding"), hostile("role"), "x"
                    ),
                    "audittui/server": hostile("server"),
                    "authentication.openshift.io/username": hostile("login"),
                },
            )
        )
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in lines))


COMPLETED = sorted(VALUE_FIELDS | {"binding", "role"})
LEAKS = [
    re.compile(rb"\x1b\](?!22;)"),  # any OSC but the pointer shape Textual sets (OSC 22)
    re.compile(rb"\x1b\[2J[a-z]+CSI"),  # a log's clear-screen, raw
    re.compile(rb"\xc2\x9b"),  # C1 CSI
    re.compile(b"|".join(map(str.encode, "\u202e\u2066\u200b"))),  # bidi and invisible chars
    re.compile(rb"\x1b\]0;PWNED|\x1b\]52;c;cHduZWQ="),  # the title, the clipboard
]


def _start(tmp_path, log, raw) -> str:
    """The app in a new tmux session, its raw output recorded from the first byte."""
    session = f"audittui-hostile-{uuid.uuid4().hex[:8]}"
    go = tmp_path / f"go-{session}"
    app = (
        f"env XDG_STATE_HOME={tmp_path / 'state'} TERM=xterm-256color "
        f"{sys.executable} -m audittui --no-follow {log}"
    )
    command = f"sh -c 'while [ ! -e {go} ]; do sleep 0.02; done; exec {app}'"
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40", command)
    tmux("pipe-pane", "-o", "-t", session, f"cat >> {raw}")
    go.touch()
    return session


def _bar(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session).splitlines()[0]


def _filter_to(session: str, count: int) -> str:
    return wait_for(session, rf"\b{count} / {TOTAL} events  filter:(?!.*filtering)")


def _clear(session: str) -> None:
    tmux("send-keys", "-t", session, "Escape")  # the list: Esc clears the filter
    wait_for(session, rf"{TOTAL} / {TOTAL} events  ● read once")


def test_hostile_values_in_the_filter_bar_stay_inert_and_exact(tmp_path):
    log = tmp_path / "logs" / "audit.log"
    log.parent.mkdir()
    write_log(log)
    raw = tmp_path / "raw.bin"
    session = _start(tmp_path, log, raw)
    try:
        wait_for(session, rf"{TOTAL} / {TOTAL} events")
        title = tmux("display-message", "-p", "-t", session, "#{pane_title}")
        # Tab completion of every completable field: one candidate, completed and entered.
        for field in COMPLETED:
            tmux("send-keys", "-t", session, "/")
            wait_for(session, r"(?m)^ / Filter  \^s Export\s")
            tmux("send-keys", "-t", session, "-l", f"{field}:x{field}")
            tmux("send-keys", "-t", session, "Tab")
            # The hostile value completed, as its escapes (the bar shows its end), and the
            # markup as text.
            wait_for(session, r"\A.*" + re.escape(f"{field}C1\\u202e[bold red]M"))
            tmux("send-keys", "-t", session, "Enter")
            _filter_to(session, HOSTILE_N)
            _clear(session)
        # The hint line lists candidates as text: markup shown, not parsed.
        tmux("send-keys", "-t", session, "/")
        wait_for(session, r"(?m)^ / Filter  \^s Export\s")
        tmux("send-keys", "-t", session, "-l", "ua:")
        tmux("send-keys", "-t", session, "Tab")
        screen = wait_for(session, r"\A.*\n ua:\S")  # the hint: the candidates, hostile first
        hint = screen.splitlines()[1]
        assert hint.startswith(' ua:"xua-\\x1b]52;c;cHduZWQ=\\x07\\x1b]0;PWNED\\x07'), hint
        tmux("send-keys", "-t", session, "Escape")  # the bar: back to the filter in force
        wait_for(session, r"e Next error  / Filter")  # the list's keys in the footer
        tmux("send-keys", "-t", session, "/")
        wait_for(session, r"(?m)^ / Filter  \^s Export\s")
        tmux("send-keys", "-t", session, "-l", "ua:[")
        tmux("send-keys", "-t", session, "Tab")
        # the first candidate in the bar, both in the hint, their markup as text
        screen = wait_for(session, r"\A ua:\[b\]A\[/b\] *\n ua:\[b\]A\[/b\]  ua:\[i\]B\[/i\]\s*\n")
        tmux("send-keys", "-t", session, "Enter")
        _filter_to(session, 1)
        _clear(session)
        # The summary's drill-down, every grouping: the hostile key is the first row.
        for k, by in enumerate(GROUP_ORDER):
            tmux("send-keys", "-t", session, "2")
            wait_for(session, r"Drill down  b Group by")  # the summary has the keys
            if k:
                tmux("send-keys", "-t", session, "b")
            wait_for(session, rf"{GROUP_TITLES[by]} +EVENTS ▼")
            wait_for(session, r"(?m)^ *\S.* 3 ")  # the rows computed, hostile first (3 events)
            tmux("send-keys", "-t", session, "Enter")
            screen = _filter_to(session, HOSTILE_N)
            bar = _bar(session)
            if by != "code":
                assert "\\x1b]52;c;cHduZWQ=\\x07" in bar, (by, bar)
            _clear(session)
        assert tmux("display-message", "-p", "-t", session, "#{pane_title}") == title
        quit_and_wait(session)

        # The history file: every query escaped, one per line.
        saved = (tmp_path / "state" / "audittui" / "history").read_bytes()
        assert saved.isascii() and b"\x1b" not in saved
        entries = saved.decode().splitlines()
        assert all(line.isprintable() for line in entries)
        for field in COMPLETED:
            assert any(e.startswith(f'{field}:"x{field}-\\x1b]52;c;cHduZWQ=\\x07') for e in entries)
        assert entries[-3:] == ["code:418", *entries[-2:]]  # the last drills: code, binding, role
        assert entries[-2].startswith('binding:"ClusterRoleBinding/xbinding-\\x1b]52;c;')
        assert entries[-1].startswith('role:"ClusterRole/xrole-\\x1b]52;c;')
        # A second run recalls them: shown escaped, each selecting the hostile events.
        session = _start(tmp_path, log, raw)
        wait_for(session, rf"{TOTAL} / {TOTAL} events")
        for back in (1, 2, 3, len(entries)):
            tmux("send-keys", "-t", session, "/")
            wait_for(session, r"(?m)^ / Filter  \^s Export\s")
            for _ in range(back):
                tmux("send-keys", "-t", session, "Up")
            shown = entries[-back]  # its start, or its end once scrolled to the cursor
            wait_for(session, rf"\A.*({re.escape(shown[:60])}|{re.escape(shown[-60:])} *\n)")
            tmux("send-keys", "-t", session, "Enter")
            _filter_to(session, HOSTILE_N)
            _clear(session)
        quit_and_wait(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    data = raw.read_bytes()
    assert len(data) > 10_000  # the app's screens were recorded
    for leak in LEAKS:
        found = leak.search(data)
        assert found is None, (leak.pattern, data[max(0, found.start() - 80) : found.end() + 80])
