"""Policy tuning: every policy's volume, deny / warn / error rates, latency percentiles and
false-positive rate, with its title, owner and runbook from the policy catalog (a policy the
catalog lacks is flagged); one policy by version, two versions side by side with their
deltas, and what enforcing it would block ("would block 340/day, 12 known FPs")."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import charts, filters, format
from dashboards.auth import page_user, safe_text
from dashboards.loaders import call, page_filters, reading
from dashboards.queries import catalog as catalog_q
from dashboards.queries import tuning

RATES = {"deny_rate": "deny rate", "warn_rate": "warn rate", "error_rate": "error rate",
         "fp_rate": "FP rate"}
LATENCIES = {"p50_s": "p50", "p95_s": "p95", "p99_s": "p99"}


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    """Rates as percentages, latencies in ms, as text ('—' for none)."""
    out = frame.copy()
    for column, name in RATES.items():
        if column in out:
            out[name] = out.pop(column).map(lambda v: format.percent(None if pd.isna(v) else v))
    for column, name in LATENCIES.items():
        if column in out:
            out[name] = out.pop(column).map(
                lambda v: format.milliseconds(None if pd.isna(v) else v))
    return out


def _pick(label: str, options: list[str], key: str, param: str, default: str) -> str:
    """A selectbox seeded from the URL parameter `param` and written back to it."""
    filters.seed(key, param, default, options)
    value = st.selectbox(label, options, key=key, format_func=lambda v: v or "(unversioned)")
    filters.keep(key, param, value)
    return value


def _compare(rows: pd.DataFrame, a: str, b: str, days: float) -> pd.DataFrame:
    """measure, version a, version b, change (b - a) of two versions' rows."""
    first, second = (rows[rows["version"] == v].iloc[0] for v in (a, b))
    out = []

    def add(name, x, y, shown, delta):
        out.append({"measure": name, f"version {a or '(unversioned)'}": shown(x),
                    f"version {b or '(unversioned)'}": shown(y),
                    "change": format.NONE if x is None or y is None else delta(y - x)})

    def value(row, column):
        v = row[column]
        return None if v is None or pd.isna(v) else float(v)

    add("decisions per day", first["decisions"] / days, second["decisions"] / days,
        lambda v: format.number(v, 1), lambda d: f"{d:+,.1f}")
    for column, name in RATES.items():
        add(name, value(first, column), value(second, column), format.percent,
            lambda d: f"{d * 100:+.1f} pp")
    for column, name in LATENCIES.items():
        add(f"latency {name}", value(first, column), value(second, column),
            format.milliseconds, lambda d: f"{d * 1000:+.2f} ms")
    return pd.DataFrame(out)


def _impact(policy: str, impact: dict, days: float) -> None:
    st.subheader("Audit → enforce impact")
    if not impact["not_enforced"]:
        st.info(f"No decision of {safe_text(policy)} in this range is in audit, dryrun or "
                "warn mode (`policy.enforcement`), so enforcing it changes nothing here.")
        return
    per_day = impact["would_block"] / days
    cols = st.columns(3)
    cols[0].metric("Would block per day", format.number(per_day, 1))
    cols[1].metric("Would block in range", format.number(impact["would_block"]))
    cols[2].metric("Known false positives", format.number(impact["known_fps"]))
    st.text(f"Enforcing {policy} would block {per_day:,.1f}/day, "
            f"{impact['known_fps']:,} known FPs.")
    if impact["would_block"]:
        st.dataframe(impact["by_resource"], hide_index=True)
    else:
        st.info("Its audit-mode decisions in this range are all allowed: enforcing it "
                "would block nothing.")


def _policies(rows: pd.DataFrame, catalog: pd.DataFrame) -> None:
    """The policies table with the catalog's title, owner and runbook, and which policies it
    lacks (flagged and listed, never dropped)."""
    shown = catalog_q.annotate(rows, catalog)
    first = ["policy", "title", "owner"]
    shown = shown[first + [c for c in shown.columns if c not in first]]
    st.dataframe(_shown(shown), hide_index=True, column_config={
        "runbook": st.column_config.LinkColumn("runbook", display_text="runbook")})
    missing = shown.loc[shown["catalog"] != "yes", "policy"].tolist()
    if missing:
        listed = ", ".join(safe_text(m) for m in missing[:5]) + (" …" if len(missing) > 5
                                                                   else "")
        st.caption(f"{len(missing)} of {len(shown)} policies here are not in the policy "
                   f"catalog: {listed}. Add them to `policies/*.yaml` (title, owner, severity, "
                   "controls, runbook) and `policyscope catalog load`, or see `policyscope "
                   "catalog missing`.")


def _entry(policy: str, catalog: pd.DataFrame) -> None:
    """The chosen policy's catalog entry in one line: owner, severity, category, controls."""
    found = catalog[catalog["policy"] == policy]
    if found.empty:
        st.caption(f"{safe_text(policy)} is not in the policy catalog.")
        return
    e = found.iloc[0]
    st.caption(f"{safe_text(e['title'])} · owner {safe_text(e['owner'])} · severity "
               f"{safe_text(e['severity'])} · {safe_text(e['category'])} · controls: "
               f"{safe_text(e['controls']) or 'none'}")


def render() -> None:
    page_user("tuning")
    chosen = page_filters()
    st.title("Policy tuning")
    start, end = chosen.bounds()
    where = chosen.where
    # the policy list first (totals only), so the chosen policy's reads start while the
    # policies' percentiles and FP rates are still read; each section is drawn into its
    # place as its reads arrive (`reading`)
    with reading(call(tuning.policy_names, start, end, where),
                 call(tuning.policies, start, end, where, chosen.range),
                 call(catalog_q.policies)) as first:
        names = first[0]
        st.subheader("Policies")
        if not names:
            st.info("No decisions in this range. Send `policy.decision` events with "
                    "`policy.id` (and `policy.version`, `policy.enforcement`), or run "
                    "`policyscope demo`.")
            return
        table = st.container()
        policy = _pick("Policy", names, "tuning_policy", "policy", names[0])
        entry = st.container()
        with reading(call(tuning.decision_counts, policy, start, end, where),
                     call(tuning.verdict_counts, policy, start, end, where),
                     call(tuning.audit_by_resource, policy, start, end, where)) as second:
            catalog = first[2]
            with table:
                if not first[1].empty:  # read a moment after the names: data may have aged out
                    _policies(first[1], catalog)
                if where:
                    st.caption("The FP rate is M4 by policy over all teams, environments "
                               "and clusters (SLI values break down one dimension at a "
                               "time).")
            with entry:
                _entry(policy, catalog)
            counts, verdicts, by_resource = (second[k] for k in range(3))
    versions, series = tuning.versions_of(counts, verdicts)
    impact = tuning.audit_combined(by_resource, counts, verdicts)
    st.subheader("By version")
    st.dataframe(_shown(versions), hide_index=True)

    st.subheader("Compare two versions")
    found = versions["version"].tolist()
    if len(found) < 2:
        st.info(f"{safe_text(policy)} has one version in this range. Versions come from "
                "`policy.version`; widen the range or roll out a new version to compare.")
    else:
        left, right = st.columns(2)
        with left:
            a = _pick("Version A", found, "tuning_version_a", "version_a", found[-2])
        with right:
            b = _pick("Version B", found, "tuning_version_b", "version_b", found[-1])
        st.dataframe(_compare(versions, a, b, chosen.days), hide_index=True)
        series = series[series["version"].isin([a, b])]
        st.plotly_chart(charts.line(series.assign(deny=series["deny_rate"] * 100), "time",
                                    "deny", f"Deny rate of {policy} by version", "deny rate (%)",
                                    "version"), width="stretch")
    _impact(policy, impact, chosen.days)


render()
