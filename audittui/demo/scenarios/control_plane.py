"""Scenarios of nodes and the control plane: leases, kubelets, controllers, the scheduler."""

from __future__ import annotations

from .. import api
from ..actors import Actor
from ..catalog import NODES, REGION, WEBHOOK_ERR
from ..events import Req
from ..ids import rand_name, uuid4
from ..requests import Requests
from ..template import fill
from ..times import seconds_time


class ControlPlane(Requests):
    """Traffic of the nodes, controllers and scheduler (each method: one request at ``t0``)."""

    def node_lease(self, t0: int) -> Req:
        i = self.rng.randrange(len(NODES))
        node, actor = NODES[i], self.nodes[i]
        rv = self._next_rv()
        conflict = self.rng.random() < 0.004
        status = (
            api.failure(
                409,
                "Conflict",
                api.conflict_msg("leases.coordination.k8s.io", node),
                api.details("leases", node),
            )
            if conflict
            else None
        )
        return self._req(
            t0,
            actor,
            "update",
            api.path("leases", "kube-node-lease", node) + "?timeout=10s",
            ref=api.ref("leases", "kube-node-lease", node, uid=self._uid("lease/" + node), rv=rv),
            ref_rr=api.ref("leases", "kube-node-lease", node),
            status=status,
            req_body=lambda: self._lease("kube-node-lease", node, node, t0, 40),
            resp_body=lambda: self._lease("kube-node-lease", node, node, t0, 40),
        )

    def leader_lease(self, t0: int) -> Req:
        rng = self.rng
        actor, name, reason = rng.choice(
            [
                (
                    self.kcm,
                    "kube-controller-manager",
                    api.crb(
                        "system:kube-controller-manager", 'User "system:kube-controller-manager"'
                    ),
                ),
                (
                    self.scheduler,
                    "kube-scheduler",
                    'RBAC: allowed by ClusterRoleBinding "system:kube-scheduler" of ClusterRole '
                    '"system:kube-scheduler" to User "system:kube-scheduler"',
                ),
            ]
        )
        ua_actor = Actor(actor.kind, actor.user, actor.ips, actor.ua + "/leader-election")
        holder = f"ip-10-0-0-10.{REGION}.compute.internal_{self._uid('holder/' + name)}"
        verb = "get" if rng.random() < 0.25 else "update"
        rv = self._next_rv() if verb == "update" else None
        return self._req(
            t0,
            ua_actor,
            verb,
            api.path("leases", "kube-system", name) + "?timeout=5s",
            ref=api.ref(
                "leases", "kube-system", name, uid=self._uid("lease/" + name) if rv else None, rv=rv
            ),
            ref_rr=api.ref("leases", "kube-system", name),
            reason=reason,
            req_body=(lambda: self._lease("kube-system", name, holder, t0, 15)) if rv else None,
            resp_body=lambda: self._lease("kube-system", name, holder, t0, 15),
        )

    def apiserver_lease(self, t0: int) -> Req:
        name = self.apiserver_lease_name
        rv = self._next_rv()
        return self._req(
            t0,
            self.apiserver,
            "update",
            api.path("leases", "kube-system", name),
            ref=api.ref("leases", "kube-system", name, uid=self._uid("lease/" + name), rv=rv),
            ref_rr=api.ref("leases", "kube-system", name),
            req_body=lambda: self._lease("kube-system", name, name, t0, 3600),
        )

    def kubelet_get_node(self, t0: int) -> Req:
        i = self.rng.randrange(len(NODES))
        node = NODES[i]
        return self._req(
            t0,
            self.nodes[i],
            "get",
            api.path("nodes", None, node) + "?resourceVersion=0&timeout=10s",
            ref=api.ref("nodes", None, node),
            latency=self._latency(base_ms=1.5),
        )

    def kubelet_node_status(self, t0: int) -> Req:
        i = self.rng.randrange(len(NODES))
        node = NODES[i]
        return self._req(
            t0,
            self.nodes[i],
            "patch",
            api.path("nodes", None, node, "status") + "?timeout=10s",
            ref=api.ref("nodes", None, node, "status"),
            req_body=lambda: self._node_status_patch(t0),
        )

    def kubelet_pod_status(self, t0: int) -> Req:
        p = self._pick_pod()
        i = NODES.index(p["node"])
        return self._req(
            t0,
            self.nodes[i],
            "patch",
            api.path("pods", p["ns"], p["name"], "status"),
            ref=api.ref("pods", p["ns"], p["name"], "status"),
            req_body=lambda: fill("pod-status-patch", uid=p["uid"], now=seconds_time(t0)),
            resp_body=lambda: self._pod(p, t0),
            extra_ann={"pod-security.kubernetes.io/enforce-policy": "baseline:latest"}
            if p["ns"] in ("prod", "staging", "dev")
            else None,
        )

    def kubelet_get_object(self, t0: int) -> Req:
        p = self._pick_pod()
        i = NODES.index(p["node"])
        rng = self.rng
        if rng.random() < 0.5:
            resource, name = "configmaps", rng.choice(self._configmap_names(p["ns"]))
            body = lambda: self._configmap(p["ns"], name, t0, True)  # noqa: E731
        else:
            resource, name = "secrets", rng.choice(self._secret_names(p["ns"]))
            body = lambda: self._secret(p["ns"], name, t0, True)  # noqa: E731
        status = None
        if rng.random() < 0.06:
            status = api.failure(
                404, "NotFound", f'{resource} "{name}" not found', api.details(resource, name)
            )
        return self._req(
            t0,
            self.nodes[i],
            "get",
            api.path(resource, p["ns"], name),
            ref=api.ref(resource, p["ns"], name),
            status=status,
            resp_body=body,
        )

    def kubelet_token(self, t0: int) -> Req:
        p = self._pick_pod()
        i = NODES.index(p["node"])
        sa = "prometheus-kube-prometheus-operator" if p["ns"] == "monitoring" else "default"
        return self._req(
            t0,
            self.nodes[i],
            "create",
            api.path("serviceaccounts", p["ns"], sa, "token"),
            ref=api.ref("serviceaccounts", p["ns"], sa, "token"),
            status=api.ok(201),
        )  # never a body: TokenRequest responses hold credentials

    def component_event(self, t0: int) -> Req:
        rng = self.rng
        p = self._pick_pod()
        node_i = NODES.index(p["node"])
        name = f"{p['name']}.{rng.getrandbits(64):016x}"[:63]
        reason, msg = rng.choice(
            [
                ("Pulled", f'Container image "{p["image"]}" already present on machine'),
                ("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503"),
                ("BackOff", "Back-off restarting failed container"),
                ("Started", f"Started container {p['deploy']}"),
            ]
        )
        body = fill(
            "event",
            name=name,
            ns=p["ns"],
            pod=p["name"],
            pod_uid=p["uid"],
            container=p["deploy"],
            reason=reason,
            message=msg,
            node=p["node"],
            now=seconds_time(t0),
            type="Warning" if reason in ("Unhealthy", "BackOff") else "Normal",
        )
        return self._req(
            t0,
            self.nodes[node_i],
            "create",
            api.path("events", p["ns"]),
            ref=api.ref("events", p["ns"], name),
            ref_rr=api.ref("events", p["ns"]),
            status=api.ok(201),
            req_body=lambda: body,
        )

    def controller_watch(self, t0: int) -> Req:
        """Informer watches: minutes long, RS 200 then RC when the server times the watch out."""
        rng = self.rng
        choice = rng.random()
        ns: str | None = None
        name: str | None = None
        selector = ""
        if choice < 0.35:
            c = rng.choice(list(self.controllers.values()))
            actor = c
            resource = rng.choice(
                ["replicasets", "deployments", "pods", "endpointslices", "namespaces", "daemonsets"]
            )
        elif choice < 0.55:
            i = rng.randrange(len(NODES))
            actor = self.nodes[i]
            kind = rng.random()
            if kind < 0.4:
                resource, selector = "pods", f"fieldSelector=spec.nodeName%3D{NODES[i]}&"
            elif kind < 0.7:
                resource, name = "nodes", NODES[i]
                selector = f"fieldSelector=metadata.name%3D{name}&"
            else:
                p = self._pick_pod()
                resource, ns = "configmaps", p["ns"]
                name = rng.choice(self._configmap_names(ns))
                selector = f"fieldSelector=metadata.name%3D{name}&"
        elif choice < 0.7:
            actor = self.scheduler
            actor = Actor(actor.kind, actor.user, actor.ips, actor.ua + "/scheduler")
            resource = rng.choice(["pods", "nodes", "persistentvolumeclaims", "namespaces"])
        elif choice < 0.85:
            actor = self.prom_operator
            resource = rng.choice(
                ["servicemonitors", "prometheusrules", "secrets", "configmaps", "statefulsets"]
            )
            ns = "monitoring" if resource in ("secrets", "configmaps", "statefulsets") else None
        else:
            actor = rng.choice([self.coredns, self.kube_proxy])
            resource = rng.choice(["endpointslices", "services"])
        timeout = rng.randint(300, 599)  # client-go picks [minWatchTimeout, 2*minWatchTimeout)
        rv = str(self.rv - rng.randint(0, 20_000))
        uri = (
            f"{api.path(resource, ns)}?allowWatchBookmarks=true&{selector}resourceVersion={rv}"
            f"&timeout={timeout // 60}m{timeout % 60}s&timeoutSeconds={timeout}&watch=true"
        )
        reason = self._component_reason(actor)
        return self._req(
            t0,
            actor,
            "watch",
            uri,
            ref=api.ref(resource, ns, name),
            reason=reason,
            long_running=(200, timeout * 1_000_000 + rng.randint(1_000, 900_000)),
        )

    def controller_list(self, t0: int) -> Req:
        rng = self.rng
        actor = rng.choice(
            [*self.controllers.values(), self.kcm, self.prom_operator, self.scheduler]
        )
        resource = rng.choice(
            [
                "pods",
                "replicasets",
                "deployments",
                "configmaps",
                "nodes",
                "leases",
                "endpointslices",
            ]
        )
        ns = (
            "monitoring"
            if actor is self.prom_operator and resource in ("configmaps", "pods")
            else None
        )
        big = resource == "pods"
        return self._req(
            t0,
            actor,
            "list",
            api.path(resource, ns) + "?limit=500&resourceVersion=0",
            ref=api.ref(resource, ns),
            reason=self._component_reason(actor),
            latency=self._latency(slow=0.05, base_ms=25.0 if big else 8.0),
            resp_body=(lambda: self._pod_list(ns, t0))
            if big
            else (lambda: self._small_list(resource, ns, t0)),
        )

    def controller_write(self, t0: int) -> Req:
        rng = self.rng
        x = rng.random()
        d = self._pick_deploy()
        if x < 0.35:  # deployment-controller updates deployment status
            actor = self.controllers["deployment-controller"]
            rv = self._next_rv()
            return self._req(
                t0,
                actor,
                "update",
                api.path("deployments", d["ns"], d["name"], "status"),
                ref=api.ref("deployments", d["ns"], d["name"], "status", uid=d["uid"], rv=rv),
                ref_rr=api.ref("deployments", d["ns"], d["name"], "status"),
                reason=self._component_reason(actor),
                req_body=lambda: self._deployment(d, t0, True),
                resp_body=lambda: self._deployment(d, t0, True),
            )
        if x < 0.6:  # replicaset-controller creates a pod
            actor = self.controllers["replicaset-controller"]
            p = dict(self._pick_pod(d["ns"]))
            p["name"] = f"{d['name']}-{d['rs']}-{rand_name(rng, 5)}"
            p["uid"] = uuid4(rng)
            fail = rng.random() < 0.03
            status = api.ok(201)
            lat = None
            extra = {"pod-security.kubernetes.io/enforce-policy": "baseline:latest"}
            if fail:  # a validating webhook timed out
                lat = 10_000_000 + rng.randint(1_000, 40_000)
                status = api.failure(
                    500,
                    "InternalError",
                    "Internal error occurred: " + WEBHOOK_ERR,
                    {"causes": [{"message": WEBHOOK_ERR}]},
                )
            if self.policy is not None:  # the demo: the request the controller really sends
                # (generateName: the audit event never learns the name, kubernetes#100466)
                return self._req(
                    t0,
                    actor,
                    "create",
                    api.path("pods", d["ns"]),
                    ref=api.ref("pods", d["ns"]),
                    status=status,
                    latency=lat,
                    reason=self._component_reason(actor),
                    req_body=lambda: self._pod_request(p, t0),
                    resp_body=lambda: self._pod(p, t0),
                    extra_ann=extra,
                )
            return self._req(
                t0,
                actor,
                "create",
                api.path("pods", d["ns"]),
                ref=api.ref("pods", d["ns"], p["name"]),
                ref_rr=api.ref("pods", d["ns"]),
                status=status,
                latency=lat,
                reason=self._component_reason(actor),
                req_body=lambda: self._pod(p, t0),
                resp_body=lambda: self._pod(p, t0),
                extra_ann=extra,
            )
        if x < 0.8:  # endpointslice-controller
            actor = self.controllers["endpointslice-controller"]
            name = f"{d['name']}-{rand_name(rng, 5)}"
            rv = self._next_rv()
            return self._req(
                t0,
                actor,
                "update",
                api.path("endpointslices", d["ns"], name),
                ref=api.ref("endpointslices", d["ns"], name, uid=self._uid(name), rv=rv),
                ref_rr=api.ref("endpointslices", d["ns"], name),
                reason=self._component_reason(actor),
            )
        # replicaset-controller deletes a pod (scale down / rollout)
        actor = self.controllers["replicaset-controller"]
        p = self._pick_pod(d["ns"])
        return self._req(
            t0,
            actor,
            "delete",
            api.path("pods", d["ns"], p["name"]),
            ref=api.ref("pods", d["ns"], p["name"]),
            reason=self._component_reason(actor),
            req_body=lambda: fill("delete-precondition", uid=p["uid"]),
            resp_body=lambda: self._pod(p, t0),
        )

    def scheduler_bind(self, t0: int) -> Req:
        p = self._pick_pod()
        actor = self.scheduler
        actor = Actor(actor.kind, actor.user, actor.ips, actor.ua + "/scheduler")
        return self._req(
            t0,
            actor,
            "create",
            api.path("pods", p["ns"], p["name"], "binding"),
            ref=api.ref("pods", p["ns"], p["name"], "binding"),
            status=api.ok(201),
            reason=self._component_reason(self.scheduler),
            req_body=lambda: fill(
                "binding", name=p["name"], ns=p["ns"], uid=p["uid"], node=p["node"]
            ),
        )
