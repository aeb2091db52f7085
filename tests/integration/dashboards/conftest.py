"""The dashboard tests' fixtures (`tests/builders/dashboards.py`): a test database the app
reads through POLICYSCOPE_CONFIG, and the SLO directory its config names."""

from tests.builders.dashboards import dashboard_db, slo_dir  # noqa: F401 - fixtures
