"""The example configs of the native sources (examples/opa, examples/falco) name the routes the
collector serves: OPA's service URL + /logs[/<partition>] and falcosidekick's webhook
address resolve to the receivers on the collector's HTTP port."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from collector.config import CollectorConfig
from collector.receivers.json_http import add_native_routes

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def handler_name(path: str) -> str | None:
    """The receiver class serving POST `path`, or None when no route matches."""
    app = web.Application()
    add_native_routes(app, None, CollectorConfig())
    match = asyncio.run(app.router.resolve(make_mocked_request("POST", path, app=app)))
    if match.http_exception is not None:
        return None
    return match.handler.__closure__ and next(
        type(c.cell_contents).__name__ for c in match.handler.__closure__
        if type(c.cell_contents).__name__ in ("OpaDecisionLogs", "FalcoWebhook"))


def test_opas_example_config_uploads_to_the_opa_route_on_the_http_port():
    config = yaml.safe_load((EXAMPLES / "opa" / "opa-config.yaml").read_text())
    service_name = config["decision_logs"]["service"]
    service = next(s for s in config["services"] if s["name"] == service_name)
    url = urlsplit(service["url"])
    assert url.port == CollectorConfig().http_port
    assert "token_path" in service["credentials"]["bearer"]
    assert handler_name(url.path + "/logs") == "OpaDecisionLogs"
    assert handler_name(url.path + "/logs/prod-eu-1") == "OpaDecisionLogs"  # partition_name
    assert handler_name(url.path + "/nothing") is None  # the check can fail


def test_falcosidekicks_example_values_post_to_the_falco_route_on_the_http_port():
    values = yaml.safe_load((EXAMPLES / "falco" / "falcosidekick-values.yaml").read_text())
    webhook = values["config"]["webhook"]
    url = urlsplit(webhook["address"])
    assert url.port == CollectorConfig().http_port
    assert handler_name(url.path) == "FalcoWebhook"
    assert webhook["customHeaders"].startswith("Authorization:Bearer ")
