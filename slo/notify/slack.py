"""Slack incoming webhook: `text` (the push-notification and fallback line) plus Block Kit
`blocks`: a header, then one section per alert of the group.

Block Kit has no colour outside legacy attachments, so state and tier show as coloured emoji:
:red_circle: page firing, :large_orange_circle: ticket firing, :large_green_circle: resolved.
Slack allows 50 blocks and 3000 characters per section; larger groups end with an
"and N more" context block. The webhook URL is itself the credential: it is a `Secret`.
"""

from __future__ import annotations

from typing import Any

from slo.notify import describe
from slo.notify.base import AlertNotice, Notification
from slo.notify.secrets import Secret, reveal
from slo.notify.transport import check_url, encode_json, post

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
EMOJI = {("page", "firing"): ":red_circle:", ("ticket", "firing"): ":large_orange_circle:",
         ("page", "resolved"): ":large_green_circle:",
         ("ticket", "resolved"): ":large_green_circle:"}


def escape(text: str) -> str:
    """Slack mrkdwn control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str) -> str:
    """A URL inside Slack's <url|text>: the characters that would end it percent-encoded.

    >>> link("https://wiki/x?a=1|2>")
    'https://wiki/x?a=1%7C2%3E'
    """
    return url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")


def emoji(severity: str, state: str) -> str:
    return EMOJI[(severity, state)]


def _section(alert: AlertNotice) -> dict[str, Any]:
    lines = [f"{emoji(alert.severity, alert.state)} *{escape(alert.summary)}*",
             f"_{alert.state}_ · {escape(describe.dimensions(alert))}",
             escape(describe.burn_line(alert)),
             escape(describe.budget_line(alert))]
    if alert.dashboard_url:
        lines.append(f"<{alert.dashboard_url}|Open in the dashboard>")
    if alert.runbook_url or alert.owner_team:
        lines.append(" · ".join(
            ([f"<{link(alert.runbook_url)}|Runbook>"] if alert.runbook_url else [])
            + ([f"owner: {escape(alert.owner_team)}"] if alert.owner_team else [])))
    text = "\n".join(lines)
    if len(text) > MAX_SECTION_TEXT:
        text = text[:MAX_SECTION_TEXT - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def render(notification: Notification) -> dict[str, Any]:
    icon = emoji(notification.severity, notification.state)
    title = notification.title
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {
        "type": "plain_text", "text": f"{icon} {title}"[:MAX_HEADER_TEXT], "emoji": True}}]
    alerts = notification.alerts
    room = MAX_BLOCKS - 1 if len(alerts) <= MAX_BLOCKS - 1 else MAX_BLOCKS - 2
    blocks.extend(_section(a) for a in alerts[:room])
    if len(alerts) > room:
        blocks.append({"type": "context", "elements": [{
            "type": "mrkdwn", "text": f"and {len(alerts) - room} more alerts of this group"}]})
    return {"text": f"{icon} {escape(title)}", "blocks": blocks}


class SlackNotifier:
    """POSTs `render(notification)` to a Slack incoming-webhook URL."""

    def __init__(self, name: str, url: str | Secret, *, timeout: float = 5.0):
        check_url(reveal(url), key=f"notifier {name!r} url")
        self.name = name
        self.timeout = timeout
        self._url = url

    def send(self, notification: Notification) -> None:
        post(reveal(self._url), encode_json(render(notification)), target=self.name,
             timeout=self.timeout)

    def __repr__(self) -> str:
        url = self._url if isinstance(self._url, Secret) else "<url>"
        return f"SlackNotifier({self.name!r}, url={url!r})"
