"""The Debug page's reads: rows, bounded by the time range and a LIMIT -- a decision-log search
(paginated), one full record, the audit trail of a resource and an image's SBOM,
vulnerability and secret events -- and a latency distribution from the decision rollups'
histogram (through the read API, as every percentile shown)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from clickhouse_connect.driver.client import Client

from dashboards.queries import TIME, dimension_filter, frame, time_range
from metrics import read
from metrics.latency import bucket_lower, bucket_upper
from schemas.events import DECISIONS, EVENTS
from schemas.tables import TRIAGE_HISTORY

# what the search matches -> the columns it compares with (exactly)
SEARCH = {"resource": ("resource_name", "resource_id"), "workload": ("service",),
          "actor": ("actor",), "policy": ("policy_id",), "trace id": ("trace_id",),
          "event id": ("event_id",)}
RESULT_COLUMNS = ["event_time", "event_id", "team", "service", "policy_id", "policy_version",
                  "outcome", "enforcement", "resource_kind", "resource_name", "actor", "reason",
                  "trace_id"]
IMAGE_KINDS = ("sbom.generated", "vuln.detected", "secret.detected")
IMAGE_COLUMNS = ["event_time", "event_kind", "severity", "vulnerability_id", "package_name",
                 "package_version", "package_fixed_version", "sbom_format", "sbom_components",
                 "secret_rule", "secret_fingerprint", "repository", "file_path"]
TRAIL_COLUMNS = ["time", "kind", "policy_id", "what", "reason", "id"]


def search(client: Client, field: str, value: str, start: datetime, end: datetime,
           where: dict[str, str], page: int = 0, page_size: int = 50
           ) -> tuple[pd.DataFrame, bool]:
    """Decisions in [start, end) whose `field` (a key of SEARCH) is `value`, newest first:
    page `page` (from 0) of `page_size`, and whether there is a next page."""
    if field not in SEARCH:
        raise ValueError(f"search field {field!r} is not one of {', '.join(SEARCH)}")
    value = value.strip().lower() if field == "trace id" else value.strip()
    match = " OR ".join(f"{column} = {{value:String}}" for column in SEARCH[field])
    times, params = time_range(start, end)
    filters, more = dimension_filter(where)
    rows = frame(client, f"""
        SELECT {', '.join(RESULT_COLUMNS)} FROM {DECISIONS.name}
        WHERE {times} AND ({match}) {filters}
        ORDER BY event_time DESC, event_id LIMIT {{limit:UInt32}} OFFSET {{offset:UInt64}}""",
                 {"value": value, "limit": page_size + 1, "offset": page * page_size,
                  **params, **more}, RESULT_COLUMNS)
    return rows.head(page_size), len(rows) > page_size


def record(client: Client, event_id: str, start: datetime, end: datetime,
           at: datetime | pd.Timestamp | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(field, value) of every column of one decision in the range, and its extra
    attributes (key, value); both empty when there is none. `at`, the decision's time when
    known (a search result's row; naive: UTC), narrows the read to it: the sort key then
    prunes the range to that day."""
    columns = [c for c in DECISIONS.column_names if c != "attributes"]
    times, params = time_range(start, end)
    if at is not None:
        stamp = pd.Timestamp(at)
        times += f" AND event_time = {{at:{TIME}}}"
        params["at"] = (stamp.tz_localize("UTC") if stamp.tzinfo is None
                        else stamp.tz_convert("UTC")).to_pydatetime()
    rows = client.query(f"""
        SELECT {', '.join(columns)}, attributes FROM {DECISIONS.name}
        WHERE {times} AND event_id = {{event_id:String}} LIMIT 1""",
                        parameters={"event_id": event_id, **params}).result_rows
    if not rows:
        return (pd.DataFrame(columns=["field", "value"]), pd.DataFrame(columns=["key", "value"]))
    *fields, attributes = rows[0]
    shown = pd.DataFrame({"field": columns, "value": ["" if v is None else str(v)
                                                       for v in fields]})
    extra = pd.DataFrame(sorted(dict(attributes).items()), columns=["key", "value"])
    return shown, extra


def latency_histogram(client: Client, start: datetime, end: datetime, where: dict[str, str]
                      ) -> tuple[pd.DataFrame, dict[str, float | None]]:
    """(bucket, upper_ms, decisions) of the decisions `where` selects over [start, end), from
    the first to the last non-empty histogram bucket, and their p50 / p95 / p99 (seconds)."""
    found = read.latency_percentiles(client, start, end, where=where,
                                     buckets=True).row(0, named=True)  # one read for both
    counts = [(i, int(found[f"b{i}"])) for i in [*range(1, len(read.BUCKETS)), 0]]
    used = [k for k, (_, n) in enumerate(counts) if n]
    rows = [] if not used else [
        {"bucket": _bucket(i), "upper_ms": bucket_upper(i) * 1000, "decisions": n}
        for i, n in counts[used[0]:used[-1] + 1]]
    return (pd.DataFrame(rows, columns=["bucket", "upper_ms", "decisions"]),
            {q: found[q] for q in read.QUANTILES})


def _bucket(index: int) -> str:
    def ms(seconds: float) -> str:
        return f"{seconds * 1000:g} ms"

    if index == 0:
        return f"> {ms(bucket_lower(0))}"
    return f"{ms(bucket_lower(index))} – {ms(bucket_upper(index))}"


def audit_trail(client: Client, resource: str, start: datetime, end: datetime,
                limit: int = 500) -> pd.DataFrame:
    """Every decision, violation, drift, deploy gate (and other event) about `resource`
    (its name or id) and every triage verdict given on it, in [start, end), oldest first:
    time, kind, policy_id, what (outcome, status, field, verdict change), reason, id."""
    params = {"resource": resource.strip(), "start": start, "end": end, "limit": int(limit)}
    decisions_times, _ = time_range(start, end)
    triage_times, _ = time_range(start, end, "triaged_at")
    subject = "(resource_name = {resource:String} OR resource_id = {resource:String})"
    return frame(client, f"""
        SELECT time, kind, policy_id, what, reason, id FROM (
            SELECT event_time AS time, 'policy.decision' AS kind, policy_id,
                   concat(outcome, if(enforcement = 'enforce', '', concat(' (', enforcement, ')')))
                   AS what, reason, event_id AS id
            FROM {DECISIONS.name} WHERE {decisions_times} AND {subject}
            UNION ALL
            SELECT event_time, event_kind, policy_id,
                   multiIf(event_kind = 'policy.violation', violation_status,
                           event_kind = 'deploy.gate', gate_outcome,
                           event_kind = 'drift.detected', drift_field, ''), reason, event_id
            FROM {EVENTS.name} WHERE {decisions_times} AND {subject}
            UNION ALL
            SELECT triaged_at, 'triage verdict', policy_id,
                   concat(if(previous_verdict = '', '(none)', previous_verdict), ' → ',
                          if(verdict = '', '(none)', verdict), ' by ', analyst),
                   reason, subject_id
            FROM {TRIAGE_HISTORY} WHERE {triage_times} AND resource_name = {{resource:String}})
        ORDER BY time, kind, id LIMIT {{limit:UInt32}}""", params, TRAIL_COLUMNS)


def image_timeline(client: Client, image: str, start: datetime, end: datetime,
                   limit: int = 500) -> pd.DataFrame:
    """The SBOM, vulnerability and secret events of one image in [start, end), oldest
    first (`IMAGE_COLUMNS`)."""
    times, params = time_range(start, end)
    rows = frame(client, f"""
        SELECT {', '.join(IMAGE_COLUMNS)} FROM {EVENTS.name}
        WHERE event_kind IN {{kinds:Array(String)}} AND {times} AND image = {{image:String}}
        ORDER BY event_time, event_kind LIMIT {{limit:UInt32}}""",
                 {"kinds": list(IMAGE_KINDS), "image": image.strip(), "limit": int(limit),
                  **params}, IMAGE_COLUMNS)
    return rows


