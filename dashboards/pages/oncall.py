"""On-call: the alerts firing or pending -- tier, dimension values, since when, burn rate per
alert window, budget left, time to exhaustion, a link to the SLO page with its filters set --
with a silence editor (pick an alert: its labels prefill the matchers) and the silences in
force (expire one, or edit its file when it is kept as code); deploys blocked by policy in the
range; agent health; ingestion (events per second, ingest lag, the collector's own rejects and
drops); and the top offenders of the last hour.

Every read is `dashboards.queries.oncall`'s (the SLO standing is the SLO page's
`status_rows`). The two writes, `add_silence` and `expire_silence`, check the role on the
server side first (`require(user, "silence")`), write through the dashboard's storage client
(`dashboards.loaders.client`: in the all-in-one mode the running process's store, else the
DSN) by `slo.silences`, and clear the cached loads; the page confirms a write only after it
returned. A silence starts at the current minute and an expiry ends one then, because the
alert evaluator judges each minute at its start: the evaluation of this minute already honours
the change. A role that may not silence sees the page without forms or buttons. Strings from
events are shown as text (tables, st.text) or through `safe_text`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pandas as pd
import streamlit as st

from dashboards import charts, filters, format, writes
from dashboards.auth import User, can, page_user, require, safe_text
from dashboards.loaders import call, client, page_filters, reading
from dashboards.queries import catalog as catalog_q
from dashboards.queries import oncall as queries
from dashboards.queries import slos
from metrics.windows import floor_minute
from slo import silences, spec

log = logging.getLogger(__name__)

EXPIRIES = {"30 minutes": timedelta(minutes=30), "1 hour": timedelta(hours=1),
            "2 hours": timedelta(hours=2), "4 hours": timedelta(hours=4),
            "8 hours": timedelta(hours=8), "1 day": timedelta(days=1),
            "3 days": timedelta(days=3), "7 days": timedelta(days=7)}
MAX_REASON = 2000  # characters
RATE_WINDOW = timedelta(minutes=5)  # events/s over the last whole minutes
SHOWN_AGENTS = 200
OFFENDERS = 10


# -- writes ------------------------------------------------------------------------------------

def add_silence(user: User, matchers: dict[str, str], reason: str,
                expires_in: timedelta | None, now: datetime | None = None) -> silences.Silence:
    """Silence the alerts `matchers` select from the current minute until `expires_in` from
    now, recorded with `user`'s name: refused (PermissionError) before anything else unless
    the role may silence; a missing reason or expiry is a SilenceError. Returns the silence
    once it is stored."""
    require(user, "silence")
    reason = reason.strip()
    if not reason:
        raise silences.SilenceError("a silence needs a reason: say why the alert is silenced")
    if expires_in is None or expires_in <= timedelta(0):
        raise silences.SilenceError("a silence needs an expiry: choose how long it lasts")
    moment = now or datetime.now(timezone.utc)
    made = silences.add(client(), dict(matchers), floor_minute(moment),
                        (moment + expires_in).replace(microsecond=0), reason, user.name)
    log.info("silence %s (%s) added by %r until %s", made.silence_id, made.matchers,
             user.name, made.ends_at.isoformat())
    st.cache_data.clear()
    return made


def expire_silence(user: User, silence_id: str, now: datetime | None = None) -> bool:
    """End a silence of the table from the current minute: refused (PermissionError) before
    anything else unless the role may silence. False when no such silence is in force."""
    require(user, "silence")
    done = silences.expire(client(), silence_id, floor_minute(now or datetime.now(timezone.utc)))
    if done:
        log.info("silence %s expired by %r", silence_id, user.name)
    st.cache_data.clear()
    return done




# -- formatting --------------------------------------------------------------------------------

def _seconds(value: float | None) -> str:
    if value is None or pd.isna(value):
        return format.NONE
    return f"{value:.2f} s" if value < 60 else format.duration(value)


def _ago(moment, now: datetime) -> str:
    return format.NONE if moment is None or pd.isna(moment) else \
        format.duration((now - moment).total_seconds()) + " ago"


def _alerts_frame(alerts: list[dict], chosen: filters.Filters, now: datetime) -> pd.DataFrame:
    return pd.DataFrame([{
        "slo": a["slo"], "tier": a["severity"], "state": a["state"],
        "dimensions": slos.label(a["dimensions"]), "since": a["since"],
        "for": format.duration((now - a["since"]).total_seconds()) if a["since"] else
        format.NONE,
        "burn per window": queries.burn_text(a["pairs"]) + (
            "" if a["standing_found"] else " (as last evaluated)"),
        "budget left": format.percent(a["budget_remaining"]),
        "exhausted in": format.duration(a["time_to_exhaustion_s"]),
        "silenced": ", ".join(a["silenced_by"]) or "no", "evaluated": a["updated_at"],
        "open": filters.link("slos", "", chosen, slo=a["slo"], **a["dimensions"])}
        for a in alerts], columns=["slo", "tier", "state", "dimensions", "since", "for",
                                   "burn per window", "budget left", "exhausted in",
                                   "silenced", "evaluated", "open"])


def _silences_frame(table: list[silences.Silence],
                    files: list[tuple[silences.Silence, str]], now: datetime,
                    may_expire: bool) -> pd.DataFrame:
    expire = "expire it below" if may_expire else "expire it (oncall, sre or admin)"
    rows = [(s, "table", expire) for s in table] + \
        [(s, "file", f"as code: edit {path}") for s, path in files]
    return pd.DataFrame([{
        "silence": s.silence_id, "source": source, "matchers": slos.label(s.matchers),
        "starts": s.starts_at, "ends": s.ends_at, "in force": s.active(now),
        "reason": s.comment, "by": s.created_by, "end it": end} for s, source, end in rows])


# -- sections ----------------------------------------------------------------------------------

def _alert_name(alert: dict) -> str:
    return " ".join(filter(None, (alert["slo"], alert["severity"],
                                  slos.label(alert["dimensions"]))))


def _silence_form(user: User, active: list[dict]) -> None:
    """One silence editor for the active alerts, as Alertmanager's: pick the alert (its
    labels prefill the matchers), then reason and expiry, both required. The form's widgets
    are keyed by the chosen alert, so each alert's matchers start from its own labels."""
    alerts = {a["alert_id"]: a for a in active}
    with st.expander("Silence an alert"):
        chosen = st.selectbox("Alert", list(alerts), key="oncall_silence_alert",
                              format_func=lambda i: _alert_name(alerts[i]))  # plain text
        alert = alerts[chosen]
        key = f"oncall_silence_{alert['alert_id']}"
        with st.form(key, clear_on_submit=True):
            options = [f"{k}={v}" for k, v in alert["labels"].items()]
            picked = st.multiselect("Matchers (the alert's labels; a silence matches every "
                                    "alert with all of them)", options, default=options,
                                    key=f"{key}_matchers")
            reason = st.text_area("Reason (required)", key=f"{key}_reason",
                                  max_chars=MAX_REASON)
            expiry = st.selectbox("Expires in (required)", list(EXPIRIES), index=None,
                                  placeholder="choose how long", key=f"{key}_expiry")
            submitted = st.form_submit_button("Silence", key=f"{key}_submit")
    if submitted:
        def act() -> str:
            made = add_silence(user, dict(m.split("=", 1) for m in picked), reason,
                               EXPIRIES.get(expiry) if expiry else None)
            return (f"Silenced {safe_text(slos.label(made.matchers))} until "
                    f"{made.ends_at:%Y-%m-%d %H:%M} UTC (silence {made.silence_id}); the "
                    "alert evaluator honours it from this minute on.")
        writes.attempt(act)


def _alerts(user: User, chosen: filters.Filters, settings: slos.SloSettings,
            in_force: list[silences.Silence], now: datetime, loaded: list, error: str | None,
            states, standing: list) -> None:
    st.subheader("Active alerts")
    if error is not None:
        st.error("The SLO files do not validate: burn and budget are shown as the evaluator "
                 "last stored them.")
        st.code(error, language=None)
    elif not loaded and not states:
        st.info(f"No SLOs in {safe_text(settings.slo_dir)}, so nothing can alert. Put "
                "OpenSLO v1 files there (the shipped ones are in `examples/slo/`), or point "
                "`alerting.slo_dir` (POLICYSCOPE_SLO_DIR) at yours; check them with "
                "`policyscope slo validate`.")
        return
    active = queries.active_alerts(states, standing, in_force, now, chosen.where)
    if not active:
        st.info("No alert is firing or pending" + (" for these filters" if chosen.where
                                                    else "") +
                ". The alert evaluator runs every minute under `policyscope up` / "
                "`policyscope worker` (once: `policyscope alerts evaluate`).")
        return
    st.dataframe(_alerts_frame(active, chosen, now), hide_index=True, column_config={
        "open": st.column_config.LinkColumn("open", display_text="SLO page")})
    if can(user, "silence"):
        _silence_form(user, active)


def _silences(user: User, table: list[silences.Silence],
              files: list[tuple[silences.Silence, str]], file_error: str | None,
              slo_dir: str, now: datetime) -> None:
    st.subheader("Silences")
    if file_error is not None:
        st.error("A silence file does not validate (the alert evaluator cannot read it "
                 "either); fix it, then check it with `policyscope alerts silence list`:")
        st.code(file_error, language=None)
    if not table and not files:
        st.info("No silence is in force or scheduled. Silence an alert above, run "
                "`policyscope alerts silence add`, or keep one as code: a `kind: Silence` "
                f"file in {safe_text(queries.silence_dir(slo_dir))}.")
        return
    st.dataframe(_silences_frame(table, files, now, can(user, "silence")), hide_index=True)
    if not can(user, "silence"):
        return
    for s in table:
        left, right = st.columns([5, 1])
        left.text(f"{s.silence_id}  {slos.label(s.matchers)}  until "
                  f"{s.ends_at:%Y-%m-%d %H:%M} UTC  ({s.comment})")
        if right.button("Expire", key=f"oncall_expire_{s.silence_id}"):
            def act(silence_id: str = s.silence_id) -> str:
                if not expire_silence(user, silence_id):
                    raise LookupError(f"silence {silence_id} is no longer in force")
                return f"Silence {silence_id} expired; matching alerts notify again."
            writes.attempt(act)


def _deploys(by_policy: pd.DataFrame, recent: pd.DataFrame) -> None:
    st.subheader("Deploys blocked by policy")
    if by_policy.empty:
        st.info("No deploy gate in this range: send `deploy.gate` events (deploy.id, "
                "deploy.gate.outcome passed / blocked / overridden, policy.id) from your "
                "pipelines, or run `policyscope demo`.")
        return
    gated, blocked = int(by_policy["gated"].sum()), int(by_policy["blocked"].sum())
    cols = st.columns(4)
    cols[0].metric("Deploy gates", format.number(gated))
    cols[1].metric("Blocked", format.number(blocked))
    cols[2].metric("Overridden", format.number(int(by_policy["overridden"].sum())))
    cols[3].metric("Block rate", format.percent(blocked / gated if gated else None),
                   help="Blocked gates over all gates: M6 over this range")
    st.dataframe(by_policy.assign(block_rate=by_policy["block_rate"].map(format.percent))
                 .rename(columns={"block_rate": "block rate"}), hide_index=True)
    if blocked:
        st.plotly_chart(charts.bars(by_policy.loc[by_policy["blocked"] > 0], "policy",
                                    "blocked", "Blocked deploys by policy", "blocked"),
                        width="stretch")
    st.subheader("Latest blocked deploys")
    if recent.empty:
        st.info("No deploy was blocked in this range.")
    else:
        st.dataframe(recent, hide_index=True)


def _agents(rows: pd.DataFrame, at: datetime) -> None:
    st.subheader("Agent health")
    if rows.empty:
        st.info("No agent heartbeat in this range: send `agent.heartbeat` events (agent.id, "
                "agent.status, agent.heartbeat.interval) from each enforcement agent, or run "
                "`policyscope demo`.")
        return
    counts = rows["state"].value_counts()
    cols = st.columns(4)
    cols[0].metric("Healthy", format.number(int(counts.get(queries.HEALTHY, 0))))
    cols[1].metric("Stale", format.number(int(counts.get(queries.STALE, 0))),
                   help="The latest heartbeat is older than twice the agent's interval")
    cols[2].metric("Degraded", format.number(int(counts.get(queries.DEGRADED, 0))),
                   help="A recent heartbeat reports a status other than healthy")
    cols[3].metric("Last heartbeat", _ago(rows["last_heartbeat"].max(), at))
    st.caption(f"Agents that sent a heartbeat in this range, judged at {at:%H:%M:%S} UTC as "
               "the SLI M8 judges them.")
    shown = rows.head(SHOWN_AGENTS)
    st.dataframe(pd.DataFrame({
        "agent": shown["agent_id"], "state": shown["state"], "status": shown["status"],
        "engine": shown["engine"], "team": shown["team"],
        "environment": shown["environment"], "cluster": shown["cluster"],
        "last heartbeat": shown["last_heartbeat"],
        "age": shown["age_s"].map(format.duration),
        "interval": shown["interval_s"].map(_seconds)}), hide_index=True)
    if len(rows) > SHOWN_AGENTS:
        st.caption(f"The {SHOWN_AGENTS} least healthy of {len(rows):,} agents.")


def _ingestion(rate: float, lag: pd.DataFrame, counters: dict) -> None:
    st.subheader("Ingestion")
    both = lag.loc[lag["source"] == ""]
    cols = st.columns(4)
    cols[0].metric("Events/s", format.number(rate, 2),
                   help="Decisions and other events stored per second over the last 5 whole "
                        "minutes, by event time (every team)")
    cols[1].metric("Ingest lag p50", _seconds(both["p50_s"].iloc[0] if len(both) else None),
                   help="ingested_at − event_time of what was stored in the last hour")
    cols[2].metric("Ingest lag p95", _seconds(both["p95_s"].iloc[0] if len(both) else None))
    cols[3].metric("Spool backlog", format.number(counters["spool_rows"]),
                   help="Rows the collectors hold durably, not yet in storage (latest)")
    cols = st.columns(4)
    cols[0].metric("Accepted, last hour", format.number(counters["accepted"]))
    cols[1].metric("Rejected, last hour", format.number(counters["rejected"]))
    cols[2].metric("Dropped, last hour", format.number(counters["dropped"]),
                   help="Requests refused by admission control and rows dead-lettered by the "
                        "writer")
    cols[3].metric("Insert latency", _seconds(counters["insert_mean_s"]),
                   help="Mean batch insert over the last hour; the longest: "
                        f"{_seconds(counters['insert_max_s'])}")
    if not rate and lag.empty:
        st.info("Nothing was stored in the last hour. Send OTLP logs to :4317 (gRPC) or "
                ":4318 (HTTP), or run `policyscope demo`.")
    st.subheader("Ingest lag, last hour")
    if lag.empty:
        st.info("No event was stored in the last hour, so there is no lag to show.")
    else:
        st.dataframe(pd.DataFrame({
            "source": lag["source"].replace("", "all"), "events": lag["events"],
            "p50": lag["p50_s"].map(_seconds), "p95": lag["p95_s"].map(_seconds),
            "max": lag["max_s"].map(_seconds)}), hide_index=True)
    st.subheader("Not stored by the collector, last hour")
    if not counters["snapshots"]:
        st.info("The collector recorded no counters in the last hour. It stores them every "
                "`collector.self_metrics_interval` seconds (0 turns them off) while it runs: "
                "`policyscope up` or `policyscope collector`.")
    elif counters["not_stored"].empty:
        st.info("The collector rejected and dropped nothing in the last hour.")
    else:
        st.dataframe(counters["not_stored"], hide_index=True)


def _offenders(chosen: filters.Filters, policies: pd.DataFrame, resources: pd.DataFrame,
               teams: pd.DataFrame, catalog: pd.DataFrame) -> None:
    for title, rows in (("Top offending policies, last hour", policies),
                        ("Top offending resources, last hour", resources),
                        ("Top offending teams, last hour", teams)):
        st.subheader(title)
        if rows.empty:
            st.info("No deny or warn in the last hour" + (" for these filters." if chosen.where
                                                          else "."))
        elif "policy" in rows:  # with the owner and runbook the policy catalog gives
            rows = catalog_q.annotate(rows, catalog, columns=("owner", "runbook"))
            st.dataframe(rows.assign(deny_rate=rows["deny_rate"].map(format.percent))
                         .rename(columns={"deny_rate": "deny rate"}), hide_index=True,
                         column_config={"runbook": st.column_config.LinkColumn(
                             "runbook", display_text="runbook")})
        elif "deny_rate" in rows:
            st.dataframe(rows.assign(deny_rate=rows["deny_rate"].map(format.percent))
                         .rename(columns={"deny_rate": "deny rate"}), hide_index=True)
        else:
            st.dataframe(rows.rename(columns={"resource_kind": "kind",
                                              "resource_name": "name"}), hide_index=True)


def render() -> None:
    user = page_user("oncall")
    chosen = page_filters()
    st.title("On-call")
    writes.confirmation()
    writes.read_only_note(user, "silence", "read alerts but not silence them")
    now = datetime.now(timezone.utc)
    minute = floor_minute(now)
    settings = slos.settings()
    try:
        loaded, error = slos.load_slos(settings.slo_dir), None
    except spec.SpecError as exc:
        loaded, error = [], str(exc)
    start, end = chosen.bounds(now)
    hour = filters.Filters("1h").bounds(now)
    # every read of the page at once (`reading`), in the order of the sections, which are
    # drawn as their reads arrive
    reads = {
        "table": call(queries.table_silences, minute),
        "states": call(queries.alert_states),
        **({"standing": call(slos.status_rows, settings.slo_dir, minute,
                             settings.latency_threshold, settings.standing_max_age_s)}
           if loaded else {}),
        "by_policy": call(queries.blocked_by_policy, start, end, chosen.where),
        "recent": call(queries.recent_blocks, start, end, chosen.where),
        "agents": call(queries.agents, start, end, chosen.where),
        "rate": call(queries.event_rate, minute - RATE_WINDOW, minute),
        "lag": call(queries.ingest_lag, *hour),
        "counters": call(queries.collector, *hour),
        "offenders": call(queries.top_offenders, *hour, chosen.where, ("policy", "team"),
                          OFFENDERS),
        "resources": call(queries.top_resources, *hour, chosen.where, OFFENDERS),
        "catalog": call(catalog_q.policies)}
    position = {name: i for i, name in enumerate(reads)}
    with reading(*reads.values()) as arrived:
        def got(name: str):
            return arrived[position[name]]

        table = got("table")
        try:
            files, file_error = queries.file_silences(settings.slo_dir, now), None
        except silences.SilenceError as exc:
            files, file_error = [], str(exc)
        _alerts(user, chosen, settings, [*table, *(s for s, _ in files)], now, loaded, error,
                got("states"), got("standing") if loaded else [])
        _silences(user, table, files, file_error, settings.slo_dir, now)
        _deploys(got("by_policy"), got("recent"))
        _agents(*got("agents"))
        _ingestion(got("rate"), got("lag"), got("counters"))
        offenders = got("offenders")
        _offenders(chosen, offenders["policy"], got("resources"), offenders["team"],
                   got("catalog"))

if __name__ == "__main__":  # Streamlit runs a page as __main__; tests import the writes
    render()
