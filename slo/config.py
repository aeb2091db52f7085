"""The alert evaluator's config section (`alerting:` in the config file): where the SLO files
are, where notifications link to, and the notifiers and routes as typed models, so a typo or
a route to a notifier that does not exist fails at start-up naming its key path, whether or
not there are SLO files to evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import Field, model_validator

from core.config import Section
from metrics.config import BatchConfig
from slo.notify.config import NotifierConfig
from slo.routing import Route


class AlertingConfig(Section):
    slo_dir: Path = Field(Path("./slo"), description=(
        "directory of SLO files (OpenSLO v1 YAML); silences in its silences/ subfolder"))
    dashboard_url: str = Field("http://127.0.0.1:8501", description=(
        "base URL alert notifications link to"))
    notifiers: list[NotifierConfig] = Field(default_factory=list, description=(
        "notifier definitions (webhook, slack, pagerduty, alertmanager); secrets as env:NAME "
        "or file:/path references"))
    routes: list[Route] = Field(default_factory=list, description=(
        "first matching route's notifiers get the alert: [{match: {severity: page}, "
        "notifiers: [pagerduty]}]"))

    @model_validator(mode="after")
    def _names_agree(self) -> AlertingConfig:
        names = [n.name for n in self.notifiers]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"notifier name {name!r} is used twice; names are unique")
        if self.notifiers:  # with none, routes are kept for when some are configured
            unknown = sorted({n for r in self.routes for n in r.notifiers} - set(names))
            if unknown:
                raise ValueError(f"routes name unknown notifiers: {', '.join(unknown)}")
        return self


class AlertingSettings(Protocol):
    """What the alert evaluator reads of the root config (`policyscope.config.Config`)."""

    alerting: AlertingConfig
    batch: BatchConfig
