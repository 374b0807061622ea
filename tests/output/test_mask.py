"""Masking of secrets in events (audittui.output.mask): what is masked, what is left alone, and that
the cheap bytes pre-check never lets through an event that masking would change."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import orjson
import pytest
from conftest import SAMPLES, v1_event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audittui.output.mask import mask_event, mask_raw, might_need_mask

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def is_mask(value: object, size: int) -> bool:
    """``value`` is the placeholder for an original of ``size`` characters."""
    return isinstance(value, str) and "masked" in value and f"({size} bytes)" in value


def masked(event: dict) -> tuple[dict, int]:
    """mask_event, checking on the way that it leaves its input alone and that the bytes
    pre-check and mask_raw agree with it."""
    before = copy.deepcopy(event)
    out, count = mask_event(event)
    assert event == before, "mask_event mutated its input"
    raw = orjson.dumps(event)
    if count:
        assert might_need_mask(raw), "pre-check said no, but mask_event masked something"
        # Most events carry authorization.k8s.io/* annotations, which the pre-check may find
        # on their own; masking never looks at them, so the pre-check must do without them.
        bare = {k: v for k, v in event.items() if k != "annotations"}
        assert mask_event(bare)[1] == count
        assert might_need_mask(orjson.dumps(bare)), "pre-check relied on the annotations"
        assert orjson.loads(mask_raw(raw)) == out
    else:
        assert out == event
        assert mask_raw(raw) is raw
    return out, count


def secret_event(body: dict | list, *, verb: str = "create", **ref: str) -> dict:
    return v1_event(
        level="RequestResponse",
        verb=verb,
        requestURI="/api/v1/namespaces/prod/secrets",
        objectRef={"resource": "secrets", "namespace": "prod", "apiVersion": "v1", **ref},
        requestObject=body,
    )


# --- Secrets ------------------------------------------------------------------------------


def test_secret_data_and_string_data_are_masked_keys_kept():
    body = {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": "db", "namespace": "prod", "labels": {"app": "db"}},
        "type": "Opaque",
        "data": {"password": "c3VwZXJzZWNyZXQ=", "user": "YWRtaW4="},
        "stringData": {"dsn": "postgres://admin:hunter2@db"},
    }
    out, count = masked(secret_event(body, name="db"))
    obj = out["requestObject"]
    assert count == 3
    assert list(obj["data"]) == ["password", "user"]
    assert is_mask(obj["data"]["password"], 16) and is_mask(obj["data"]["user"], 8)
    assert is_mask(obj["stringData"]["dsn"], len("postgres://admin:hunter2@db"))
    # Everything that is not secret stays as it was.
    assert obj["metadata"] == body["metadata"] and obj["type"] == "Opaque"
    assert out["objectRef"] == secret_event(body, name="db")["objectRef"]
    text = orjson.dumps(out)
    assert b"c3VwZXJzZWNyZXQ=" not in text and b"hunter2" not in text


def test_secret_found_by_kind_anywhere_in_a_body():
    """Not only under a secrets request: any object whose kind is Secret (a Secret in a
    generic List, the object of a WatchEvent, the response of a different resource)."""
    event = v1_event(
        level="RequestResponse",
        objectRef={"resource": "events", "namespace": "prod", "apiVersion": "v1"},
        responseObject={
            "kind": "List",
            "items": [
                {"kind": "Secret", "metadata": {"name": "a"}, "data": {"k": "dmFsdWU="}},
                {"type": "ADDED", "object": {"kind": "Secret", "stringData": {"k": "plain"}}},
                {"kind": "Pod", "metadata": {"name": "p"}, "data": {"k": "not-a-secret"}},
            ],
        },
    )
    out, count = masked(event)
    items = out["responseObject"]["items"]
    assert count == 2
    assert is_mask(items[0]["data"]["k"], 8)
    assert is_mask(items[1]["object"]["stringData"]["k"], 5)
    assert items[2] == event["responseObject"]["items"][2]


def test_secret_list_items_without_kind_are_masked():
    """The API server writes list items without kind/apiVersion: a SecretList's items are
    only known to be Secrets from objectRef.resource."""
    event = v1_event(
        level="RequestResponse",
        verb="list",
        requestURI="/api/v1/namespaces/prod/secrets",
        objectRef={"resource": "secrets", "namespace": "prod", "apiVersion": "v1"},
        responseObject={
            "kind": "SecretList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "42"},
            "items": [
                {"metadata": {"name": f"s{i}"}, "data": {"token": "dG9rZW4=", "ca.crt": "Q0E="}}
                for i in range(3)
            ],
        },
    )
    out, count = masked(event)
    assert count == 6
    for item in out["responseObject"]["items"]:
        assert is_mask(item["data"]["token"], 8) and is_mask(item["data"]["ca.crt"], 4)
    assert out["responseObject"]["metadata"] == {"resourceVersion": "42"}


def test_secret_patch_body_without_kind_is_masked():
    """Merge and apply patches of a Secret are bare objects (no kind)."""
    out, count = masked(secret_event({"data": {"password": "bmV3"}}, verb="patch", name="db"))
    assert count == 1 and is_mask(out["requestObject"]["data"]["password"], 4)


def test_secret_json_patch_values_are_masked():
    ops = [
        {"op": "replace", "path": "/data/password", "value": "bmV3LXNlY3JldA=="},
        {"op": "add", "path": "/stringData", "value": {"pin": "1234"}},
    ]
    out, _ = masked(secret_event(ops, verb="patch", name="db"))
    assert b"bmV3LXNlY3JldA==" not in orjson.dumps(out)
    assert b"1234" not in orjson.dumps(out)


def test_non_string_secret_values_are_masked_by_their_json_length():
    body = {"kind": "Secret", "data": {"n": 12345, "none": None, "obj": {"a": [1, 2]}}}
    out, count = masked(secret_event(body))
    data = out["requestObject"]["data"]
    assert count == 3
    assert is_mask(data["n"], 5) and is_mask(data["none"], 4)
    assert is_mask(data["obj"], len(b'{"a":[1,2]}'))


def test_last_applied_annotation_of_a_secret_is_masked():
    applied = json.dumps({"kind": "Secret", "data": {"password": "c3VwZXJzZWNyZXQ="}})
    meta = {"name": "db", "annotations": {LAST_APPLIED: applied, "team": "payments"}}
    body = {"kind": "Secret", "metadata": meta, "data": {"password": "c3VwZXJzZWNyZXQ="}}
    out, count = masked(
        v1_event(
            level="RequestResponse",
            objectRef={"resource": "secrets", "namespace": "prod", "apiVersion": "v1"},
            responseObject=body,
        )
    )
    annotations = out["responseObject"]["metadata"]["annotations"]
    assert count == 2
    assert is_mask(annotations[LAST_APPLIED], len(applied))
    assert annotations["team"] == "payments"
    assert b"c3VwZXJzZWNyZXQ=" not in orjson.dumps(out)


def test_last_applied_annotation_of_other_kinds_is_kept():
    applied = json.dumps({"kind": "Deployment", "spec": {"replicas": 3}})
    body = {"kind": "Deployment", "metadata": {"annotations": {LAST_APPLIED: applied}}}
    event = v1_event(
        level="Request",
        objectRef={"resource": "deployments", "apiGroup": "apps", "apiVersion": "v1"},
        requestObject=body,
    )
    out, count = masked(event)
    assert count == 0 and out == event


# --- Tokens and passwords -----------------------------------------------------------------


def test_token_request_status_token_is_masked():
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJl"
    event = v1_event(
        level="RequestResponse",
        verb="create",
        requestURI="/api/v1/namespaces/prod/serviceaccounts/builder/token",
        objectRef={
            "resource": "serviceaccounts",
            "namespace": "prod",
            "name": "builder",
            "apiVersion": "v1",
            "subresource": "token",
        },
        requestObject={
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600},
        },
        responseObject={
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600},
            "status": {"token": jwt, "expirationTimestamp": "2024-05-01T11:00:00Z"},
        },
    )
    out, count = masked(event)
    status = out["responseObject"]["status"]
    assert count == 1
    assert is_mask(status["token"], len(jwt))
    assert status["expirationTimestamp"] == "2024-05-01T11:00:00Z"
    assert out["requestObject"] == event["requestObject"]
    assert out["responseObject"]["spec"] == event["responseObject"]["spec"]


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "access_token",
        "id_token",
        "refresh_token",
        "client-key-data",
        "password",
        "Password",
        "authorization",
        "Authorization",
    ],
)
def test_token_fields_are_masked_at_any_depth(key):
    event = v1_event(
        level="Request",
        objectRef={"resource": "widgets", "apiGroup": "example.com", "apiVersion": "v1"},
        requestObject={"kind": "Widget", "spec": {"auth": [{key: "s3cr3t-value", "user": "u"}]}},
    )
    out, count = masked(event)
    entry = out["requestObject"]["spec"]["auth"][0]
    assert count == 1 and is_mask(entry[key], 12) and entry["user"] == "u"


def test_public_and_non_string_token_fields_are_kept():
    """Certificates are public; only strings are replaced outside Secret data; an empty
    token hides nothing."""
    body = {
        "kind": "Config",
        "users": [
            {
                "client-certificate-data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t",
                "certificate-authority-data": "Q0E=",
                "token": "",
                "password": None,
                "tokenFile": "/var/run/secrets/token",
                "refresh_token": {"nested": True},
            }
        ],
    }
    event = v1_event(level="Request", requestObject=body)
    out, count = masked(event)
    assert count == 0 and out == event


def test_fields_outside_request_and_response_bodies_are_kept():
    event = v1_event(
        objectRef={"resource": "secrets", "namespace": "prod", "name": "token", "apiVersion": "v1"},
        user={"username": "system:serviceaccount:prod:token", "extra": {"token": ["abc"]}},
        annotations={"authorization.k8s.io/reason": 'RBAC: allowed to get "secrets"'},
    )
    out, count = masked(event)
    assert count == 0 and out == event


# --- ConfigMaps ---------------------------------------------------------------------------


def test_config_map_credential_keys_are_masked():
    data = {
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "aws_secret_access_key": "wJalrXUtnFEMI",
        "db.password": "hunter2",
        "DB_PASSWD": "hunter3",
        "client_secret": "xyz",
        "github-token": "ghp_123",
        "apiKey": "k1",
        "api_key": "k2",
        "PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----",
        "log_level": "debug",
        "app.properties": "color=blue\n",
    }
    event = v1_event(
        level="Request",
        verb="create",
        objectRef={"resource": "configmaps", "namespace": "prod", "apiVersion": "v1"},
        requestObject={"kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": data},
    )
    out, count = masked(event)
    got = out["requestObject"]["data"]
    kept = {"log_level", "app.properties"}
    assert count == len(data) - len(kept)
    assert list(got) == list(data)
    for key, value in data.items():
        if key in kept:
            assert got[key] == value
        else:
            assert is_mask(got[key], len(value)), key


@pytest.mark.parametrize(
    "key", ["AWS_ACCESS_KEY_ID", "apiKey", "API_KEY", "private_key", "PrivateKey", "passwd"]
)
def test_each_config_map_credential_key_alone(key):
    event = v1_event(
        level="Request",
        requestURI="/api/v1/namespaces/prod/configmaps",
        objectRef={"resource": "configmaps", "namespace": "prod", "apiVersion": "v1"},
        requestObject={"kind": "ConfigMap", "data": {key: "value", "color": "blue"}},
    )
    out, count = masked(event)
    assert count == 1 and out["requestObject"]["data"]["color"] == "blue"
    assert is_mask(out["requestObject"]["data"][key], 5)


def test_config_map_without_credential_keys_is_kept():
    event = v1_event(
        level="Request",
        objectRef={"resource": "configmaps", "namespace": "prod", "apiVersion": "v1"},
        requestObject={
            "kind": "ConfigMap",
            "data": {"nginx.conf": "server { listen 80; }", "feature-flags": "a,b"},
        },
    )
    out, count = masked(event)
    assert count == 0 and out == event


def test_falco_configmap_without_sensitive_values_is_kept():
    path = SAMPLES / "falco-k8s-audit" / "create_configmap_no_sensitive_values.json"
    for raw in path.read_bytes().splitlines():
        if raw.strip():
            event = orjson.loads(raw)
            assert masked(event) == (event, 0)
            assert mask_raw(raw) is raw


def test_falco_configmap_with_credentials_in_values_is_masked():
    path = SAMPLES / "falco-k8s-audit" / "create_configmap_sensitive_values.json"
    for raw in path.read_bytes().splitlines():
        assert b"MY-KEY" not in mask_raw(raw)


# --- Whole events, real samples, mask_raw -------------------------------------------------


def test_metadata_level_secret_event_is_unchanged():
    raw = (SAMPLES / "falco-k8s-audit" / "create_secret.json").read_bytes().splitlines()[0]
    assert might_need_mask(raw)  # it names secrets: the pre-check cannot know more
    assert mask_raw(raw) is raw
    event = orjson.loads(raw)
    assert mask_event(event) == (event, 0)


def _sample_events() -> list[dict]:
    """Every audit event in the shared samples that is one JSON object per line."""
    events = []
    for path in sorted(Path(SAMPLES).rglob("*")):
        if not path.is_file() or path.suffix not in (".json", ".log"):
            continue
        for line in path.read_bytes().splitlines():
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, dict) and "auditID" in value:
                events.append(value)
    return events


def test_samples_are_never_mutated_and_precheck_is_sound():
    events = _sample_events()
    assert len(events) > 50
    for event in events:
        masked(event)


def test_mask_raw_of_a_secret_line():
    body = {"kind": "Secret", "metadata": {"name": "db"}, "data": {"password": "aHVudGVyMg=="}}
    raw = orjson.dumps(secret_event(body))
    out = mask_raw(raw)
    assert out != raw and b"aHVudGVyMg==" not in out and b"\n" not in out
    event = orjson.loads(out)
    assert is_mask(event["requestObject"]["data"]["password"], 12)
    assert event["auditID"] == orjson.loads(raw)["auditID"]


def test_non_secret_events_are_untouched():
    pod = {"kind": "Pod", "metadata": {"name": "p1"}, "spec": {"containers": []}}
    event = v1_event(level="RequestResponse", responseObject=pod, annotations=None)
    raw = orjson.dumps(event)
    assert not might_need_mask(raw)
    assert mask_raw(raw) is raw
    assert masked(event) == (event, 0)


def test_precheck_skips_ordinary_events_with_an_authorization_decision():
    pod = {"kind": "Pod", "metadata": {"name": "p1"}, "spec": {"containers": []}}
    event = v1_event(
        level="RequestResponse",
        responseObject=pod,
        annotations={
            "authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": 'RBAC: allowed by ClusterRoleBinding "x"',
        },
    )
    assert not might_need_mask(orjson.dumps(event))


# --- Soundness of the pre-check -----------------------------------------------------------

_WORDS = [
    "Secret",
    "secrets",
    "SecretList",
    "ConfigMap",
    "configmaps",
    "data",
    "stringData",
    "binaryData",
    "metadata",
    "annotations",
    LAST_APPLIED,
    "kind",
    "items",
    "object",
    "status",
    "token",
    "Token",
    "access_token",
    "id_token",
    "refresh_token",
    "client-key-data",
    "client-certificate-data",
    "password",
    "PASSWORD",
    "Authorization",
    "authorization",
    "aws_secret_access_key",
    "apiKey",
    "private_key",
    "passwd",
    "x",
    "",
]
# Words that shape an object but hold no hint of the pre-check.
_STRUCTURE = ["kind", "data", "stringData", "binaryData", "items", "metadata", "annotations"]
_STRUCTURE += ["object", "status", LAST_APPLIED]


def _case(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.lower(), word.upper(), word.title()])


@st.composite
def _events(draw: st.DrawFn) -> dict:
    """An event whose bodies use a few words of ``_WORDS`` (in any case) and some filler: few
    words per event, so that each hint of the pre-check has to pull its own weight."""
    vocab = draw(st.lists(st.sampled_from(_WORDS).flatmap(_case), min_size=1, max_size=2))
    word = st.sampled_from(vocab) | st.sampled_from(_STRUCTURE) | st.text("abxyz-_.", max_size=5)
    scalar = st.none() | st.booleans() | st.integers(-5, 10**6) | word
    body = st.recursive(
        scalar,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(word, inner, max_size=5),
        max_leaves=25,
    )
    # No annotations: the usual authorization.k8s.io/decision one would make the pre-check
    # say yes to every event and this test prove nothing.
    return v1_event(
        level="RequestResponse",
        requestURI="/apis/example.com/v1/things",
        objectRef={"resource": draw(word), "namespace": "ns", "apiVersion": "v1"},
        requestObject=draw(body),
        responseObject=draw(body),
        annotations=None,
    )


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=_events())
def test_precheck_never_misses_what_mask_event_masks(event):
    masked(event)  # asserts: no mutation; count > 0 implies might_need_mask; mask_raw agrees


def test_precheck_with_a_non_ascii_key_that_lowercases_to_a_token_key():
    event = v1_event(level="Request", requestObject={"to\u212aen": "abc"}, annotations=None)
    masked(event)


def test_precheck_with_json_escaped_letters():
    raw = b'{"kind":"Event","requestObject":{"kind":"\\u0053ecret","data":{"a":"eA=="}}}'
    assert mask_event(orjson.loads(raw))[1] == 1
    assert might_need_mask(raw)
