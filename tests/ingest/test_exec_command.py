"""The command of a pods/exec request, read from its URI as the API server reads the query
(Go's url.ParseQuery), from the body when only the body has it, bounded and inert for display."""

from __future__ import annotations

import time

import pytest

from audittui.ingest.exec_command import (
    URI_MAX,
    body_argv,
    command_text,
    event_argv,
    is_exec_uri,
    shell_line,
    uri_argv,
)

POD = "/api/v1/namespaces/shop/pods/web-1/exec"


def test_words_are_decoded_in_order_and_the_other_parameters_ignored():
    uri = (
        f"{POD}?command=sh&command=-c&command=cat%20%2Fvar%2Frun%2Fsecrets%2Fkubernetes.io"
        "%2Fserviceaccount%2Ftoken&container=c&stdin=true&stdout=true&tty=true"
    )
    assert uri_argv(uri) == ["sh", "-c", "cat /var/run/secrets/kubernetes.io/serviceaccount/token"]


def test_plus_is_a_space_and_an_escaped_plus_a_plus():
    assert uri_argv(f"{POD}?command=echo+a%2Bb&command=x+%2B+y") == ["echo a+b", "x + y"]


def test_a_key_counts_after_decoding_as_it_does_for_the_server():
    # comm%61nd is "command" to the API server: a word hidden this way is still read.
    assert uri_argv(f"{POD}?comm%61nd=cat&command=%2Fetc%2Fshadow") == ["cat", "/etc/shadow"]


def test_pairs_the_server_drops_are_dropped():
    # A bad % escape, or a semicolon (Go 1.17+), makes the pair an error the server skips.
    uri = f"{POD}?command=a&command=b%zz&command=c;d&command=%4&command=e"
    assert uri_argv(uri) == ["a", "e"]


def test_empty_words_and_repeated_keys_are_kept():
    assert uri_argv(f"{POD}?command=&command=ls&command") == ["", "ls", ""]


def test_a_hash_is_query_text_as_in_a_request_line():
    assert uri_argv(f"{POD}?command=echo&command=a#b") == ["echo", "a#b"]


def test_bytes_that_are_not_utf8_become_replacement_characters():
    assert uri_argv(f"{POD}?command=%ff%41") == ["\ufffdA"]


def test_no_query_or_no_command_is_no_command():
    assert uri_argv(POD) == []
    assert uri_argv(f"{POD}?container=c&stdin=true") == []


@pytest.mark.parametrize(
    "uri, is_exec",
    [
        (POD, True),
        (POD + "?command=ls", True),
        ("api/v1/namespaces/kube-system/pods/cilium-x/exec?command=cilium", True),  # no slash
        ("https://10.0.0.1:6443/api/v1/namespaces/a/pods/b/exec?command=id", True),
        ("/api/v1/namespaces/a/pods/b/attach?container=c", False),
        ("/api/v1/namespaces/a/pods/b/log?command=x", False),
        ("/api/v1/namespaces/a/configmaps/exec", False),  # a configmap named exec
        ("/api/v1/namespaces/a/pods/exec", False),  # a pod named exec, not its subresource
    ],
)
def test_exec_paths(uri, is_exec):
    assert is_exec_uri(uri) is is_exec


def test_an_event_without_an_object_ref_is_judged_by_its_path():
    """The API server's legacy text lines carry a URI and a namespace, no resource."""
    legacy = {
        "requestURI": "api/v1/namespaces/a/pods/b/exec?command=id",
        "objectRef": {"namespace": "a"},
    }
    assert event_argv(legacy) == ["id"]
    assert event_argv({"requestURI": "/api/v1/namespaces/a/pods/b/log?command=id"}) == []


def test_the_uri_wins_over_the_body_and_the_body_fills_in_without_it():
    ref = {"resource": "pods", "subresource": "exec", "namespace": "a", "name": "b"}
    both = {
        "objectRef": ref,
        "requestURI": POD + "?command=id",
        "requestObject": {"command": ["ls"]},
    }
    assert event_argv(both) == ["id"]
    gke = {"objectRef": ref, "requestURI": POD, "requestObject": {"command": ["cat", 7, "/x"]}}
    assert event_argv(gke) == ["cat", "/x"]  # strings only: a hostile body has any type
    other = {
        "objectRef": {"resource": "pods", "subresource": "log"},
        "requestURI": POD + "?command=id",
    }
    assert event_argv(other) == []
    assert event_argv("not an event") == [] and event_argv({"requestURI": 5}) == []
    assert body_argv({"command": "sh"}) == ["sh"] and body_argv({"command": {"a": 1}}) == []


def test_the_shell_line_quotes_words_and_makes_hostile_text_visible():
    argv = ["sh", "-c", "cat /etc/shadow; echo it's", "\x1b[2J\u202ex", "[bold]red[/]"]
    line = shell_line(argv)
    assert line == "sh -c 'cat /etc/shadow; echo it'\\''s' '\\x1b[2J\\u202ex' '[bold]red[/]'"
    assert "\x1b" not in line and "\u202e" not in line
    assert shell_line(["a" * 50, "b"], limit=20) == "a" * 19 + "…"
    assert command_text(["sh", "-c", "a b"]) == "sh -c a b"


def test_a_huge_hostile_uri_is_read_in_linear_time_up_to_its_bound():
    """1 MiB of command words and escapes: bounded, read once. Measured, loosely: a URI ten
    times longer (cut at URI_MAX) must not take a hundred times longer."""
    word = "command=" + "%2F%25%zz+" * 10 + "&"  # bad escapes too: dropped pairs
    small = POD + "?" + word * (100_000 // len(word))
    big = POD + "?" + word * (URI_MAX // len(word) + 5000)

    def cost(uri: str) -> float:
        start = time.perf_counter()
        uri_argv(uri)
        return time.perf_counter() - start

    argv = uri_argv(big)
    assert argv == []  # every pair holds a bad escape
    good = POD + "?" + ("command=" + "x" * 1000 + "&") * 2000  # 2 MB: past the bound
    words = uri_argv(good)
    assert 0 < len(words) < 2000 and sum(map(len, words)) < URI_MAX
    assert cost(big) < 100 * max(cost(small), 1e-4)
