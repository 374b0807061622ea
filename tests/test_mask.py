"""Secrets are masked before anything is shown, copied or exported."""

from __future__ import annotations

import copy

import orjson
from conftest import v1_event
from hypothesis import given
from hypothesis import strategies as st

from audittui.mask import mask_event, mask_raw, might_need_mask

PLAIN = "c3VwZXJzZWNyZXQ="


def secret_event(**body) -> dict:
    return v1_event(
        level="RequestResponse",
        objectRef={"resource": "secrets", "namespace": "prod", "name": "db", "apiVersion": "v1"},
        requestObject={"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "db"}, **body},
    )


def test_secret_data_and_string_data_are_masked_keys_kept():
    ev = secret_event(data={"password": PLAIN, "user": "YWRtaW4="}, stringData={"k": "plain"})
    before = copy.deepcopy(ev)
    masked, n = mask_event(ev)
    assert ev == before  # the input is untouched
    assert n == 3
    body = masked["requestObject"]
    assert set(body["data"]) == {"password", "user"}
    assert PLAIN not in orjson.dumps(masked).decode() and "plain" not in body["stringData"]["k"]
    assert "16 bytes" in body["data"]["password"]


def test_last_applied_annotation_of_a_secret_is_masked():
    applied = orjson.dumps({"kind": "Secret", "data": {"password": PLAIN}}).decode()
    ev = secret_event(
        metadata={
            "name": "db",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": applied,
                "team": "a",
            },
        },
        data={"password": PLAIN},
    )
    masked, n = mask_event(ev)
    assert PLAIN not in orjson.dumps(masked).decode()
    assert masked["requestObject"]["metadata"]["annotations"]["team"] == "a"
    assert n == 2


def test_secret_lists_watch_events_and_patches():
    listing = v1_event(
        objectRef={"resource": "secrets", "namespace": "prod", "apiVersion": "v1"},
        responseObject={
            "kind": "SecretList",
            "items": [
                {"kind": "Secret", "data": {"a": PLAIN}},
                {"metadata": {"name": "x"}, "data": {"b": PLAIN}},
            ],
        },
    )
    masked, n = mask_event(listing)
    # List items from the API server carry no kind: still Secrets.
    assert n == 2 and PLAIN not in orjson.dumps(masked).decode()
    # A patch body of a Secret has no kind; the resource says what it is.
    patch = v1_event(
        verb="patch",
        objectRef={"resource": "secrets", "namespace": "prod", "name": "db", "apiVersion": "v1"},
        requestObject={"data": {"password": PLAIN}},
    )
    masked, n = mask_event(patch)
    assert n == 1 and masked["requestObject"]["data"]["password"] != PLAIN
    assert "kind" not in masked["requestObject"]


def test_tokens_and_configmap_credentials():
    token = v1_event(
        objectRef={"resource": "serviceaccounts", "subresource": "token", "name": "sa"},
        responseObject={
            "kind": "TokenRequest",
            "status": {"token": "eyJhbGciOi", "expirationTimestamp": "x"},
        },
    )
    masked, n = mask_event(token)
    assert n == 1 and "eyJ" not in orjson.dumps(masked).decode()
    assert masked["responseObject"]["status"]["expirationTimestamp"] == "x"
    cm = v1_event(
        objectRef={"resource": "configmaps", "name": "app"},
        requestObject={
            "kind": "ConfigMap",
            "data": {"AWS_SECRET_ACCESS_KEY": "abc", "color": "blue"},
        },
    )
    masked, n = mask_event(cm)
    assert n == 1
    assert masked["requestObject"]["data"]["color"] == "blue"
    assert masked["requestObject"]["data"]["AWS_SECRET_ACCESS_KEY"] != "abc"


def test_ordinary_events_are_untouched():
    ev = v1_event(requestObject={"kind": "Pod", "spec": {"containers": [{"name": "c"}]}})
    masked, n = mask_event(ev)
    assert n == 0 and masked == ev
    raw = orjson.dumps(ev)
    assert mask_raw(raw) is raw


KEYS = st.sampled_from(
    [
        "data",
        "stringData",
        "token",
        "kind",
        "metadata",
        "status",
        "password",
        "items",
        "x",
        "annotations",
        "Authorization",
    ]
)
VALUES = st.recursive(
    st.one_of(
        st.text(max_size=8),
        st.integers(-1000, 1000),
        st.none(),
        st.sampled_from(["Secret", "ConfigMap", "TokenRequest"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(KEYS | st.text(max_size=5), children, max_size=4),
    ),
    max_leaves=20,
)


@given(body=VALUES, resource=st.sampled_from(["secrets", "pods", "configmaps"]))
def test_the_cheap_precheck_never_misses(body, resource):
    ev = v1_event(objectRef={"resource": resource}, requestObject=body)
    masked, n = mask_event(ev)
    raw = orjson.dumps(ev)
    if n:
        assert might_need_mask(raw)
        assert orjson.loads(mask_raw(raw)) == masked
    else:
        assert orjson.loads(mask_raw(raw)) == ev
