"""Live view: decisions flowing in, by outcome, policy and team, so a new user sees data land."""

from __future__ import annotations

import streamlit as st

from dashboards import charts, data


@st.cache_resource
def _client():
    return data.open_client()


def render() -> None:
    st.title("PolicyScope — live policy decisions")
    window = st.selectbox("Window", list(data.WINDOWS), index=1, key="window")
    minutes = data.WINDOWS[window]
    client = _client()

    totals = data.decision_totals(client, minutes)
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
        st.info("No decisions in this window yet. Send OTLP logs with event_name "
                "`policy.decision` to :4317 (gRPC) or :4318 (HTTP), or run `policyscope demo`.")
        return

    st.plotly_chart(charts.decisions_over_time(data.per_minute(client, minutes)),
                    width="stretch")
    left, right = st.columns(2)
    left.plotly_chart(charts.outcome_bars(data.by_policy(client, minutes), "policy_id",
                                          "By policy"), width="stretch")
    right.plotly_chart(charts.outcome_bars(data.by_team(client, minutes), "team", "By team"),
                       width="stretch")
    st.subheader("Outcomes")
    st.dataframe(data.by_outcome(client, minutes), hide_index=True)
    st.subheader("Other events")
    st.dataframe(data.other_events(client, minutes), hide_index=True)
    st.subheader("Latest denies and errors")
    st.dataframe(data.recent_denies(client, minutes), hide_index=True)
