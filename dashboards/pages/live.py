"""Live: decisions flowing in over the range, by outcome, policy, team and time, so a new user
sees data land."""

from __future__ import annotations

import streamlit as st

from dashboards import charts
from dashboards.auth import page_user
from dashboards.loaders import call, load_all, page_filters
from dashboards.queries import live

GRAIN_NAMES = {"1m": "minute", "1h": "hour", "1d": "day"}


def render() -> None:
    page_user("live")
    chosen = page_filters()
    st.title("PolicyScope — live policy decisions")
    start, end = chosen.bounds()
    where = chosen.where
    # every read at once (`load_all`): on an empty range the charts' reads are all but free
    totals, (grain, series), shares, others, denies = load_all(
        call(live.decision_totals, start, end, where), call(live.over_time, start, end, where),
        call(live.breakdown, start, end, where), call(live.other_events, start, end, where),
        call(live.recent_denies, start, end, where))
    outcomes, by_policy, by_team = shares["outcome"], shares["policy"], shares["team"]
    cols = st.columns(4)
    cols[0].metric("Decisions", f"{totals['total']:,}")
    cols[1].metric("Deny rate", "—" if totals["deny_rate"] is None
                   else f"{totals['deny_rate']:.1%}")
    cols[2].metric("Error rate", "—" if totals["error_rate"] is None
                   else f"{totals['error_rate']:.2%}")
    cols[3].metric("p95 latency", "—" if totals["p95_latency_ms"] is None
                   else f"{totals['p95_latency_ms']:.2f} ms",
                   help="From the latency histogram, interpolated within a bucket: the same "
                        "number as the SLI L_p95 over this window")
    if not totals["total"]:
        st.info("No decisions in this range yet. Send OTLP logs with event_name "
                "`policy.decision` to :4317 (gRPC) or :4318 (HTTP), or run `policyscope demo`.")
        return

    st.plotly_chart(charts.decisions_over_time(series, GRAIN_NAMES[grain]), width="stretch")
    left, right = st.columns(2)
    left.plotly_chart(charts.outcome_bars(by_policy, "policy", "By policy"), width="stretch")
    right.plotly_chart(charts.outcome_bars(by_team, "team", "By team"), width="stretch")
    st.subheader("Outcomes")
    st.dataframe(outcomes, hide_index=True)
    st.subheader("Other events")
    st.dataframe(others, hide_index=True)
    st.subheader("Latest denies and errors")
    st.dataframe(denies, hide_index=True)


render()
