"""The `notifiers:` config list, strict, and the notifiers and dispatcher built from it.

    notifiers:
      - name: oncall-pager
        type: pagerduty
        routing_key: env:PAGERDUTY_ROUTING_KEY    # or file:/run/secrets/pd-key
      - name: sre-chat
        type: slack
        url: env:SLACK_WEBHOOK_URL                # the URL is the credential
      - name: am
        type: alertmanager
        url: http://alertmanager:9093             # not a secret: plain is fine
        timeout: 2s
      - name: soar
        type: webhook
        url: https://soar.example/hooks/policyscope
        secret: file:/run/secrets/webhook-hmac
        max_attempts: 8

Credentials (`secret`, `routing_key`, a Slack URL) must be `env:NAME` or `file:/path`
references: a value in clear is an error, and error messages never echo it. Plain URLs must
not carry user:password. References are resolved by `build_notifiers`, which fails naming the
key and the missing variable or file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.config import ConfigError
from core.units import Seconds
from slo.notify.alertmanager import AlertmanagerNotifier
from slo.notify.base import Notifier
from slo.notify.dispatcher import DeadLetter, Dispatcher, RetryPolicy
from slo.notify.pagerduty import DEFAULT_URL as PAGERDUTY_URL
from slo.notify.pagerduty import PagerDutyNotifier
from slo.notify.secrets import Secret, SecretError, is_reference
from slo.notify.slack import SlackNotifier
from slo.notify.webhook import WebhookNotifier

NotifierType = Literal["webhook", "slack", "pagerduty", "alertmanager"]

# Per type: keys that must be given, keys that must not, and whether `url` must be a reference.
_REQUIRED = {"webhook": ("url", "secret"), "slack": ("url",), "pagerduty": ("routing_key",),
             "alertmanager": ("url",)}
_FORBIDDEN = {"webhook": ("routing_key",), "slack": ("secret", "routing_key"),
              "pagerduty": ("secret",), "alertmanager": ("secret", "routing_key")}
_SECRET_URL = {"slack"}


class NotifyConfigError(ConfigError):
    """The notifiers config is invalid or a secret reference cannot be resolved; the message
    names the key, never a secret's value."""


class NotifierConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",
                      description="unique; routes name notifiers by it")
    type: NotifierType
    url: str | None = Field(None, description=(
        "target URL; env:NAME / file:/path, or plain where the URL is not a credential "
        "(webhook, pagerduty, alertmanager). PagerDuty defaults to the public Events API v2"))
    secret: str | None = Field(None, description="webhook HMAC key: env:NAME or file:/path")
    routing_key: str | None = Field(None, description=(
        "PagerDuty integration key: env:NAME or file:/path"))
    timeout: Seconds = Field(5.0, description="per attempt: connect and each read")
    max_attempts: int = Field(5, ge=1, le=100, description="including the first attempt")
    backoff_base: Seconds = Field(0.5, description="first retry delay before jitter")
    backoff_max: Seconds = Field(30.0, description="cap on any retry delay, Retry-After too")

    @model_validator(mode="after")
    def _per_type(self) -> NotifierConfig:
        who = f"notifier {self.name!r} ({self.type})"
        for key in _REQUIRED[self.type]:
            if getattr(self, key) is None:
                raise ValueError(f"{who}: '{key}' is required")
        for key in _FORBIDDEN[self.type]:
            if getattr(self, key) is not None:
                raise ValueError(f"{who}: '{key}' is not a setting of this type")
        for key in ("secret", "routing_key"):
            value = getattr(self, key)
            if value is not None and not is_reference(value):
                raise ValueError(f"{who}: '{key}' must be env:NAME or file:/path, not a value "
                                 f"in clear")
        if self.url is not None and not is_reference(self.url):
            if self.type in _SECRET_URL:
                raise ValueError(f"{who}: 'url' is a credential for {self.type}; give it as "
                                 f"env:NAME or file:/path, not in clear")
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{who}: 'url' is not an http(s) URL with a host")
            if parts.username or parts.password:
                raise ValueError(f"{who}: 'url' carries credentials; give it as env:NAME or "
                                 f"file:/path")
        return self

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.backoff_base, self.backoff_max)


class NotifyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    notifiers: list[NotifierConfig] = Field(default_factory=list)
    queue_size: int = Field(1000, ge=1, description="per notifier; the oldest is dropped")

    @model_validator(mode="after")
    def _unique_names(self) -> NotifyConfig:
        seen: set[str] = set()
        for n in self.notifiers:
            if n.name in seen:
                raise ValueError(f"notifier name {n.name!r} is used twice; names are unique")
            seen.add(n.name)
        return self


def parse_notify_config(data: Mapping[str, Any] | None, source: str = "config") -> NotifyConfig:
    """Validate a mapping holding a `notifiers:` list; NotifyConfigError names each bad key."""
    try:
        return NotifyConfig.model_validate(dict(data or {}))
    except ValidationError as exc:
        raise NotifyConfigError(_format(exc, source)) from exc


def _format(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key '{path}'")
        else:  # inputs are never echoed: they may be secrets pasted in clear
            lines.append(f"{source}: '{path}': {e['msg'].removeprefix('Value error, ')}")
    return "; ".join(lines)


def _resolve(value: str, *, key: str, env: Mapping[str, str] | None) -> str | Secret:
    return Secret.resolve(value, key=key, env=env) if is_reference(value) else value


def build_notifier(config: NotifierConfig, env: Mapping[str, str] | None = None) -> Notifier:
    """One notifier; secret references resolved now (env defaults to os.environ)."""
    key = f"notifiers[{config.name}]"
    try:
        if config.type == "webhook":
            return WebhookNotifier(
                config.name, _resolve(config.url, key=f"{key}.url", env=env),
                Secret.resolve(config.secret, key=f"{key}.secret", env=env),
                timeout=config.timeout)
        if config.type == "slack":
            return SlackNotifier(config.name, _resolve(config.url, key=f"{key}.url", env=env),
                                 timeout=config.timeout)
        if config.type == "pagerduty":
            return PagerDutyNotifier(
                config.name, Secret.resolve(config.routing_key, key=f"{key}.routing_key",
                                            env=env),
                url=_resolve(config.url or PAGERDUTY_URL, key=f"{key}.url", env=env),
                timeout=config.timeout)
        return AlertmanagerNotifier(config.name, _resolve(config.url, key=f"{key}.url",
                                                          env=env), timeout=config.timeout)
    except SecretError as exc:
        raise NotifyConfigError(str(exc)) from exc
    except ValueError as exc:  # a resolved URL that is not http(s): the message hides it
        raise NotifyConfigError(f"{key}: {exc}") from exc


def build_notifiers(config: NotifyConfig | Sequence[NotifierConfig],
                    env: Mapping[str, str] | None = None) -> dict[str, Notifier]:
    """name -> notifier, in config order. Fails on the first unresolvable reference."""
    items = config.notifiers if isinstance(config, NotifyConfig) else config
    return {c.name: build_notifier(c, env) for c in items}


def build_dispatcher(config: NotifyConfig, *, dead_letter: DeadLetter | None = None,
                     env: Mapping[str, str] | None = None,
                     sleep: Callable[[float], None] | None = None) -> Dispatcher:
    """A Dispatcher over `build_notifiers(config)` with each notifier's retry policy.
    Not started: call start()."""
    return Dispatcher(build_notifiers(config, env), dead_letter=dead_letter,
                      retries={c.name: c.retry for c in config.notifiers},
                      queue_size=config.queue_size, sleep=sleep)
