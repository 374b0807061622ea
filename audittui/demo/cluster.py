"""The simulated cluster: every scenario with its share of the requests, drawn one at a time."""

from __future__ import annotations

import random
from collections.abc import Callable

from .events import Req
from .scenarios.attacks import Attacks
from .scenarios.clients import Clients
from .scenarios.control_plane import ControlPlane


class Cluster(ControlPlane, Clients, Attacks):
    """Simulated cluster state plus one method per kind of traffic."""

    def __init__(self, rng: random.Random, body_fraction: float) -> None:
        super().__init__(rng, body_fraction)
        # (weight, scenario) — shares of requests, roughly those of a small busy cluster
        table: list[tuple[float, Callable[[int], Req]]] = [
            (14, self.node_lease),
            (9, self.leader_lease),
            (2, self.apiserver_lease),
            (4, self.kubelet_get_node),
            (3, self.kubelet_node_status),
            (3, self.kubelet_pod_status),
            (2, self.kubelet_get_object),
            (1.5, self.kubelet_token),
            (2, self.component_event),
            (6, self.controller_watch),
            (3, self.controller_list),
            (5, self.controller_write),
            (1.5, self.scheduler_bind),
            (6, self.probe),
            (2, self.metrics_scrape),
            (3.5, self.discovery),
            (4.5, self.human_read),
            (0.6, self.human_watch),
            (1.6, self.human_stream),
            (2.5, self.human_write),
            (0.5, self.human_scale),
            (0.6, self.human_forbidden),
            (0.8, self.auth_failure),
            (0.6, self.anonymous_probe),
            (1.0, self.impersonation),
            (0.7, self.namespace_cleanup),
            (1.0, self.rbac_admin),
            (0.15, self.panic),
        ]
        self._table = table
        self.reweight({})

    def demo_traffic(self) -> None:
        """The demo's own kinds of traffic besides the benches' (whose draws stay the same)."""
        self._table.append((0.4, self.human_expose))
        self.reweight({})

    def reweight(self, factors: dict[str, float]) -> None:
        """Scale the share of some scenarios (by method name)."""
        self._cum: list[float] = []
        acc = 0.0
        for w, scenario in self._table:
            acc += w * factors.get(scenario.__name__, 1.0)
            self._cum.append(acc)
        self._scenarios = [s for _, s in self._table]

    def pick(self, t0: int) -> Req:
        """One request arriving at ``t0`` (µs), of a scenario drawn by the weights."""
        i = 0
        x = self.rng.random() * self._cum[-1]
        cum = self._cum
        while cum[i] < x:
            i += 1
        return self._scenarios[i](t0)
