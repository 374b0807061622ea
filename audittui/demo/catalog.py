"""The simulated cluster's fixed facts: versions, nodes, API resources, workloads, messages."""

from __future__ import annotations

# Component versions; GitVersion commit is the 7-char short hash Kubernetes puts in user agents.
KV, KC = "v1.30.2", "3968350"
PLATFORM = "(linux/amd64)"
REGION = "eu-west-1"
NODES = [
    f"ip-10-0-1-23.{REGION}.compute.internal",
    f"ip-10-0-1-87.{REGION}.compute.internal",
    f"ip-10-0-2-141.{REGION}.compute.internal",
    f"ip-10-0-3-12.{REGION}.compute.internal",
]
CONTROL_PLANE_IP = "10.0.0.10"

# resource -> (apiGroup, version, Kind, namespaced)
RESOURCES: dict[str, tuple[str, str, str, bool]] = {
    "pods": ("", "v1", "Pod", True),
    "configmaps": ("", "v1", "ConfigMap", True),
    "secrets": ("", "v1", "Secret", True),
    "services": ("", "v1", "Service", True),
    "endpoints": ("", "v1", "Endpoints", True),
    "serviceaccounts": ("", "v1", "ServiceAccount", True),
    "events": ("", "v1", "Event", True),
    "persistentvolumeclaims": ("", "v1", "PersistentVolumeClaim", True),
    "nodes": ("", "v1", "Node", False),
    "namespaces": ("", "v1", "Namespace", False),
    "deployments": ("apps", "v1", "Deployment", True),
    "replicasets": ("apps", "v1", "ReplicaSet", True),
    "statefulsets": ("apps", "v1", "StatefulSet", True),
    "daemonsets": ("apps", "v1", "DaemonSet", True),
    "leases": ("coordination.k8s.io", "v1", "Lease", True),
    "endpointslices": ("discovery.k8s.io", "v1", "EndpointSlice", True),
    "clusterroles": ("rbac.authorization.k8s.io", "v1", "ClusterRole", False),
    "clusterrolebindings": ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", False),
    "roles": ("rbac.authorization.k8s.io", "v1", "Role", True),
    "rolebindings": ("rbac.authorization.k8s.io", "v1", "RoleBinding", True),
    "jobs": ("batch", "v1", "Job", True),
    "cronjobs": ("batch", "v1", "CronJob", True),
    "ingresses": ("networking.k8s.io", "v1", "Ingress", True),
    "servicemonitors": ("monitoring.coreos.com", "v1", "ServiceMonitor", True),
    "prometheusrules": ("monitoring.coreos.com", "v1", "PrometheusRule", True),
    "subjectaccessreviews": ("authorization.k8s.io", "v1", "SubjectAccessReview", False),
    "selfsubjectrulesreviews": ("authorization.k8s.io", "v1", "SelfSubjectRulesReview", False),
    "customresourcedefinitions": (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        False,
    ),
}

# namespace -> deployments (name, image, port)
WORKLOADS: dict[str, list[tuple[str, str, int]]] = {
    "prod": [
        ("web", "registry.example.com/shop/web:2.14.1", 8080),
        ("api", "registry.example.com/shop/api:3.2.0", 8080),
        ("worker", "registry.example.com/shop/worker:3.2.0", 9090),
        ("postgres", "docker.io/library/postgres:16.4", 5432),
    ],
    "staging": [
        ("web", "registry.example.com/shop/web:2.15.0-rc.2", 8080),
        ("api", "registry.example.com/shop/api:3.3.0-rc.1", 8080),
    ],
    "dev": [
        ("web", "registry.example.com/shop/web:main-4f2a9c1", 8080),
        ("api", "registry.example.com/shop/api:main-77b01de", 8080),
        ("redis", "docker.io/library/redis:7.2.5", 6379),
    ],
    "ci": [("runner", "ghcr.io/actions/actions-runner:2.317.0", 8080)],
    "monitoring": [
        (
            "prometheus-kube-prometheus-operator",
            "quay.io/prometheus-operator/prometheus-operator:v0.75.0",
            10250,
        ),
        ("grafana", "docker.io/grafana/grafana:11.1.0", 3000),
        (
            "kube-state-metrics",
            "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.12.0",
            8080,
        ),
    ],
    "kube-system": [
        ("coredns", "registry.k8s.io/coredns/coredns:v1.11.1", 53),
        ("metrics-server", "registry.k8s.io/metrics-server/metrics-server:v0.7.1", 10250),
    ],
    "ingress-nginx": [
        ("ingress-nginx-controller", "registry.k8s.io/ingress-nginx/controller:v1.10.1", 80)
    ],
}
NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease", *WORKLOADS]

WEBHOOK_ERR = (
    'failed calling webhook "validate.kyverno.svc-fail": failed to call webhook: Post '
    '"https://kyverno-svc.kyverno.svc:443/validate/fail?timeout=10s": context deadline exceeded'
)
DISCOVERY_REASON = (
    'RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" '
    'to Group "system:authenticated"'
)
PUBLIC_INFO_REASON = (
    'RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole '
    '"system:public-info-viewer" to Group "system:unauthenticated"'
)
