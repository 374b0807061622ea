"""RBAC rule matching, compaction and audit2rbac's generator: liggitt/audit2rbac's
``pkg/process_test.go`` table (TestProcessOptions, one case each, the same existing RBAC) and
TestProcess, ``cmd/audit2rbac/audit2rbac_test.go`` TestEventToAttributes, and the authorizer's
matching rules the generator relies on."""

from __future__ import annotations

from dataclasses import replace

import pytest

from audittui.analyses.rbac_rules import (
    GROUP,
    Attributes,
    Authorizer,
    Binding,
    Options,
    RBACObjects,
    Role,
    Rule,
    Subject,
    compact_rules,
    event_to_attributes,
    generate,
    rule_allows,
    sort_requests,
    split_service_account,
    user_subject,
)

BOB = {"user": "bob", "groups": ("system:authenticated",)}


def res(verb: str, resource: str, name: str = "", ns: str = "", group: str = "", sub: str = ""):
    return Attributes(
        resource_request=True,
        verb=verb,
        resource=resource,
        name=name,
        namespace=ns,
        api_group=group,
        subresource=sub,
        **BOB,
    )


def url(verb: str, path: str) -> Attributes:
    return Attributes(verb=verb, path=path, **BOB)


def rule(*verbs: str, groups=(), resources=(), names=(), urls=()) -> Rule:
    return Rule.build(verbs, groups, resources, names, urls)


# The existing RBAC of process_test.go: cluster-admin to system:masters, and a discovery role
# with exact URLs to system:authenticated.
EXISTING = RBACObjects(
    cluster_roles=[
        Role(
            "cluster-admin", rules=[rule("*", groups=["*"], resources=["*"]), rule("*", urls=["*"])]
        ),
        Role(
            "system:discovery",
            rules=[
                rule(
                    "get",
                    urls=[
                        "/healthz",
                        "/version",
                        "/swaggerapi",
                        "/swaggerapi/*",
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                    ],
                )
            ],
        ),
    ],
    cluster_role_bindings=[
        Binding(
            "cluster-admin",
            "ClusterRole",
            "cluster-admin",
            [Subject("Group", "system:masters", api_group=GROUP)],
        ),
        Binding(
            "system:discovery",
            "ClusterRole",
            "system:discovery",
            [Subject("Group", "system:authenticated", api_group=GROUP)],
        ),
    ],
)

DEFAULT = Options()
NO_NAMES = Options(expand_names=False)
NO_NAMESPACES = Options(expand_namespaces=False)
NEITHER = Options(expand_names=False, expand_namespaces=False)

# (name, options, requests, expected ClusterRole rules or None, expected Roles {ns: rules})
CASES = [
    ("empty", DEFAULT, [], None, {}),
    (
        "already allowed by existing",
        DEFAULT,
        [url("get", "/api"), url("get", "/apis")],
        None,
        {},
    ),
    ("nonresource", DEFAULT, [url("get", "/foo")], [rule("get", urls=["/foo"])], {}),
    (
        "cluster-scoped named resource",
        DEFAULT,
        [
            res("get", "nodes", "mynode"),
            res("get", "storageclasses", "mysc", group="storage.k8s.io"),
        ],
        [
            rule("get", groups=[""], resources=["nodes"], names=["mynode"]),
            rule("get", groups=["storage.k8s.io"], resources=["storageclasses"], names=["mysc"]),
        ],
        {},
    ),
    (
        "cluster-scoped named resources with name expansion",
        DEFAULT,
        [
            res("get", "nodes", "node1"),
            res("get", "nodes", "node2"),
            res("get", "storageclasses", "sc1", group="storage.k8s.io"),
            res("get", "storageclasses", "sc2", group="storage.k8s.io"),
        ],
        [
            rule("get", groups=[""], resources=["nodes"]),
            rule("get", groups=["storage.k8s.io"], resources=["storageclasses"]),
        ],
        {},
    ),
    (
        "cluster-scoped named resources without name expansion",
        NO_NAMES,
        [
            res("get", "nodes", "node1"),
            res("get", "nodes", "node2"),
            res("get", "storageclasses", "sc1", group="storage.k8s.io"),
            res("get", "storageclasses", "sc2", group="storage.k8s.io"),
        ],
        [
            rule("get", groups=[""], resources=["nodes"], names=["node1", "node2"]),
            rule(
                "get", groups=["storage.k8s.io"], resources=["storageclasses"], names=["sc1", "sc2"]
            ),
        ],
        {},
    ),
    (
        "cluster-scoped named resources without name expansion with covering verb expansion",
        NO_NAMES,
        [
            # lists sort first, expand to get+list+watch, and cover the gets
            res("get", "nodes", "node1"),
            res("get", "nodes", "node2"),
            res("get", "storageclasses", "sc1", group="storage.k8s.io"),
            res("get", "storageclasses", "sc2", group="storage.k8s.io"),
            res("list", "nodes"),
            res("list", "storageclasses", group="storage.k8s.io"),
        ],
        [
            rule("get", "list", "watch", groups=[""], resources=["nodes"]),
            rule("get", "list", "watch", groups=["storage.k8s.io"], resources=["storageclasses"]),
        ],
        {},
    ),
    (
        "namespaced named resources",
        DEFAULT,
        [res("get", "configmaps", "cm1", "ns1"), res("get", "pods", "pod1", "ns2")],
        None,
        {
            "ns1": [rule("get", groups=[""], resources=["configmaps"], names=["cm1"])],
            "ns2": [rule("get", groups=[""], resources=["pods"], names=["pod1"])],
        },
    ),
    (
        "namespaced named resources with namespace and name expansion",
        DEFAULT,
        [
            res("get", "configmaps", "cm1", "ns1"),  # namespaced single-name access
            res("get", "pods", "pod1", "ns1"),  # cluster-wide across names: pods, deployments
            res("get", "pods", "pod2", "ns1"),
            res("get", "pods", "pod1", "ns2"),
            res("get", "pods", "pod2", "ns2"),
            res("get", "deployments", "dep1", "ns1", "apps"),
            res("get", "deployments", "dep2", "ns1", "apps"),
            res("get", "deployments", "dep1", "ns2", "apps"),
            res("get", "deployments", "dep2", "ns2", "apps"),
        ],
        [
            rule("get", groups=[""], resources=["pods"]),
            rule("get", groups=["apps"], resources=["deployments"]),
        ],
        {"ns1": [rule("get", groups=[""], resources=["configmaps"], names=["cm1"])]},
    ),
    (
        "namespaced named resources with namespace expansion",
        NO_NAMES,
        [
            res("get", "configmaps", "cm1", "ns1"),  # namespaced single-name access
            res("get", "pods", "pod1", "ns2"),  # cluster-wide access to these names
            res("get", "pods", "pod1", "ns3"),
            res("get", "deployments", "dep1", "ns2", "apps"),
            res("get", "deployments", "dep1", "ns3", "apps"),
            res("get", "pods", "pod2", "ns2"),  # namespaced access to these names
            res("get", "pods", "pod3", "ns3"),
            res("get", "deployments", "dep2", "ns2", "apps"),
            res("get", "deployments", "dep3", "ns3", "apps"),
        ],
        [
            rule("get", groups=[""], resources=["pods"], names=["pod1"]),
            rule("get", groups=["apps"], resources=["deployments"], names=["dep1"]),
        ],
        {
            "ns1": [rule("get", groups=[""], resources=["configmaps"], names=["cm1"])],
            "ns2": [
                rule("get", groups=[""], resources=["pods"], names=["pod2"]),
                rule("get", groups=["apps"], resources=["deployments"], names=["dep2"]),
            ],
            "ns3": [
                rule("get", groups=[""], resources=["pods"], names=["pod3"]),
                rule("get", groups=["apps"], resources=["deployments"], names=["dep3"]),
            ],
        },
    ),
    (
        "namespaced named resources with name expansion",
        NO_NAMESPACES,
        [
            res("get", "configmaps", "cm1", "ns1"),  # namespaced single-name access
            res("get", "pods", "pod1", "ns2"),  # namespaced access to any name
            res("get", "pods", "pod2", "ns2"),
            res("get", "pods", "pod1", "ns3"),
            res("get", "pods", "pod3", "ns3"),
            res("get", "deployments", "dep1", "ns2", "apps"),
            res("get", "deployments", "dep2", "ns2", "apps"),
            res("get", "deployments", "dep1", "ns3", "apps"),
            res("get", "deployments", "dep3", "ns3", "apps"),
        ],
        None,
        {
            "ns1": [rule("get", groups=[""], resources=["configmaps"], names=["cm1"])],
            "ns2": [
                rule("get", groups=[""], resources=["pods"]),
                rule("get", groups=["apps"], resources=["deployments"]),
            ],
            "ns3": [
                rule("get", groups=[""], resources=["pods"]),
                rule("get", groups=["apps"], resources=["deployments"]),
            ],
        },
    ),
    (
        "namespaced named resources without name or namespace expansion",
        NEITHER,
        [
            res("get", "configmaps", "cm1", "ns1"),
            res("get", "pods", "pod1", "ns2"),
            res("get", "pods", "pod2", "ns2"),
            res("get", "pods", "pod1", "ns3"),
            res("get", "pods", "pod3", "ns3"),
            res("get", "deployments", "dep1", "ns2", "apps"),
            res("get", "deployments", "dep2", "ns2", "apps"),
            res("get", "deployments", "dep1", "ns3", "apps"),
            res("get", "deployments", "dep3", "ns3", "apps"),
        ],
        None,
        {
            "ns1": [rule("get", groups=[""], resources=["configmaps"], names=["cm1"])],
            "ns2": [
                rule("get", groups=[""], resources=["pods"], names=["pod1", "pod2"]),
                rule("get", groups=["apps"], resources=["deployments"], names=["dep1", "dep2"]),
            ],
            "ns3": [
                rule("get", groups=[""], resources=["pods"], names=["pod1", "pod3"]),
                rule("get", groups=["apps"], resources=["deployments"], names=["dep1", "dep3"]),
            ],
        },
    ),
    (
        "namespaced named resources without name or namespace expansion with covering cluster "
        "operation",
        NEITHER,
        [
            res("get", "configmaps", "cm1", "ns1"),
            res("get", "pods", "pod1", "ns2"),
            res("get", "pods", "pod2", "ns2"),
            res("get", "pods", "pod1", "ns3"),
            res("get", "pods", "pod3", "ns3"),
            res("get", "deployments", "dep1", "ns2", "apps"),
            res("get", "deployments", "dep2", "ns2", "apps"),
            res("get", "deployments", "dep1", "ns3", "apps"),
            res("get", "deployments", "dep3", "ns3", "apps"),
            # lists sort first, expand to list+get+watch, cover the namespaced gets
            res("list", "deployments", group="apps"),
            res("list", "configmaps"),
            res("list", "pods"),
        ],
        [
            rule("get", "list", "watch", groups=[""], resources=["configmaps", "pods"]),
            rule("get", "list", "watch", groups=["apps"], resources=["deployments"]),
        ],
        {},
    ),
]


def _check(generated: RBACObjects, cluster: list[Rule] | None, roles: dict[str, list[Rule]]):
    name = "audit2rbac"
    bob = Subject("User", "bob", api_group=GROUP)
    if cluster is None:
        assert generated.cluster_roles == [] and generated.cluster_role_bindings == []
    else:
        assert [(r.name, r.namespace, r.rules) for r in generated.cluster_roles] == [
            (name, "", cluster)
        ]
        bindings = generated.cluster_role_bindings
        assert [(b.name, b.role_kind, b.role_name, b.subjects) for b in bindings] == [
            (name, "ClusterRole", name, [bob])
        ]
    assert {r.namespace: r.rules for r in generated.roles} == roles
    assert [r.namespace for r in generated.roles] == list(roles)  # in the order created
    assert all(r.name == name for r in generated.roles)
    assert [
        (b.name, b.namespace, b.role_kind, b.role_name, b.subjects) for b in generated.role_bindings
    ] == [(name, ns, "Role", name, [bob]) for ns in roles]


@pytest.mark.parametrize(
    ("options", "requests", "cluster", "roles"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_process_options(options, requests, cluster, roles):
    """TestProcessOptions, case by case."""
    _check(generate(requests, EXISTING, options), cluster, roles)


def test_process_options_has_all_thirteen_cases():
    assert len(CASES) == 13


def test_process():
    """TestProcess (audit2rbac prints its result and checks nothing; this is the result its
    code gives, worked out step by step: see the comments)."""
    requests = [
        url("get", "/api"),  # in the discovery role
        url("get", "/apis"),
        url("get", "/ui"),  # not: in the ClusterRole
        res("create", "nodes"),
        res("create", "nodes"),
        res("get", "nodes", "node1"),
        res("update", "nodes", "node1"),
        res("get", "nodes", "node2"),
        res("update", "nodes", "node2"),
        res("list", "nodes"),
        res("watch", "nodes"),
        # across names and namespaces: cluster-level
        res("list", "pods"),
        res("watch", "pods"),
        res("get", "pods", "pod1", "ns1"),
        res("get", "pods", "pod2", "ns1"),
        res("get", "pods", "pod3", "ns2"),
        res("get", "pods", "pod4", "ns2"),
        res("update", "pods", "pod1", "ns1", sub="status"),
        res("update", "pods", "pod2", "ns1", sub="status"),
        res("update", "pods", "pod3", "ns2", sub="status"),
        res("update", "pods", "pod4", "ns2", sub="status"),
        # a lock's configmap: only in its namespace
        res("create", "configmaps", ns="kube-system"),
        res("get", "configmaps", "mylock", "kube-system"),
        res("update", "configmaps", "mylock", "kube-system"),
        res("list", "configmaps", ns="kube-system"),
        res("watch", "configmaps", ns="kube-system"),
    ]
    generated = generate(requests, EXISTING, DEFAULT)
    # ClusterRole: create nodes; list nodes → get,list,watch (covers the gets and the watch);
    # update node1 → get,patch,update on any node (two names); list pods → get,list,watch;
    # update pods/status in two namespaces on four names → cluster-wide, any name; /ui.
    # Rules with API groups sort before the URL rule ('{A' < '{N' in CompactString).
    cluster = [
        rule("create", "get", "list", "patch", "update", "watch", groups=[""], resources=["nodes"]),
        rule("get", "list", "watch", groups=[""], resources=["pods"]),
        rule("get", "patch", "update", groups=[""], resources=["pods/status"]),
        rule("get", urls=["/ui"]),
    ]
    # kube-system: create; list → get,list,watch (covers get mylock); update mylock, its only
    # name, keeps it. The named rule sorts first ('ResourceNames' < 'Verbs').
    roles = {
        "kube-system": [
            rule("get", "patch", "update", groups=[""], resources=["configmaps"], names=["mylock"]),
            rule("create", "get", "list", "watch", groups=[""], resources=["configmaps"]),
        ]
    }
    _check(generated, cluster, roles)


# -- TestEventToAttributes ----------------------------------------------------------------------


@pytest.mark.parametrize("name", [None, "myname"], ids=["rejected create", "accepted create"])
def test_event_to_attributes_clears_a_creates_name(name):
    ref = {
        "apiGroup": "mygroup",
        "apiVersion": "myversion",
        "resource": "myresources",
        "namespace": "mynamespace",
    }
    if name:
        ref["name"] = name  # an accepted create's event has it (from the body)
    got = event_to_attributes({"verb": "create", "objectRef": ref})
    assert got == Attributes(
        user="",
        verb="create",
        namespace="mynamespace",
        api_group="mygroup",
        api_version="myversion",
        resource="myresources",
        resource_request=True,
    )


def test_event_to_attributes_reads_the_impersonated_user_and_the_uri():
    got = event_to_attributes(
        {
            "verb": "get",
            "requestURI": "/api/v1/namespaces/a/pods/p?x=1",
            "user": {"username": "admin", "groups": ["system:masters"]},
            "impersonatedUser": {"username": "bob", "groups": ["system:authenticated"]},
            "objectRef": {"resource": "pods", "namespace": "a", "name": "p", "apiVersion": "v1"},
        }
    )
    assert (got.user, got.groups, got.path, got.name) == (
        "bob",
        ("system:authenticated",),
        "/api/v1/namespaces/a/pods/p?x=1",
        "p",
    )
    plain = event_to_attributes({"verb": "get", "requestURI": "/healthz", "user": {}})
    assert not plain.resource_request and plain.path == "/healthz" and plain.groups is None


# -- the authorizer's matching ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule_", "request_", "allowed"),
    [
        (rule("get", groups=[""], resources=["pods"]), res("get", "pods", "p", "a"), True),
        (rule("get", groups=[""], resources=["pods"]), res("list", "pods"), False),
        (rule("*", groups=[""], resources=["pods"]), res("delete", "pods", "p"), True),
        (rule("get", groups=["apps"], resources=["pods"]), res("get", "pods"), False),
        (rule("get", groups=["*"], resources=["pods"]), res("get", "pods", group="x.io"), True),
        (rule("get", groups=[""], resources=["*"]), res("get", "secrets"), True),
        (rule("get", groups=[""], resources=["*"]), res("get", "pods", sub="log"), True),
        # a subresource is named with its resource, or as */sub
        (rule("get", groups=[""], resources=["pods"]), res("get", "pods", sub="log"), False),
        (rule("get", groups=[""], resources=["pods/log"]), res("get", "pods", sub="log"), True),
        (rule("get", groups=[""], resources=["*/log"]), res("get", "pods", sub="log"), True),
        (rule("get", groups=[""], resources=["*/log"]), res("get", "pods", sub="exec"), False),
        (rule("get", groups=[""], resources=["*/log"]), res("get", "pods"), False),
        (rule("get", groups=[""], resources=["pods/log"]), res("get", "pods"), False),
        # resourceNames restrict; no names: any
        (rule("get", groups=[""], resources=["pods"], names=["a"]), res("get", "pods", "a"), True),
        (rule("get", groups=[""], resources=["pods"], names=["a"]), res("get", "pods", "b"), False),
        (rule("get", groups=[""], resources=["pods"], names=["a"]), res("list", "pods"), False),
        # URLs: exact, "*", or a prefix ending in "*"; a resource rule never allows a URL
        (rule("get", urls=["/healthz"]), url("get", "/healthz"), True),
        (rule("get", urls=["/healthz"]), url("get", "/healthz/etcd"), False),
        (rule("get", urls=["/healthz*"]), url("get", "/healthz/etcd"), True),
        (rule("get", urls=["/api*"]), url("get", "/apis/apps/v1"), True),
        (rule("get", urls=["/api/*"]), url("get", "/api"), False),
        (rule("get", urls=["*"]), url("get", "/anything?x"), True),
        (rule("post", urls=["*"]), url("get", "/metrics"), False),
        (rule("get", groups=["*"], resources=["*"]), url("get", "/metrics"), False),
        (rule("get", urls=["*"]), res("get", "pods"), False),
    ],
)
def test_rule_allows(rule_, request_, allowed):
    assert rule_allows(rule_, request_) is allowed


def test_authorizer_walks_cluster_and_namespace_bindings():
    objects = RBACObjects(
        roles=[Role("r", "ns1", [rule("get", groups=[""], resources=["secrets"])])],
        cluster_roles=[Role("view", rules=[rule("list", groups=[""], resources=["pods"])])],
        role_bindings=[
            Binding("b1", "Role", "r", [Subject("User", "bob", api_group=GROUP)], namespace="ns1"),
            # a ClusterRole bound in one namespace; a service account with no namespace: ns2's
            Binding(
                "b2", "ClusterRole", "view", [Subject("ServiceAccount", "sa")], namespace="ns2"
            ),
        ],
    )
    auth = Authorizer(objects)
    assert auth.allows(res("get", "secrets", "s", "ns1"))
    assert not auth.allows(res("get", "secrets", "s", "ns2"))
    assert not auth.allows(res("get", "secrets", "s"))  # cluster-scoped: no RoleBinding counts
    sa = replace(res("list", "pods", ns="ns2"), user="system:serviceaccount:ns2:sa")
    assert auth.allows(sa)
    assert not auth.allows(replace(sa, user="system:serviceaccount:ns3:sa"))
    assert not auth.allows(replace(sa, namespace="ns1"))


def test_service_account_names():
    assert split_service_account("system:serviceaccount:ns1:sa1") == ("ns1", "sa1")
    assert split_service_account("system:serviceaccount:ns1:a.b-c") == ("ns1", "a.b-c")
    for bad in (
        "alice",
        "system:serviceaccount:ns1",
        "system:serviceaccount:ns1:sa:x",
        "system:serviceaccount:NS:sa",
        "system:serviceaccount:ns:Sa",
    ):
        assert split_service_account(bad) is None, bad
    assert user_subject("system:serviceaccount:ns1:sa1") == Subject("ServiceAccount", "sa1", "ns1")
    assert user_subject("alice") == Subject("User", "alice", api_group=GROUP)


# -- order and compaction ---------------------------------------------------------------------


def test_sort_puts_broader_requests_first_and_lists_before_gets():
    requests = [
        res("get", "pods", "p", "ns1"),
        res("list", "pods", ns="ns1"),
        res("list", "nodes"),
        url("get", "/z"),
        res("get", "nodes", "n"),
        url("get", "/a"),
        res("watch", "pods", "p", "ns3"),
        res("list", "pods", "p", "ns2"),  # a list on one name (fieldSelector)
    ]
    got = [(r.verb, r.path or r.resource, r.namespace, r.name) for r in sort_requests(requests)]
    assert got == [
        ("get", "/a", "", ""),
        ("get", "/z", "", ""),
        ("list", "nodes", "", ""),  # cluster-scoped, unnamed
        ("get", "nodes", "", "n"),  # cluster-scoped, named
        ("list", "pods", "ns1", ""),  # namespaced, unnamed
        ("list", "pods", "ns2", "p"),  # named: the list before the get of ns1, as Go's
        ("get", "pods", "ns1", "p"),
        ("watch", "pods", "ns3", "p"),
    ]


def test_compaction_merges_names_then_resources_and_sorts():
    rules = [
        rule("get", groups=[""], resources=["pods"], names=["b"]),
        rule("get", groups=[""], resources=["pods"], names=["a"]),
        rule("list", "get", groups=[""], resources=["secrets"]),
        rule("get", "list", groups=[""], resources=["configmaps"]),
        rule("get", groups=["apps"], resources=["deployments"]),
        rule("get", urls=["/metrics"]),
        rule("get", urls=["/logs"]),
    ]
    # by API groups (a URL rule has none: "" as the core group), then CompactString
    assert compact_rules(rules) == [
        rule("get", "list", groups=[""], resources=["configmaps", "secrets"]),
        rule("get", groups=[""], resources=["pods"], names=["a", "b"]),
        rule("get", urls=["/logs"]),
        rule("get", urls=["/metrics"]),
        rule("get", groups=["apps"], resources=["deployments"]),
    ]


def test_compaction_dedupes_verbs():
    rules = [
        rule("get", "list", "watch", groups=[""], resources=["pods"]),
        rule("watch", "get", "list", groups=[""], resources=["pods"]),
    ]
    assert compact_rules(rules) == [rule("get", "list", "watch", groups=[""], resources=["pods"])]


def test_rule_dict_leaves_empty_lists_out():
    assert rule("get", urls=["/x"]).to_dict() == {"nonResourceURLs": ["/x"], "verbs": ["get"]}
    assert Rule.from_dict({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}) == rule(
        "get", groups=[""], resources=["pods"]
    )
