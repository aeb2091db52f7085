"""Executive: the headline numbers with their change over a week -- enforcement coverage, open
high/critical violations, time to remediate, drift, deploy block rate, SLOs meeting their
objective -- then coverage by team against its goal, violations by severity, the monthly drift
trend and the SLO compliance table. Readable at a glance; every number is a stored SLI value
or an SLO status, as `policyscope sli show` / `slo status` print them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import streamlit as st

from dashboards import charts, filters, format
from dashboards.auth import code_span, page_user, safe_text
from dashboards.loaders import call, load_all, page_filters
from dashboards.queries import executive, slos
from slo import spec

NO_SLIS = ("No SLI values for this range yet. The SLI batch writes them every minute under "
           "`policyscope up` / `policyscope worker` (or run `policyscope batch`); send "
           "inventory, violation, drift and deploy-gate events (or run `policyscope demo`).")


def _points(now: float | None, then: float | None) -> str | None:
    return None if now is None or then is None else f"{(now - then) * 100:+.1f} pp"


def _count(now: float | None, then: float | None) -> str | None:
    return None if now is None or then is None else f"{now - then:+,.0f}"


def _duration(now: float | None, then: float | None) -> str | None:
    if now is None or then is None:
        return None
    return ("+" if now >= then else "-") + format.duration(abs(now - then))


def _meeting(rows: list[dict]) -> tuple[int, int]:
    """(SLO rows meeting their objective over the period, rows with data)."""
    judged = [r for r in rows if r["total"]]
    return sum(1 for r in judged if r["current"] >= r["objective"]), len(judged)


def _goal(slo_dir: str) -> float | None:
    """The coverage goal: the objective of the first SLO on M2, if any."""
    try:
        found = [s for s in slos.load_slos(slo_dir) if s.sli == "M2"]
    except spec.SpecError:
        return None
    return float(found[0].objective) if found else None


def _headline(values: dict, high: pd.DataFrame, slo_now: list[dict], slo_then: list[dict],
              window: str) -> None:
    m2, m3, m5, m6 = (values[s] for s in executive.HEADLINE_SLIS)
    open_now = int(high["open"].iloc[-1]) if len(high) else None
    open_then = int(high["open"].iloc[-8]) if len(high) >= 8 else None
    met_now, judged_now = _meeting(slo_now)
    met_then, judged_then = _meeting(slo_then)
    cols = [*st.columns(3), *st.columns(3)]  # two rows: labels stay whole
    cols[0].metric("Enforcement coverage", format.percent(m2["value"]),
                   _points(m2["value"], m2["week_ago"]), help=f"M2 over {window}")
    cols[1].metric("Open high/critical violations", format.number(open_now),
                   _count(open_now, open_then), delta_color="inverse")
    cols[2].metric("Mean time to remediate", format.duration(m3["value"]),
                   _duration(m3["value"], m3["week_ago"]), delta_color="inverse",
                   help=f"M3_mean over {window}")
    cols[3].metric("Drift events per week", format.number(m5["value"], 1),
                   None if m5["value"] is None or m5["week_ago"] is None
                   else f"{m5['value'] - m5['week_ago']:+.1f}", delta_color="inverse",
                   help=f"M5 over {window}")
    cols[4].metric("Deploy block rate", format.percent(m6["value"]),
                   _points(m6["value"], m6["week_ago"]), delta_color="inverse",
                   help=f"M6 over {window}")
    cols[5].metric("SLOs meeting objective",
                   f"{met_now} of {judged_now}" if judged_now else format.NONE,
                   _count(met_now, met_then) if judged_now and judged_then else None)


def _compliance(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{
        "slo": r["slo"], "dimensions": slos.label(r["dimensions"]),
        "objective": format.percent(r["objective"], 2),
        "current": format.percent(r["current"], 2),
        "budget left": format.percent(r["budget_remaining"]), "status": r["state"],
        "open": filters.link("slos", "", None, slo=r["slo"], **r["dimensions"])}
        for r in rows], columns=["slo", "dimensions", "objective", "current", "budget left",
                                 "status", "open"])


def render() -> None:
    page_user("executive")
    chosen = page_filters()
    st.title("Executive summary")
    window = chosen.range
    dimension, value = chosen.sli_dimension
    if chosen.ignored_by_sli:
        st.caption(f"SLI values break down one dimension at a time: showing {dimension}="
                   f"{safe_text(value)}; {', '.join(chosen.ignored_by_sli)} not applied to "
                   "them.")
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    span = timedelta(days=chosen.days)
    settings = slos.settings()
    try:
        slos.load_slos(settings.slo_dir)
        slo_error = None
    except spec.SpecError as exc:
        slo_error = str(exc)
    # every read at once (`load_all`)
    reads = [call(executive.headline, window, dimension, value),
             call(executive.remediation, now, span, chosen.where),
             call(executive.coverage_by_team, window),
             call(executive.drift_by_month, dimension, value, now - timedelta(days=365))]
    if slo_error is None:
        # a week ago: what the evaluator stored then (evaluating the past would cost the
        # page seconds; no comparison until it has run for a week)
        reads += [call(slos.status_rows, settings.slo_dir, now, settings.latency_threshold,
                       settings.standing_max_age_s),
                  call(slos.status_rows_at, settings.slo_dir, (now - timedelta(days=7),),
                       settings.latency_threshold,
                       int(slos.PAST_STANDING_AGE.total_seconds()), stored_only=True)]
    values, remediation, coverage, drift, *standings = load_all(*reads)
    slo_now, (slo_then,) = standings if standings else ([], ([],))
    high = remediation["open_high"]
    _headline(values, high, slo_now, slo_then, filters.RANGE_LABELS[window])
    st.caption("Changes are against the same number a week earlier.")
    if all(v["value"] is None for v in values.values()) and not high["open"].any():
        st.info(NO_SLIS)

    st.subheader("Enforcement coverage by team")
    if coverage.empty:
        st.info("No coverage yet: send `workload.inventory` events (workload.id, "
                "workload.enforced, team.name) and let the SLI batch run.")
    else:
        goal = _goal(settings.slo_dir)
        st.plotly_chart(charts.coverage_by_team(coverage, goal), width="stretch")
        st.dataframe(coverage.assign(coverage=coverage["coverage"].map(format.percent)),
                     hide_index=True)
        if goal is None:
            st.caption("No goal line: add an SLO on M2 (see examples/slo/"
                       "enforcement-coverage.yaml).")

    st.subheader("Open high and critical violations, last 30 days")
    if not high["open"].any():
        st.info("No high or critical violation open in the last 30 days. Violations come "
                "from `policy.violation` events (policy.violation.id, status, "
                "policy.severity).")
    else:
        st.plotly_chart(charts.line(high, "at", "open", "Open high/critical violations",
                                    "open"), width="stretch")

    st.subheader("Time to remediate by severity")
    table, weekly = remediation["table"], remediation["weekly"]
    if table.empty:
        st.info("No violation remediated in this range: send `policy.violation` events "
                "with status `remediated` after `opened`.")
    else:
        st.dataframe(table.assign(mean=table["mean_s"].map(format.duration),
                                  median=table["p50_s"].map(format.duration))[
            ["severity", "remediated", "mean", "median"]], hide_index=True)
        st.plotly_chart(charts.line(weekly.assign(hours=weekly["mean_s"] / 3600), "week",
                                    "hours", "Mean time to remediate per week", "hours",
                                    "severity"), width="stretch")

    st.subheader("Drift by month")
    if drift.empty:
        st.info("No drift counted yet: send `drift.detected` events and let the SLI batch "
                "run.")
    else:
        months = drift.assign(month=pd.to_datetime(drift["month"]).dt.strftime("%Y-%m"))
        st.plotly_chart(charts.bars(months, "month", "drift_events", "Drift events per month",
                                    "events", categories=True), width="stretch")

    st.subheader("SLO compliance")
    if slo_error is not None:
        st.error("The SLO files do not validate:")
        st.code(slo_error, language=None)
    elif not slo_now:
        st.info(f"No SLOs in {code_span(settings.slo_dir)}: add OpenSLO files (see "
                "examples/slo/) to see compliance here.")
    else:
        st.dataframe(_compliance(slo_now), hide_index=True, column_config={
            "open": st.column_config.LinkColumn("open", display_text="SLO page")})


render()
