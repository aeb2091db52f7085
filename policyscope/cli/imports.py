"""`policyscope import KIND FILE|-`: a tool's output file -> events, through a collector
(`--endpoint`) or written directly (`--dsn`, the default when no endpoint is configured).

The importers (importers/) build OTLP log records of the wire contract; this module is where
they meet the collector, which the importers may not import (siblings): every record goes
through the collector's own normalizer and RowBuilder (coercion, rejects, stable ids,
redaction) -- in process here before anything is sent or stored, so a record the contract
refuses fails the whole import instead of a silent partial -- then either over OTLP/HTTP to
a running collector or into ClickHouse by the collector's exactly-once insert
(`ClickHouseWriter.store_accepted`). State-only KINDs diff against snapshots in ClickHouse,
so they need the storage DSN even with `--endpoint` (a ClickHouse server DSN, or `--no-diff`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from policyscope.cli import output
from policyscope.cli.options import (
    ConfigOpt,
    DsnOpt,
    check_format,
    fail,
    open_store,
    parse_time,
    setup,
)

PROGRESS_MIN_RECORDS = 10_000  # smaller imports finish before a bar would be read


class DirectDelivery:
    """The collector's normalizer and exactly-once insert, in this process."""

    def __init__(self, client, database: str, normalizer):
        self.client, self.database, self.normalizer = client, database, normalizer

    def deliver(self, requests, progress=None) -> None:
        from clickhouse_connect.driver.exceptions import ClickHouseError

        from collector.writer import ClickHouseWriter
        from importers.errors import DeliveryFailed

        batches = checked(self.normalizer, requests)
        writer = ClickHouseWriter(self.client, self.database, None,
                                  instance=f"import{os.getpid()}", max_rows=1_000_000,
                                  max_delay=0.0)
        total, done = sum(b.accepted for b in batches), 0
        try:
            writer.create_staging()
            for batch in batches:
                refused = writer.store_accepted(batch.tables.items())
                if refused.rows:
                    raise DeliveryFailed(f"storage refused {refused.rows} rows: "
                                         f"{dict(refused.reasons)}; the rest is stored, "
                                         "re-running the import is safe")
                done += batch.accepted
                if progress is not None:
                    progress(done, total)
        except ClickHouseError as exc:
            raise DeliveryFailed(f"storage failed: {str(exc).splitlines()[0]}; re-running the "
                                 "import is safe") from None
        finally:
            writer.drop_staging()


class CheckedDelivery:
    """Another delivery (OTLP/HTTP), after the same in-process check of every record."""

    def __init__(self, inner, normalizer):
        self.inner, self.normalizer = inner, normalizer

    def deliver(self, requests, progress=None) -> None:
        checked(self.normalizer, requests)
        self.inner.deliver(requests, progress)


def checked(normalizer, requests) -> list:
    """Every request normalized by the collector's own normalizer; raises DeliveryFailed when
    the contract refuses any record (before anything is sent or stored)."""
    from importers.errors import DeliveryFailed

    batches = [normalizer.logs(r) for r in requests]
    rejected = sum(b.rejected for b in batches)
    if rejected:
        first = next(b for b in batches if b.rejected)
        raise DeliveryFailed(f"{rejected} events break the event contract, so nothing was "
                             f"imported: {first.reject_message()}")
    return batches


def import_cmd(
    kind: str = typer.Argument(..., help="the tool's format: policyreport, gatekeeper, "
                               "inventory, heartbeat, cyclonedx, trivy, grype, osv, pip-audit, "
                               "checkov, conftest, sarif, detect-secrets, gitleaks; catalog "
                               "(the policy catalog; see docs/sources/importers.md)"),
    file: str = typer.Argument("-", help="the tool's output file; - reads stdin"),
    config_file: Optional[Path] = ConfigOpt,
    dsn: Optional[str] = DsnOpt,
    endpoint: Optional[str] = typer.Option(
        None, "--endpoint", help="send over OTLP/HTTP to this collector, e.g. "
        "http://collector:4318 (also POLICYSCOPE_IMPORT_ENDPOINT) [default: write to --dsn]"),
    token: Optional[str] = typer.Option(None, "--token", help="bearer token for --endpoint "
                                        "(prefer POLICYSCOPE_IMPORT_TOKEN or --token-file)"),
    token_file: Optional[Path] = typer.Option(None, "--token-file", dir_okay=False,
                                              help="file holding the bearer token"),
    team: Optional[str] = typer.Option(None, "--team", help="team.name of the events"),
    environment: Optional[str] = typer.Option(None, "--environment", help="environment"),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="k8s.cluster.name (also "
                                          "part of the diff's source keys)"),
    pipeline: Optional[str] = typer.Option(None, "--pipeline", help="CI pipeline "
                                           "[default: from GITHUB_* / CI_*]"),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="CI pipeline run id"),
    commit: Optional[str] = typer.Option(None, "--commit", help="commit SHA"),
    repository: Optional[str] = typer.Option(None, "--repository", help="repository URL"),
    team_label: Optional[str] = typer.Option(None, "--team-label", help="inventory: label or "
                                             "annotation naming the team [default: team]"),
    enforced_label: Optional[str] = typer.Option(
        None, "--enforced-label", help="inventory: label or annotation true/false "
        "[default: policyscope.io/enforced]"),
    diff: Optional[bool] = typer.Option(None, "--diff/--no-diff", help="diff state-only "
                                        "sources against their stored snapshot [default: on]"),
    prune: Optional[bool] = typer.Option(None, "--prune/--no-prune", help="policyreport: the "
                                         "List is complete; reports gone from it are diffed "
                                         "as empty [default: off]"),
    at: Optional[str] = typer.Option(None, "--at", help="the snapshot's time (UTC, ISO 8601) "
                                     "[default: now]"),
    artifact: str = typer.Option("", "--artifact", help="cyclonedx, trivy, grype, osv, "
                                 "pip-audit: the artifact (image reference, application) "
                                 "the file is about, over the name the tool wrote"),
    output_format: str = typer.Option("table", "--format", "-f", help="table or json"),
    log_level: str = typer.Option("WARNING", "--log-level", help="DEBUG, INFO, WARNING, ERROR"),
) -> None:
    """Import a policy engine's or scanner's output as PolicyScope events.

    Idempotent: every event's id comes from its content, so importing a file again stores
    nothing twice. A malformed file is refused with the position of the problem and nothing
    of it is imported.
    """
    import time

    from importers import registry, run
    from importers.errors import DeliveryFailed, MalformedInput
    from importers.facts import SourceFacts
    from importers.parsing import Options
    from importers.snapshots import SnapshotStore

    config = setup(config_file, log_level, dsn=dsn, import_endpoint=endpoint,
                   import_token=token, import_token_file=token_file, import_team=team,
                   import_environment=environment, import_cluster=cluster,
                   import_pipeline=pipeline, import_run_id=run_id, import_commit=commit,
                   import_repository=repository, import_team_label=team_label,
                   import_enforced_label=enforced_label, import_diff=diff, import_prune=prune)
    check_format(output_format)
    if kind == CATALOG:
        return _import_catalog(config, file)
    if kind not in registry.IMPORTERS:
        fail(f"unknown KIND {kind!r}; expected one of {', '.join(sorted(registry.IMPORTERS))}")
    c = config.imports
    when = parse_time(at, "--at")
    at_ms = int((when.timestamp() if when else time.time()) * 1000)
    facts = SourceFacts(c.import_team, c.import_environment, c.import_cluster,
                        c.import_pipeline, c.import_run_id, c.import_commit,
                        c.import_repository).with_ci(os.environ)
    options = Options(facts, at_ms, c.import_team_label, c.import_enforced_label,
                      c.import_prune, artifact=artifact)
    document = _read(file)
    try:
        parsed = run.parse(kind, document, options)
        diffing = c.import_diff and bool(parsed.listings)
        with _storage(config, needed=c.import_endpoint is None or diffing) as client:
            store = SnapshotStore(client) if diffing else None
            plan = run.prepare(kind, parsed, options, store, source=document.name)
            delivery = _delivery(config, client)
            with _progress(len(plan.events)) as progress:
                delivery.deliver(plan.requests, progress)
            run.finish(plan, store)
    except MalformedInput as exc:
        fail(str(exc))
    except (DeliveryFailed, ValueError, OSError) as exc:
        fail(str(exc), 1)
    report = plan.report()
    if not c.import_diff and parsed.listings:
        report.diffed = False
    _print(report, output_format)


CATALOG = "catalog"  # the policy catalog: stored as a version, not sent as events


def _import_catalog(config, file: str) -> None:
    """`import catalog FILE|-`: what `policyscope catalog load` does, for one file or stdin:
    every problem on stderr (file:line: what) and nothing stored, or a new version unless the
    content is the latest already. The catalog lives in storage, so it needs the DSN."""
    from catalog.load import load_catalog
    from catalog.parse import check_paths, check_sources

    if config.imports.import_endpoint:
        fail("the policy catalog is stored as a version, not sent as events: import it with "
             "--dsn (or POLICYSCOPE_DSN), not --endpoint", 2)
    checked = check_sources([("-", sys.stdin.read())]) if file == "-" else check_paths([file])
    for problem in checked.problems:
        typer.echo(str(problem), err=True)
    if not checked.ok:
        fail(f"{len(checked.problems)} problem(s) in the catalog; nothing was stored", 2)
    client = open_store(config)
    try:
        loaded = load_catalog(client, checked.catalog, source=file)
    finally:
        client.close()
    typer.echo(loaded.describe())


def _delivery(config, client):
    """OTLP/HTTP to import_endpoint, else the collector's writer on `client`; both after the
    collector's own normalizer has taken every record."""
    from collector.normalize import Normalizer
    from collector.rows import RowBuilder, row_settings
    from importers.otlp_http import OtlpHttpDelivery

    normalizer = Normalizer(rows=RowBuilder(**row_settings(config.collector)))
    c = config.imports
    if c.import_endpoint:
        return CheckedDelivery(OtlpHttpDelivery(c.import_endpoint, c.token()), normalizer)
    return DirectDelivery(client, client.database, normalizer)


def _read(file: str):
    from importers.documents import Document

    if file == "-":
        return Document("<stdin>", sys.stdin.read())
    try:
        return Document(file, Path(file).read_text(encoding="utf-8"))
    except FileNotFoundError:
        fail(f"{file}: no such file")
    except UnicodeDecodeError as exc:
        fail(f"{file}: at byte {exc.start}: expected UTF-8 text")
    except OSError as exc:
        fail(f"{file}: {exc.strerror}", 1)


class _storage:
    """The storage client (migrated) when the import needs one, else None; closed on exit.
    While a collector owns the embedded store, says what to do instead."""

    def __init__(self, config, needed: bool):
        self.config, self.needed, self.client = config, needed, None

    def __enter__(self):
        if not self.needed:
            return None
        from clickhouse_connect.driver.exceptions import ClickHouseError

        from core.storage import StorageError, StorageLockedError, connect
        from schemas.migrations import migrate

        storage = self.config.storage
        try:
            self.client, target = connect(storage.dsn, storage.database)
            migrate(self.client, target.database, retention_days=storage.retention_days)
        except StorageLockedError as exc:
            fail(f"{exc}; import through the running collector instead: --endpoint "
                 "http://127.0.0.1:<its OTLP/HTTP port> (state-only KINDs then need --no-diff, "
                 "or a ClickHouse server DSN for their snapshots)", 1)
        except StorageError as exc:
            fail(str(exc), 1)
        except ClickHouseError as exc:
            fail(f"storage refused the schema migration: {str(exc).splitlines()[0]}", 1)
        return self.client

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        return False


class _progress:
    """A progress bar on stderr for large imports on a terminal (like `deadletters replay`)."""

    def __init__(self, total: int):
        self.total = total

    def __enter__(self):
        from rich.console import Console
        from rich.progress import Progress

        console = Console(stderr=True)
        self.bar = Progress(console=console, transient=True,
                            disable=not console.is_terminal or self.total < PROGRESS_MIN_RECORDS)
        self.bar.__enter__()
        task = self.bar.add_task("importing", total=self.total)
        return lambda done, total: self.bar.update(task, completed=done, total=total)

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)


def _print(report, output_format: str) -> None:
    data = report.__dict__
    if output_format == "json":
        output.emit_json(data)
        return
    events = ", ".join(f"{n} {k}" for k, n in sorted(report.events.items())) or "no events"
    typer.echo(f"{report.source}: {report.objects} {report.kind} objects -> {events}")
    if report.sources:
        typer.echo(f"diffed {report.sources} sources: {report.opened} opened, "
                   f"{report.remediated} remediated"
                   + (f", {report.unlisted} kept open (not listed by {report.capped} capped "
                      "sources)" if report.unlisted else ""))
    if not report.diffed:
        typer.echo("not diffed (--no-diff): no opened / remediated violations")
    for key in report.stale:
        typer.echo(f"not diffed: {key} is older than its stored snapshot")
    for reason, n in sorted(report.skipped.items()):
        typer.echo(f"skipped {n} {reason}")
