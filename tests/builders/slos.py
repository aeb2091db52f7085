"""SLO documents the alerting tests evaluate, and the decision columns they insert."""

from __future__ import annotations

NAME = "admission-eval-success"
COLUMNS = ["event_id", "event_time", "team", "service", "policy_id", "engine", "environment",
           "cluster", "outcome"]


def slo_doc(name: str = NAME, *, by: list[str] | None = None, alerting: dict | None = None,
            budget_policies: list[dict] | None = None) -> dict:
    """An M1 SLO at 99.9 % over 30 days, shaped like examples/slo/admission-eval-success.yaml."""
    total = {"sli": "M1"}
    if by:
        total["by"] = by
    if alerting:
        total["alerting"] = alerting
    if budget_policies:
        total["budgetPolicies"] = budget_policies
    return {
        "apiVersion": "openslo/v1", "kind": "SLO",
        "metadata": {"name": name, "displayName": "Admission policy evaluations succeed"},
        "spec": {
            "service": "admission-control",
            "indicator": {"metadata": {"name": "eval-success"}, "spec": {"ratioMetric": {
                "counter": True,
                "good": {"metricSource": {"type": "policyscope", "spec": {"sli": "M1"}}},
                "total": {"metricSource": {"type": "policyscope", "spec": total}}}}},
            "timeWindow": [{"duration": "30d", "isRolling": True}],
            "budgetingMethod": "Occurrences",
            "objectives": [{"target": 0.999}],
        },
    }
