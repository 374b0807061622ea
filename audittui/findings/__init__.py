"""Detection findings: a YAML rule pack (Falco's k8saudit rules and Elastic's Kubernetes
detections) evaluated over the store, live or headless."""

from .engine import Finding, Findings
from .rules import SEVERITIES, Rule, RuleError, RuleSet, load_rules, user_rules_path

__all__ = [
    "SEVERITIES",
    "Finding",
    "Findings",
    "Rule",
    "RuleError",
    "RuleSet",
    "load_rules",
    "user_rules_path",
]
