"""Routing of alert notifications to notifiers, Alertmanager-style: the first route whose
matchers all equal the alert's labels (`slo`, `severity`, dimension names) wins.

    routes:
      - match: {severity: page, team: payments}
        notifiers: [pagerduty-payments]
      - match: {severity: page}
        notifiers: [pagerduty]
      - match: {severity: ticket}
        notifiers: [slack-security]
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    match: dict[str, str] = Field(default_factory=dict)
    notifiers: list[str] = Field(min_length=1)


class Router:
    def __init__(self, routes: list[Route]):
        self.routes = list(routes)

    def route(self, labels: dict[str, str]) -> list[str]:
        for route in self.routes:
            if all(labels.get(k) == v for k, v in route.match.items()):
                return list(route.notifiers)
        return []
