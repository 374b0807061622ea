"""The audit-policy lab: load an ``audit.k8s.io/v1`` Policy, validate it as the API server does,
and evaluate it on logged events exactly like the server's policy checker."""

from ..ingest.requestinfo import Attributes, attributes
from .model import LEVELS, Policy, PolicyError, Result, Rule, load, parse

__all__ = [
    "LEVELS",
    "Attributes",
    "Policy",
    "PolicyError",
    "Result",
    "Rule",
    "attributes",
    "load",
    "parse",
]
