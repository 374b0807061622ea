"""Scenarios of people changing the cluster: creates, applies, edits, deletes, scaling,
impersonation, a namespace's cleanup, RBAC administration."""

from __future__ import annotations

import orjson

from .. import api
from ..api import J
from ..events import Req
from ..ids import rand_name
from ..template import fill
from ..times import seconds_time
from .humans import Humans


class Changes(Humans):
    """kubectl users' and their controllers' writes (one request at ``t0``)."""

    def human_write(self, t0: int) -> Req:
        rng = self.rng
        actor = rng.choice(self.writers)
        ns = self._human_ns(actor)
        x = rng.random()
        st: J | None
        if x < 0.3:  # kubectl create configmap/secret
            resource = rng.choice(["configmaps", "configmaps", "secrets"])
            names = (
                self._configmap_names(ns) if resource == "configmaps" else self._secret_names(ns)
            )
            exists = rng.random() < 0.15
            name = (
                rng.choice(names)
                if exists
                else f"{rng.choice(['app', 'feature', 'tmp'])}-{rand_name(rng, 5)}"
            )
            st = (
                api.failure(
                    409,
                    "AlreadyExists",
                    f'{resource} "{name}" already exists',
                    api.details(resource, name),
                )
                if exists
                else api.ok(201)
            )
            make = self._configmap if resource == "configmaps" else self._secret
            return self._human(
                t0,
                actor,
                "create",
                resource,
                ns,
                name,
                api.path(resource, ns) + "?fieldManager=kubectl-create&fieldValidation=Strict",
                ref_rr=api.ref(resource, ns),
                ok_status=st,
                req_body=lambda: make(ns, name, t0, False),
                resp_body=lambda: make(ns, name, t0, True),
            )
        if x < 0.6:  # kubectl apply (client-side): strategic-merge PATCH
            d = self._pick_deploy(ns)
            ns = d["ns"]
            invalid = rng.random() < 0.1
            image = "" if invalid else d["image"]
            st = None
            if invalid:
                field = "spec.template.spec.containers[0].image"
                st = api.failure(
                    422,
                    "Invalid",
                    f'Deployment.apps "{d["name"]}" is invalid: {field}: Required value',
                    {
                        "name": d["name"],
                        "group": "apps",
                        "kind": "Deployment",
                        "causes": [
                            {
                                "reason": "FieldValueRequired",
                                "message": "Required value",
                                "field": field,
                            }
                        ],
                    },
                )
            last = orjson.dumps(self._deployment(d, t0, False)).decode() + "\n"
            patch = fill("apply-patch", last_applied=last, name=d["name"], image=image)
            return self._human(
                t0,
                actor,
                "patch",
                "deployments",
                ns,
                d["name"],
                api.path("deployments", ns, d["name"])
                + "?fieldManager=kubectl-client-side-apply&fieldValidation=Strict",
                ok_status=st,
                req_body=lambda: patch,
                resp_body=lambda: self._deployment(d, t0, True),
            )
        if x < 0.8:  # kubectl edit/replace configmap: PUT, sometimes a 409 Conflict
            name = rng.choice(self._configmap_names(ns))
            conflict = rng.random() < 0.12
            rv = self._next_rv()
            st = (
                api.failure(
                    409,
                    "Conflict",
                    api.conflict_msg("configmaps", name),
                    api.details("configmaps", name),
                )
                if conflict
                else None
            )
            return self._human(
                t0,
                actor,
                "update",
                "configmaps",
                ns,
                name,
                api.path("configmaps", ns, name)
                + "?fieldManager=kubectl-edit&fieldValidation=Strict",
                ref=api.ref("configmaps", ns, name, uid=self._uid(f"{ns}/{name}"), rv=rv),
                ref_rr=api.ref("configmaps", ns, name),
                ok_status=st,
                req_body=lambda: self._configmap(ns, name, t0, True),
                resp_body=lambda: self._configmap(ns, name, t0, True),
            )
        # kubectl delete pod
        p = self._pick_pod(ns)
        return self._human(
            t0,
            actor,
            "delete",
            "pods",
            p["ns"],
            p["name"],
            api.path("pods", p["ns"], p["name"]),
            req_body=lambda: fill("delete-options"),
            resp_body=lambda: self._pod(p, t0),
        )

    def human_scale(self, t0: int) -> Req:
        rng = self.rng
        actor = rng.choice(self.writers)
        d = self._pick_deploy(self._human_ns(actor))
        replicas = rng.randint(0, 6)
        return self._human(
            t0,
            actor,
            "patch",
            "deployments",
            d["ns"],
            d["name"],
            api.path("deployments", d["ns"], d["name"], "scale"),
            sub="scale",
            req_body=lambda: fill("scale-patch", replicas=replicas),
            resp_body=lambda: fill(
                "scale",
                metadata=self._meta(d["ns"], d["name"], t0, True),
                replicas=replicas,
                current=d["replicas"],
                name=d["name"],
            ),
        )

    def human_expose(self, t0: int) -> Req:
        """``kubectl expose deployment``: a Service, now and then a NodePort (demo only)."""
        rng = self.rng
        actor = rng.choice(self.writers)
        d = self._pick_deploy(self._human_ns(actor))
        name = f"{d['name']}-{rng.choice(['preview', 'debug', 'ext'])}-{rand_name(rng, 4)}"
        kind = "NodePort" if rng.random() < 0.15 else "ClusterIP"
        body = fill("service", name=name, ns=d["ns"], port=d["port"], type=kind)
        return self._human(
            t0,
            actor,
            "create",
            "services",
            d["ns"],
            name,
            api.path("services", d["ns"]) + "?fieldManager=kubectl-expose&fieldValidation=Strict",
            ref_rr=api.ref("services", d["ns"]),
            ok_status=api.ok(201),
            req_body=lambda: body,
            resp_body=lambda: body,
        )

    def impersonation(self, t0: int) -> Req:
        """alice ``--as=system:serviceaccount:ci:deployer``; carol ``--as=bob``."""
        rng = self.rng
        if rng.random() < 0.7:
            ns = rng.choice(["ci", "ci", "staging", "prod"])
            d = self._pick_deploy(ns if ns != "ci" else "ci")
            ok = ns in ("ci", "staging")
            verb = rng.choice(["get", "patch", "list"])
            name = None if verb == "list" else d["name"]
            uri = api.path("deployments", ns, name)
            if verb == "patch":
                uri += "?fieldManager=kubectl-patch"
            if ok:
                st, decision = None, "allow"
                reason = api.rb(f"deployer/{ns}", "edit", 'ServiceAccount "deployer/ci"')
            else:
                st, decision, reason = (
                    self._forbidden(self.deployer_user["username"], verb, "deployments", ns, name),
                    "forbid",
                    "",
                )
            return self._req(
                t0,
                self.alice,
                verb,
                uri,
                ref=api.ref("deployments", ns, name),
                status=st,
                decision=decision,
                reason=reason,
                imp=self.deployer_user,
                req_body=(lambda: fill("restart-patch", now=seconds_time(t0)))
                if verb == "patch"
                else None,
            )
        ns = rng.choice(["staging", "prod"])
        ok = ns == "staging"
        st = None if ok else self._forbidden("bob", "list", "pods", ns, None)
        return self._req(
            t0,
            self.carol,
            "list",
            api.path("pods", ns) + "?limit=500",
            ref=api.ref("pods", ns),
            status=st,
            decision="allow" if ok else "forbid",
            reason=api.rb(f"bob-view/{ns}", "view", 'User "bob"') if ok else "",
            imp={"username": "bob", "groups": ["system:authenticated"]},
        )

    def namespace_cleanup(self, t0: int) -> Req:
        """carol deletes a preview namespace; namespace-controller empties it (deletecollection)."""
        rng = self.rng
        ns = f"preview-{rng.randint(100, 999)}"
        if rng.random() < 0.2:
            return self._req(
                t0,
                self.carol,
                "delete",
                api.path("namespaces", None, ns),
                ref=api.ref("namespaces", None, ns),
                req_body=lambda: fill("delete-options"),
            )
        actor = self.controllers["namespace-controller"]
        resource = rng.choice(
            [
                "configmaps",
                "secrets",
                "pods",
                "deployments",
                "replicasets",
                "serviceaccounts",
                "leases",
                "roles",
                "rolebindings",
                "jobs",
                "ingresses",
            ]
        )
        return self._req(
            t0,
            actor,
            "deletecollection",
            api.path(resource, ns),
            ref=api.ref(resource, ns),
            reason=self._component_reason(actor),
            latency=self._latency(slow=0.05, base_ms=9.0),
            req_body=lambda: fill("delete-options"),
        )

    def rbac_admin(self, t0: int) -> Req:
        """carol managing ClusterRoles/ClusterRoleBindings; aggregation controller updates."""
        rng = self.rng
        x = rng.random()
        if x < 0.25:
            name = rng.choice(["admin", "edit", "view"])
            actor = self.controllers["clusterrole-aggregation-controller"]
            uri = api.path("clusterroles", None, name)
            body = served = None
            if self.policy is not None:  # the demo: its server-side apply, as 1.30 sends it
                uri += "?fieldManager=clusterrole-aggregation-controller&force=true"
                body = lambda: fill("aggregated-clusterrole", name=name)  # noqa: E731
                served = lambda: {  # noqa: E731
                    **fill("aggregated-clusterrole", name=name),
                    "metadata": self._meta(None, name, t0, True),
                }
            return self._req(
                t0,
                actor,
                "patch",
                uri,
                ref=api.ref("clusterroles", None, name),
                reason=self._component_reason(actor),
                req_body=body,
                resp_body=served,
            )
        resource = rng.choice(["clusterroles", "clusterrolebindings"])
        name = rng.choice(["pod-reader", "ci-deployer", "monitoring-reader", "namespace-admin"])
        body = fill(
            "clusterrole" if resource == "clusterroles" else "clusterrolebinding", name=name
        )
        verb = rng.choice(["get", "list", "create", "create", "delete"])
        if verb == "list":
            return self._req(
                t0,
                self.carol,
                "list",
                api.path(resource) + "?limit=500",
                ref=api.ref(resource),
                resp_body=lambda: self._small_list(resource, None, t0),
            )
        if verb == "create":
            exists = rng.random() < 0.2
            st = (
                api.failure(
                    409,
                    "AlreadyExists",
                    f'{api.qualified(resource)} "{name}" already exists',
                    api.details(resource, name),
                )
                if exists
                else api.ok(201)
            )
            return self._req(
                t0,
                self.carol,
                "create",
                api.path(resource) + "?fieldManager=kubectl-create&fieldValidation=Strict",
                ref=api.ref(resource, None, name),
                ref_rr=api.ref(resource),
                status=st,
                req_body=lambda: body,
                # the demo returns what the server would (the benches' stream, the body as sent)
                resp_body=(lambda: self._served(body, t0)) if self.policy else (lambda: body),
            )
        return self._req(
            t0,
            self.carol,
            verb,
            api.path(resource, None, name),
            ref=api.ref(resource, None, name),
            resp_body=lambda: body,
        )
