"""The global filters every page shares -- time range, team, environment, cluster -- kept in the
URL (`st.query_params`), so a view can be linked and bookmarked, and `link`, which builds such
a URL for a page (what alert notifications point at).

`Filters` and `parse` / `link` are plain Python (tested without Streamlit); `sidebar` draws the
widgets and writes the choice back to the URL on every run, so switching pages keeps it.
A range is one of the SLI windows (`metrics.windows.WINDOWS`), so the pages that read
`sli_values` show the stored value of exactly that window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from metrics.windows import floor_minute, window_length

RANGES = ("5m", "30m", "1h", "6h", "1d", "7d", "30d")
RANGE_LABELS = {"5m": "5 minutes", "30m": "30 minutes", "1h": "1 hour", "6h": "6 hours",
                "1d": "24 hours", "7d": "7 days", "30d": "30 days"}
DEFAULT_RANGE = "1d"
DIMENSIONS = ("team", "environment", "cluster")  # the filtered dimensions, in priority order
KEYS = ("range", *DIMENSIONS)  # the URL parameters this module owns

# page id (dashboards.auth's) -> URL path of its st.Page
PAGE_PATHS = {"executive": "executive", "oncall": "oncall", "triage": "triage",
              "tuning": "tuning", "debug": "debug", "slos": "slos", "live": "live"}


@dataclass(frozen=True)
class Filters:
    """What the user filters on. '' means every value of a dimension."""

    range: str = DEFAULT_RANGE
    team: str = ""
    environment: str = ""
    cluster: str = ""

    @property
    def where(self) -> dict[str, str]:
        """The set dimensions as a `where` for the read API (dimension name -> value)."""
        return {d: getattr(self, d) for d in DIMENSIONS if getattr(self, d)}

    @property
    def sli_dimension(self) -> tuple[str, str]:
        """The one (dimension, value) to read `sli_values` by -- they break values down one
        dimension at a time -- the first set of team, environment, cluster; ('', '') for
        the overall value."""
        return next(iter(self.where.items()), ("", ""))

    @property
    def ignored_by_sli(self) -> list[str]:
        """Set dimensions that `sli_values` cannot combine with `sli_dimension`."""
        return list(self.where)[1:]

    def bounds(self, now: datetime | None = None) -> tuple[datetime, datetime]:
        """[start, end) of the range in whole minutes, end being the start of the next
        minute (so the minute in progress counts)."""
        end = floor_minute(now or datetime.now(timezone.utc)) + timedelta(minutes=1)
        length = window_length(self.range)
        assert length is not None, self.range  # RANGES are rolling windows
        return end - length, end

    @property
    def days(self) -> float:
        """The range's length in days (per-day rates divide by it)."""
        length = window_length(self.range)
        assert length is not None
        return length / timedelta(days=1)

    def params(self) -> dict[str, str]:
        """The URL parameters of the filters that differ from the defaults."""
        default = Filters()
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}


def parse(params: Mapping[str, str | Sequence[str]]) -> Filters:
    """Filters from URL parameters; an unknown range falls back to the default (a link
    typed by hand never breaks the page), values are taken verbatim (bound as parameters)."""
    def one(key: str) -> str:
        value = params.get(key, "")
        if not isinstance(value, str):
            value = value[-1] if value else ""
        return value.strip()

    chosen = one("range")
    return Filters(range=chosen if chosen in RANGES else DEFAULT_RANGE,
                   **{d: one(d) for d in DIMENSIONS})


def link(page: str, base: str = "", filters: Filters | None = None,
         **extra: str) -> str:
    """The URL of `page` (a page id of `PAGE_PATHS`) with the filters and any page
    parameters set (`slo=...`, `policy=...`; empty values left out), under `base`
    (`alerting.dashboard_url`; '' gives a path)."""
    if page not in PAGE_PATHS:
        raise ValueError(f"page {page!r} is not one of {', '.join(PAGE_PATHS)}")
    query = {**(filters or Filters()).params(), **{k: v for k, v in extra.items() if v}}
    url = f"{base.rstrip('/')}/{PAGE_PATHS[page]}"
    return f"{url}?{urlencode(query)}" if query else url


# -- Streamlit ------------------------------------------------------------------------------


def current() -> Filters:
    """The filters of this run, as the URL has them."""
    import streamlit as st

    return parse(st.query_params.to_dict())


def sidebar(options: Mapping[str, list[str]]) -> Filters:
    """Draw the filters in the sidebar and keep them in the URL; every page calls it first.
    The URL decides when it changed since this function last wrote it (the session's first
    run, a link followed inside the app); a page switch that cleared it keeps the last choice.
    `options`: dimension -> its known values; a value from the URL that is not among them (a
    link to a team with no recent data) is offered too."""
    import streamlit as st

    state = st.session_state
    in_url = {k: str(st.query_params[k]) for k in KEYS if k in st.query_params}
    if in_url != state.get("_filters_url") or "filter_range" not in state:
        seed = parse(in_url) if in_url or "_filters" not in state else state["_filters"]
        state["filter_range"] = seed.range
        for d in DIMENSIONS:
            state[f"filter_{d}"] = getattr(seed, d)
    with st.sidebar:
        st.selectbox("Time range", RANGES, key="filter_range", format_func=RANGE_LABELS.get)
        for d in DIMENSIONS:
            values = ["", *sorted(set(options.get(d, [])) | {state[f"filter_{d}"]} - {""})]
            st.selectbox(d.capitalize(), values, key=f"filter_{d}",
                         format_func=lambda v: v or "(all)")
    picked = Filters(range=state["filter_range"],
                     **{d: state[f"filter_{d}"] for d in DIMENSIONS})
    wanted = picked.params()
    for key in KEYS:
        if key not in wanted and key in st.query_params:
            del st.query_params[key]
        elif key in wanted and st.query_params.get(key) != wanted[key]:
            st.query_params[key] = wanted[key]
    state["_filters"], state["_filters_url"] = picked, wanted
    return picked


def seed(key: str, param: str, default: str = "", options: Sequence[str] | None = None
         ) -> None:
    """Give the widget `key` its value from the URL parameter `param` when the URL changed
    since the page last wrote it (`keep`): the session's first run or a link followed; else
    it keeps the user's choice. A value not among `options` falls back to `default`."""
    import streamlit as st

    state, asked = st.session_state, st.query_params.get(param)
    valid = asked is not None and (options is None or asked in options)
    if key not in state or (options is not None and state[key] not in options) or (
            valid and asked != state.get(f"_{key}_url")):
        state[key] = asked if valid else default


def keep(key: str, param: str, value: str) -> None:
    """Write a page parameter to the URL (removed when empty) and note it for `seed`."""
    import streamlit as st

    if value:
        st.query_params[param] = value
    elif param in st.query_params:
        del st.query_params[param]
    st.session_state[f"_{key}_url"] = value or None
