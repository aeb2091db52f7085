"""The policy catalog against chDB: versions (the same content twice is one version, changed
content is a new one and the latest wins, the catalog as it was at a past time, two racing
loads of the same content stored once), the policies seen in decisions but missing from the
catalog (flagged with their counts, to the minute across hour edges), the dashboards' frames,
the `policyscope catalog` verbs through typer's CliRunner, and alert notifications that carry
the policy's runbook and owner from the stored catalog."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from catalog import store
from catalog.frames import annotate, catalog_frame, missing_policies
from catalog.load import CatalogInvalid, load_at_start, load_paths, load_text
from policyscope.cli import app
from slo.alerting import AlertEvaluator
from slo.notify import Dispatcher, Notification
from slo.notify.alertmanager import postable
from slo.routing import Route, Router
from slo.spec import parse
from tests.builders.rows import dec, insert_decisions
from tests.builders.slos import slo_doc

pytestmark = pytest.mark.integration

UTC = timezone.utc
ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
RUNBOOK = "https://wiki.example.com/runbooks/{id}"


def entry(policy_id: str, *, severity: str = "high", owner: str = "platform") -> str:
    return (f"  - id: {policy_id}\n    title: {policy_id} title\n    owner: {owner}\n"
            f"    category: hardening\n    severity: {severity}\n"
            f"    controls: [{{framework: SOC 2, control: CC6.1}}]\n"
            f"    runbook: {RUNBOOK.format(id=policy_id)}\n")


def write(path: Path, *entries: str) -> Path:
    path.write_text("policies:\n" + "".join(entries))
    return path


@pytest.fixture
def store_client(chdb_client, database):
    return chdb_client


# -- versions ---------------------------------------------------------------------------------

def test_loading_the_same_content_twice_stores_one_version(store_client, tmp_path):
    path = write(tmp_path / "a.yaml", entry("k8s.a"), entry("k8s.b"))
    first = load_paths(store_client, [path])
    again = load_paths(store_client, [tmp_path])  # same content, read through the directory
    assert first.added and not again.added
    assert again.version.digest == first.version.digest
    assert len(store.versions(store_client)) == 1


def test_up_and_worker_load_the_catalog_directory_at_start_and_survive_a_bad_one(
        store_client, tmp_path, caplog):
    assert load_at_start(store_client, tmp_path / "absent") is None
    assert store.latest(store_client) is None
    write(tmp_path / "a.yaml", entry("k8s.a"))
    loaded = load_at_start(store_client, tmp_path)
    assert loaded is not None and loaded.added
    assert load_at_start(store_client, tmp_path).added is False  # a restart adds no version
    write(tmp_path / "b.yaml", entry("k8s.b", severity="urgent"))
    assert load_at_start(store_client, tmp_path) is None  # logged, not raised, not stored
    assert "severity" in caplog.text and "catalog validate" in caplog.text
    assert [p.id for p in store.latest(store_client).catalog] == ["k8s.a"]


def test_changed_content_is_a_second_version_and_the_latest_wins(store_client, tmp_path):
    path = write(tmp_path / "a.yaml", entry("k8s.a"), entry("k8s.b"))
    first = load_paths(store_client, [path], loaded_at=T0)
    write(path, entry("k8s.a", severity="low"), entry("k8s.c"))
    second = load_paths(store_client, [path], loaded_at=T0 + timedelta(hours=1))
    assert second.added and second.version.digest != first.version.digest
    latest = store.latest(store_client)
    assert [(p.id, p.severity) for p in latest.catalog] == [("k8s.a", "low"), ("k8s.c", "high")]
    assert latest.catalog.get("k8s.a").controls[0].control == "CC6.1"
    assert [v["digest"] for v in store.versions(store_client)] == [
        second.version.digest, first.version.digest]
    # the catalog as it was in between, and before anything was loaded
    past = store.latest(store_client, T0 + timedelta(minutes=30))
    assert [p.id for p in past.catalog] == ["k8s.a", "k8s.b"]
    assert store.latest(store_client, T0 - MINUTE) is None
    # going back to the first content is a change again: a third version, latest
    write(path, entry("k8s.a"), entry("k8s.b"))
    third = load_paths(store_client, [path], loaded_at=T0 + timedelta(hours=2))
    assert third.added and third.version.digest == first.version.digest
    assert len(store.versions(store_client)) == 3


def test_a_stored_version_reads_back_equal_to_what_was_loaded(store_client):
    text = (ROOT / "policies" / "kubernetes.yaml").read_text()
    loaded = load_text(store_client, text, source="kubernetes.yaml")
    stored = store.latest(store_client)
    assert stored.catalog == loaded.version.catalog and stored.digest == stored.catalog.digest
    assert stored.source == "kubernetes.yaml" and len(stored) == 6


def test_an_invalid_catalog_stores_nothing(store_client, tmp_path):
    good = write(tmp_path / "a.yaml", entry("k8s.a"))
    bad = write(tmp_path / "b.yaml", entry("k8s.b", severity="urgent"))
    with pytest.raises(CatalogInvalid) as raised:
        load_paths(store_client, [good, bad])
    assert str(raised.value.problems[0]).startswith(f"{bad}:6: policies[0].severity")
    assert store.versions(store_client) == []


def test_two_loads_of_the_same_content_racing_store_one_version(store_client, tmp_path):
    path = write(tmp_path / "a.yaml", entry("k8s.a"))
    load_paths(store_client, [path])
    write(path, entry("k8s.a"), entry("k8s.b"))
    # both loaders saw the same latest version and insert the same change
    from catalog.parse import check_paths

    catalog = check_paths([path]).catalog
    previous = store.latest(store_client)
    token = f"policy-catalog:{previous.loaded_at.isoformat()}:{catalog.digest}"
    for source in ("loader-1", "loader-2"):
        store.insert_version(store_client, catalog, source=source, token=token)
    assert len(store.versions(store_client)) == 2


# -- policies missing from the catalog --------------------------------------------------------

def test_policies_seen_in_decisions_but_absent_from_the_catalog_are_listed(store_client,
                                                                           tmp_path):
    load_paths(store_client, [write(tmp_path / "a.yaml", entry("k8s.a"))])
    start = T0 + 50 * MINUTE  # 12:50, so the range has minute edges on both sides of hours
    insert_decisions(store_client, [
        *(dec(start + i * MINUTE, policy_id="k8s.a") for i in range(90)),
        *(dec(start + i * 3 * MINUTE, policy_id="k8s.unknown") for i in range(30)),
        dec(start + 20 * MINUTE, "deny", policy_id="custom.rule"),
        dec(start - MINUTE, policy_id="before.range"),
        dec(start + 120 * MINUTE, policy_id="after.range"),
    ])
    end = start + 120 * MINUTE  # [12:50, 14:50): hours 13:00-14:00 whole, minutes at the edges
    missing = missing_policies(store_client, start, end)
    assert missing.rows() == [("k8s.unknown", 30), ("custom.rule", 1)]
    counts = store.decision_counts(store_client, start, end)
    assert counts == {"k8s.a": 90, "k8s.unknown": 30, "custom.rule": 1}
    # a range inside one hour reads minutes only
    assert store.decision_counts(store_client, start, start + 5 * MINUTE) == {
        "k8s.a": 5, "k8s.unknown": 2}
    # with no catalog given every policy seen would be missing; they are never dropped
    frame = pl.DataFrame({"policy_id": ["k8s.a", "k8s.unknown"], "decisions": [90, 30]})
    flagged = annotate(frame, catalog_frame(store_client))
    assert flagged.select("policy_id", "owner", "in_catalog").rows() == [
        ("k8s.a", "platform", True), ("k8s.unknown", None, False)]


def test_the_dashboards_frame_is_keyed_by_policy_id_and_empty_before_any_load(store_client,
                                                                              tmp_path):
    empty = catalog_frame(store_client)
    assert empty.height == 0 and "runbook" in empty.columns
    load_paths(store_client, [ROOT / "policies"])
    frame = catalog_frame(store_client)
    assert frame["policy_id"].is_unique().all() and frame.height == 6
    row = frame.filter(pl.col("policy_id") == "k8s.allowed-registries").row(0, named=True)
    assert row["severity"] == "critical" and row["owner"] == "security"
    assert "CIS Kubernetes Benchmark v1.8 5.5.1" in row["controls_text"]


# -- the CLI ----------------------------------------------------------------------------------

@pytest.fixture
def cli(chdb_path, database):
    def run(*args: str):
        env = {"POLICYSCOPE_DSN": f"chdb://{chdb_path}", "POLICYSCOPE_DATABASE": database}
        return CliRunner().invoke(app, ["catalog", *args], env=env, prog_name="policyscope")
    return run


def test_validate_passes_the_example_and_fails_a_bad_file_with_file_line_messages(cli,
                                                                                  tmp_path):
    ok = cli("validate", str(ROOT / "policies"))
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("ok: 6 policies in 1 file(s)")
    bad = write(tmp_path / "bad.yaml", entry("k8s.a"), entry("k8s.a", severity="hgh"))
    result = cli("validate", str(bad))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{bad}:13: policies[1].severity: unknown severity 'hgh'; expected one of critical, "
        "high, medium, low, info",
        "1 problem(s) in the catalog"]
    assert "Traceback" not in result.output


def test_validate_without_paths_reads_the_configured_catalog_dir(cli, tmp_path):
    write(tmp_path / "x.yaml", entry("k8s.a"))
    result = cli("validate", "--catalog-dir", str(tmp_path))
    assert result.exit_code == 0 and "ok: 1 policies" in result.stdout


def test_load_show_versions_and_missing(cli, store_client, tmp_path):
    path = write(tmp_path / "a.yaml", entry("k8s.a"), entry("k8s.b"))
    first = cli("load", str(path))
    assert first.exit_code == 0, first.output
    assert "stored as a new version" in first.stdout
    again = cli("load", str(path))
    assert "unchanged: already the latest version" in again.stdout
    shown = cli("show", "--format", "json")
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert [p["id"] for p in document["policies"]] == ["k8s.a", "k8s.b"]
    assert document["policies"][0]["runbook"] == RUNBOOK.format(id="k8s.a")
    table = cli("show")
    assert "k8s.b" in table.stdout and "SOC 2 CC6.1" in table.stdout
    versions = cli("versions", "--format", "json")
    assert len(json.loads(versions.stdout)) == 1
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    insert_decisions(store_client, [dec(now - 10 * MINUTE, policy_id="k8s.a"),
                                    dec(now - 9 * MINUTE, "deny", policy_id="k8s.rogue"),
                                    dec(now - 8 * MINUTE, policy_id="k8s.rogue")])
    missing = cli("missing", "--last", "1h", "--end", (now + MINUTE).isoformat(),
                  "--format", "json")
    assert missing.exit_code == 0, missing.output
    assert json.loads(missing.stdout) == [{"policy_id": "k8s.rogue", "decisions": 2}]


def test_load_of_an_invalid_catalog_exits_1_and_stores_nothing(cli, store_client, tmp_path):
    bad = write(tmp_path / "a.yaml", entry("k8s.a").replace("https://", "javascript://"))
    result = cli("load", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:8: policies[0].runbook" in result.stderr
    assert "nothing was stored" in result.stderr
    assert store.versions(store_client) == []
    assert cli("show").exit_code == 1  # "no catalog stored: load one with ..."


# -- alert notifications ----------------------------------------------------------------------

class Recorder:
    name = "pager"

    def __init__(self):
        self.sent: list[Notification] = []
        self._lock = threading.Lock()

    def send(self, notification: Notification) -> None:
        with self._lock:
            self.sent.append(notification)


def burn(client, policy_id: str) -> None:
    """An hour of decisions for `policy_id` whose last 10 minutes are 20 % errors: the page
    pair 1h/5m of a 99.9 % SLO fires at T0."""
    rows, t = [], T0 - 60 * MINUTE
    while t < T0:
        burning = t >= T0 - 10 * MINUTE
        rows += [dec(t + timedelta(seconds=6 * i), "error" if burning and i < 2 else "allow",
                     policy_id=policy_id) for i in range(10)]
        t += MINUTE
    insert_decisions(client, rows)


def evaluate(client, document) -> list[Notification]:
    recorder = Recorder()
    dispatcher = Dispatcher({recorder.name: recorder})
    dispatcher.start()
    try:
        router = Router([Route(match={"severity": "page"}, notifiers=["pager"])])
        AlertEvaluator(client, [parse(document)], dispatcher=dispatcher, router=router,
                       dashboard_url="http://dash.test").run(T0)
        assert dispatcher.flush(5)
    finally:
        dispatcher.shutdown(5)
    return recorder.sent


def test_a_page_for_a_policy_carries_its_catalog_runbook_and_owner(store_client, tmp_path):
    load_paths(store_client, [write(tmp_path / "a.yaml", entry("k8s.a", owner="security"))])
    burn(store_client, "k8s.a")
    burn(store_client, "k8s.uncatalogued")
    sent = evaluate(store_client, slo_doc(by=["policy"]))
    notices = {a.dimensions["policy"]: a for n in sent for a in n.alerts}
    assert set(notices) == {"k8s.a", "k8s.uncatalogued"}  # the uncatalogued one still pages
    assert (notices["k8s.a"].runbook_url, notices["k8s.a"].owner_team) == (
        RUNBOOK.format(id="k8s.a"), "security")
    assert postable(notices["k8s.a"])["annotations"]["runbook_url"] == RUNBOOK.format(id="k8s.a")
    assert (notices["k8s.uncatalogued"].runbook_url, notices["k8s.uncatalogued"].owner_team) \
        == ("", "")


def test_the_slos_own_runbook_annotation_wins_and_pages_without_a_catalog(store_client):
    burn(store_client, "k8s.a")
    document = slo_doc(by=["policy"])
    document["metadata"]["annotations"] = {"runbook_url": "https://wiki.example.com/slo"}
    (notification,) = evaluate(store_client, document)
    (alert,) = notification.alerts
    assert (alert.runbook_url, alert.owner_team) == ("https://wiki.example.com/slo", "")


def test_import_catalog_stores_a_file_or_stdin_as_a_version_and_refuses_a_bad_one(
        chdb_path, database, tmp_path):
    env = {"POLICYSCOPE_DSN": f"chdb://{chdb_path}", "POLICYSCOPE_DATABASE": database}
    path = write(tmp_path / "c.yaml", entry("k8s.a"))

    def run(*args, stdin=None):
        return CliRunner().invoke(app, ["import", "catalog", *args], env=env, input=stdin,
                                  prog_name="policyscope")
    first = run(str(path))
    assert first.exit_code == 0, first.output
    assert "stored as a new version" in first.output
    again = run("-", stdin=path.read_text())  # the same content from stdin: no new version
    assert again.exit_code == 0 and "unchanged" in again.output
    bad = run("-", stdin="policies:\n" + entry("k8s.b", severity="urgent"))
    assert bad.exit_code == 2
    assert "-:" in bad.output and "severity" in bad.output and "nothing was stored" in bad.output
    sent = CliRunner().invoke(app, ["import", "catalog", str(path), "--endpoint",
                                    "http://127.0.0.1:1"], env=env, prog_name="policyscope")
    assert sent.exit_code == 2 and "--dsn" in sent.output
