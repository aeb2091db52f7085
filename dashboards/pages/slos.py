"""SLOs: every SLO loaded from the configured directory -- objective, period, current SLI,
budget left, time to exhaustion, status -- and for one SLO (and one dimension value of a
`by` SLO): burn rate per alert window, the budget's burndown over the period and its alert
history. `?slo=<name>&<dimension>=<value>` (an alert notification's link) opens that one."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from dashboards import charts, filters, format
from dashboards.auth import code_span, page_user, safe_text
from dashboards.loaders import load, page_filters
from dashboards.queries import slos as queries
from slo import spec

EMPTY = ("No SLOs in {dir}. Put OpenSLO v1 files there (the shipped ones are in "
         "`examples/slo/`), or point `alerting.slo_dir` (POLICYSCOPE_SLO_DIR) at yours; check "
         "them with `policyscope slo validate`.")


def _summary(rows: list[dict], chosen: filters.Filters) -> pd.DataFrame:
    """The table of every SLO; rows of a `by` SLO for a dimension the global filters set
    are narrowed to that value."""
    kept = [r for r in rows if all(r["dimensions"].get(d, v) == v
                                   for d, v in chosen.where.items())]
    return pd.DataFrame([{
        "slo": r["slo"], "dimensions": queries.label(r["dimensions"]),
        "objective": format.percent(r["objective"], 2), "period": r["period"],
        "current": format.percent(r["current"], 2), "good": r["good"], "total": r["total"],
        "budget left": format.percent(r["budget_remaining"]),
        "exhausted in": format.duration(r["time_to_exhaustion_s"]), "status": r["state"]}
        for r in kept], columns=["slo", "dimensions", "objective", "period", "current", "good",
                                 "total", "budget left", "exhausted in", "status"])


def _pick_slo(names: list[str]) -> str:
    """The SLO shown in detail: the URL's `slo` (a link followed), else the last one picked."""
    filters.seed("slo_name", "slo", names[0], names)
    name = st.selectbox("SLO", names, key="slo_name")
    filters.keep("slo_name", "slo", name)
    return name


def _pick_dimensions(name: str, by: list[str], rows: list[dict]) -> dict[str, str]:
    """The dimension values of a `by` SLO to drill into: one the SLO has, or the one the URL
    names (even without data). Those of dimensions other than the global filters' are
    written back to the URL, so the view can be bookmarked."""
    options = [r["dimensions"] for r in rows if r["dimensions"]]
    if not by or not options:
        return {}
    asked = {d: st.query_params[d] for d in by if st.query_params.get(d)}
    if len(asked) == len(by) and asked not in options:
        options.append(asked)
    labels = [queries.label(o) for o in options]
    key = f"slo_drill_{name}"
    state = st.session_state
    asked_label = queries.label(asked) if len(asked) == len(by) else None
    if key not in state or state[key] not in labels or (
            asked_label is not None and asked_label != state.get(f"_{key}_url")):
        state[key] = asked_label if asked_label is not None else labels[0]
    picked = options[labels.index(st.selectbox(f"Drill into one {', '.join(by)} value",
                                               labels, key=key))]
    for d in by:
        if d not in filters.DIMENSIONS:  # the global ones are the sidebar's
            st.query_params[d] = picked[d]
    after = {d: st.query_params[d] for d in by if st.query_params.get(d)}
    state[f"_{key}_url"] = queries.label(after) if len(after) == len(by) else None
    return picked


def _detail(row: dict | None, name: str, dims: dict[str, str], settings, now) -> None:
    st.subheader(safe_text(name + (f" — {queries.label(dims)}" if dims else "")))
    if row is None:
        st.info("No events for this value in the SLO's period yet.")
        return
    cols = st.columns(6)
    cols[0].metric("Objective", format.percent(row["objective"], 2))
    cols[1].metric("Period", row["period"])
    cols[2].metric("Current SLI", format.percent(row["current"], 2))
    cols[3].metric("Budget left", format.percent(row["budget_remaining"]))
    cols[4].metric("Exhausted in", format.duration(row["time_to_exhaustion_s"]),
                   help="At the burn rate of the first alert window, from the budget left")
    cols[5].metric("Status", row["state"])
    if not row["total"]:
        st.info("No events in the SLO's period: nothing to burn yet. Once its SLI has "
                "events (send them, or run `policyscope demo`), the budget shows here.")
        return
    st.subheader("Burn rate per alert window")
    st.dataframe(pd.DataFrame([{
        "severity": p["severity"], "long window": p["long_window"],
        "short window": p["short_window"], "factor": round(p["factor"], 3),
        "burn (long)": None if p["burn_long"] is None else round(p["burn_long"], 3),
        "burn (short)": None if p["burn_short"] is None else round(p["burn_short"], 3),
        "firing": p["firing"]} for p in row["pairs"]]), hide_index=True)
    st.subheader("Error budget burndown")
    points = load(queries.burndown, settings.slo_dir, name, dims, now,
                  settings.latency_threshold, settings.standing_max_age_s)
    st.plotly_chart(charts.budget_burndown(points, f"Budget left over the {row['period']} "
                                                   "period"), width="stretch")
    st.subheader("Alert history")
    history = load(queries.alert_history, name, dims)
    if history.empty:
        st.info("No alert has fired for this SLO yet (the evaluator runs every minute in "
                "`policyscope up` / `policyscope worker`).")
    else:
        st.dataframe(history, hide_index=True)


def render() -> None:
    page_user("slos")
    chosen = page_filters()
    st.title("SLOs")
    settings = queries.settings()
    try:
        slos = queries.load_slos(settings.slo_dir)
    except spec.SpecError as exc:
        st.error("The SLO files do not validate, so no SLO is shown:")
        st.code(str(exc), language=None)
        return
    if not slos:
        st.info(EMPTY.format(dir=code_span(settings.slo_dir)))
        return
    now = datetime.now(timezone.utc)
    rows = load(queries.status_rows, settings.slo_dir, now.replace(second=0, microsecond=0),
                settings.latency_threshold, settings.standing_max_age_s)
    st.subheader("Every SLO")
    st.dataframe(_summary(rows, chosen), hide_index=True)

    by_name = {s.name: s for s in slos}
    name = _pick_slo(list(by_name))
    slo = by_name[name]
    if slo.metadata.display_name:
        st.caption(safe_text(slo.metadata.display_name))
    mine = [r for r in rows if r["slo"] == name]
    dims = _pick_dimensions(name, list(slo.by), mine)
    row = next((r for r in mine if r["dimensions"] == dims), None)
    _detail(row, name, dims, settings, now.replace(second=0, microsecond=0))


render()
