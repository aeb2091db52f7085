"""The `policyscope` command. Every flag can also come from the config file (--config or
POLICYSCOPE_CONFIG) and from POLICYSCOPE_<SETTING> environment variables; flags win.

This module is the root app and the list of verbs; each verb lives with its group:
`run` (collector, up, demo, dashboard, worker), `storage` (migrate, sql), `batch` (batch,
sli show), `slos` (slo ...), `alerts` (alerts ...), `deadletters` (list, replay, purge),
`imports` (import KIND FILE), `catalog` (catalog validate, load, show, versions, missing).
Shared options and start-up are in `options`, printing tables / JSON / CSV in `output`.
Verbs import their heavy modules when they run, so `policyscope --help` stays fast.
"""

from __future__ import annotations

import typer

from policyscope.cli import (alerts, batch, catalog, deadletters, imports, run, slos, storage,
                             users)

app = typer.Typer(
    help="PolicyScope: policy observability and security SLOs over OpenTelemetry and "
         "ClickHouse.",
    no_args_is_help=True, add_completion=False, rich_markup_mode=None)

# The order here is the order of `policyscope --help`.
app.command("collector")(run.collector)
app.command("up")(run.up)
app.command("demo")(run.demo_cmd)
app.command("migrate")(storage.migrate)
app.command("sql")(storage.sql)
app.command("dashboard")(run.dashboard)
app.command("batch")(batch.batch)
app.command("worker")(run.worker)
app.command("import")(imports.import_cmd)
app.add_typer(batch.sli_app, name="sli")
app.add_typer(slos.slo_app, name="slo")
app.add_typer(alerts.alerts_app, name="alerts")
app.add_typer(deadletters.deadletters_app, name="deadletters")
app.add_typer(users.users_app, name="users")
app.add_typer(catalog.catalog_app, name="catalog")


def main() -> None:
    app()
