"""Demo traffic for PolicyScope: real Rego (regopy) admission decisions over a seeded
Kubernetes fleet, sent as OTLP log events through the OpenTelemetry SDK.

    from policyscope.demo import DemoTraffic
    stats = DemoTraffic("http://localhost:4317", "grpc", rate=50).run(duration=60)
"""
from .engine import CATALOG, Evaluation, PolicyEngine, PolicySpec
from .traffic import DemoStats, DemoTraffic

__all__ = ["CATALOG", "DemoStats", "DemoTraffic", "Evaluation", "PolicyEngine", "PolicySpec"]
