"""Debug: search the decision log within the range (paginated) and open one full record with
its extra attributes; the latency distribution of a policy or team; the audit trail of a
resource; an image's SBOM, vulnerability and secret events. Every string from events is shown
as text (tables, st.text, st.code), never as Markdown or HTML.

Each section draws its inputs first, in its own container; then the four sections' reads run
at once (`reading`) and each container is filled with its results as they arrive."""

from __future__ import annotations

import streamlit as st

from dashboards import charts, filters, format
from dashboards.auth import page_user, safe_text
from dashboards.loaders import Call, call, load, page_filters, reading
from dashboards.queries import debug

PAGE_SIZE = 50


def _search_inputs(start, end, where) -> Call | None:
    st.subheader("Decision log")
    fields = list(debug.SEARCH)
    filters.seed("debug_field", "field", "resource", fields)
    filters.seed("debug_q", "q")
    left, right = st.columns([1, 3])
    field = left.selectbox("Search by", fields, key="debug_field")
    value = right.text_input("Value (exact)", key="debug_q")
    filters.keep("debug_field", "field", field)
    filters.keep("debug_q", "q", value.strip())
    if not value.strip():
        st.info("Enter a resource name or id, a workload (service.name), an actor, a policy "
                "id, a trace id or an event id to search the decisions in the range.")
        return None
    page = int(st.number_input("Page", min_value=1, value=1, step=1, key="debug_page")) - 1
    return call(debug.search, field, value, start, end, where, page, PAGE_SIZE)


def _decision_log(search: Call, found, start, end) -> None:
    field, value, page = search.args[0], search.args[1], search.args[5]
    rows, more = found
    if rows.empty:
        st.info(f"No decision in this range has {field} = {safe_text(value.strip())}"
                + (" on this page." if page else ". Widen the range or check the value."))
        return
    st.caption(f"Page {page + 1}: decisions {page * PAGE_SIZE + 1}–{page * PAGE_SIZE + len(rows)}"
               + (", more on the next page" if more else ""))
    st.dataframe(rows, hide_index=True)
    ids = rows["event_id"].tolist()
    filters.seed("debug_event", "event", ids[0], ids)
    event_id = st.selectbox("Record", ids, key="debug_event")
    filters.keep("debug_event", "event", event_id)
    at = rows.loc[rows["event_id"] == event_id, "event_time"].iloc[0]  # the row's own time
    shown, extra = load(debug.record, event_id, start, end, at)
    st.subheader("Record")
    st.dataframe(shown, hide_index=True)
    st.subheader("Extra attributes")
    if extra.empty:
        st.info("This record carries no attributes beyond the mapped columns.")
    else:
        st.dataframe(extra, hide_index=True)


def _latency_inputs(start, end, where) -> Call:
    st.subheader("Latency distribution")
    left, right = st.columns([1, 3])
    filters.seed("debug_latency_by", "latency_by", "policy", ["policy", "team"])
    filters.seed("debug_latency_value", "latency_value")
    by = left.selectbox("Of a", ["policy", "team"], key="debug_latency_by")
    value = right.text_input("Named (empty: every decision the filters select)",
                             key="debug_latency_value").strip()
    filters.keep("debug_latency_by", "latency_by", by)
    filters.keep("debug_latency_value", "latency_value", value)
    return call(debug.latency_histogram, start, end, {**where, **({by: value} if value else {})})


def _latency(found, by: str, value: str) -> None:
    histogram, quantiles = found
    if histogram.empty:
        st.info("No decision with a latency (`policy.evaluation.duration`) in this range "
                "for this selection.")
        return
    cols = st.columns(3)
    for col, (name, seconds) in zip(cols, quantiles.items()):
        col.metric(name, format.milliseconds(seconds))
    title = f"Latency of {by} {value}" if value else "Latency of the selected decisions"
    st.plotly_chart(charts.latency_histogram(histogram, title), width="stretch")


def _trail_inputs(start, end) -> Call | None:
    st.subheader("Audit trail of a resource")
    filters.seed("debug_resource", "resource")
    resource = st.text_input("Resource name or id", key="debug_resource").strip()
    filters.keep("debug_resource", "resource", resource)
    if not resource:
        st.info("Enter a resource to list its decisions, violations, drift, deploy gates and "
                "triage verdicts in time order.")
        return None
    return call(debug.audit_trail, resource, start, end)


def _trail(trail) -> None:
    if trail.empty:
        st.info("Nothing about this resource in the range: widen the range or check the "
                "name (`policy.resource.name` / `policy.resource.id`).")
    else:
        st.dataframe(trail, hide_index=True)


def _image_inputs(start, end) -> Call | None:
    st.subheader("Image: SBOM, vulnerabilities and secrets")
    filters.seed("debug_image", "image")
    image = st.text_input("Image reference", key="debug_image").strip()
    filters.keep("debug_image", "image", image)
    if not image:
        st.info("Enter an image (`artifact.image`) to see its SBOM, vulnerability and secret "
                "events over time.")
        return None
    return call(debug.image_timeline, image, start, end)


def _image(events) -> None:
    if events.empty:
        st.info("No SBOM, vulnerability or secret event for this image in the range: send "
                "`sbom.generated`, `vuln.detected` or `secret.detected` events with "
                "`artifact.image`, or widen the range.")
        return
    st.plotly_chart(charts.timeline(events, "Events of the image"), width="stretch")
    st.dataframe(events, hide_index=True)


def render() -> None:
    page_user("debug")
    chosen = page_filters()
    st.title("Debug")
    start, end = chosen.bounds()
    boxes = [st.container() for _ in range(4)]
    with boxes[0]:
        search = _search_inputs(start, end, chosen.where)
    with boxes[1]:
        latency = _latency_inputs(start, end, chosen.where)
    with boxes[2]:
        trail = _trail_inputs(start, end)
    with boxes[3]:
        image = _image_inputs(start, end)
    reads = [c for c in (search, latency, trail, image) if c is not None]
    with reading(*reads) as arrived:  # each section drawn as its read arrives
        def found(read: Call):
            return arrived[reads.index(read)]

        if search is not None:
            with boxes[0]:
                _decision_log(search, found(search), start, end)
        with boxes[1]:
            _latency(found(latency), st.session_state["debug_latency_by"],
                     st.session_state["debug_latency_value"].strip())
        if trail is not None:
            with boxes[2]:
                _trail(found(trail))
        if image is not None:
            with boxes[3]:
                _image(found(image))


render()
