"""Pure Plotly figure builders (frame in, figure out), so they can be tested without Streamlit.

Plotly renders a subset of HTML in titles, tick labels and legends; strings from events
(team, policy, version names) are escaped (`_escaped`, `_title`) so they show as typed.

Figures are built as plain trace and layout dicts, one trace per series (`_traces`, in the
order the series first appear, as Plotly Express orders them), and wrapped without Plotly's
validation (`_figure`). Validation checks every property and every value of every trace as
it is set -- most of a figure's cost, which a page pays on every load, and `st.plotly_chart`
copies and serializes the figure again after it. The builders' figures are validated by the
tests instead (tests/unit/test_dashboard_charts.py: each builder's figure is what Plotly's
validating constructor makes of it), so a misspelt property fails there, not in a page.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

OUTCOME_COLOURS = {"allow": "#2ca02c", "deny": "#d62728", "warn": "#ff7f0e", "error": "#7f3fbf"}
MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def _escaped(frame: pd.DataFrame, *columns: str | None) -> pd.DataFrame:
    """`frame` with the string values of `columns` HTML-escaped (Plotly shows `&lt;` as <)."""
    out = frame.copy()
    for column in columns:
        if column and column in out:
            out[column] = out[column].map(lambda v: html.escape(v) if isinstance(v, str) else v)
    return out


def _title(text: str) -> str:
    return html.escape(text)


def _figure(data: list[dict], layout: dict) -> go.Figure:
    """A figure of JSON-ready trace dicts (each with its `type`) and a layout dict, built
    without Plotly's validation (see the module's docstring)."""
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def _listed(values: pd.Series) -> list:
    """A column as a list of JSON-ready values, as Plotly writes a list: datetimes as their
    ISO text (`isoformat`), the rest as Python scalars."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return [None if pd.isna(v) else v.isoformat() for v in values]
    return values.tolist()


def _array(values: pd.Series) -> np.ndarray:
    """A column as the array Plotly's validation makes of a Series (and writes as it writes
    arrays): times with a time zone shown at their wall-clock time, without it."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_localize(None)
    return values.to_numpy()


def _traces(kind: str, frame: pd.DataFrame, x: str, y: str, color: str | None,
            colours: dict[str, str] | None = None, **props) -> list[dict]:
    """One trace of `kind` ('bar', 'scatter') of `y` over `x` per distinct `color` value, in
    order of first appearance, named after it (coloured from `colours` where it names it);
    one unnamed trace without `color`."""
    if color is None:
        return [{"type": kind, "x": _listed(frame[x]), "y": _listed(frame[y]),
                 "showlegend": False, **props}]
    out = []
    for name, rows in frame.groupby(color, sort=False):
        extra = {"marker": {"color": colours[name]}} if colours and name in colours else {}
        out.append({"type": kind, "x": _listed(rows[x]), "y": _listed(rows[y]),
                    "name": str(name), "legendgroup": str(name), **extra, **props})
    return out


def _hline(y: float, color: str | None = None) -> dict:
    """A dashed line across the plot at `y` (what `Figure.add_hline` adds to the layout)."""
    line = {"color": color, "dash": "dash"} if color else {"dash": "dash"}
    return {"type": "line", "line": line, "x0": 0, "x1": 1, "xref": "x domain", "y0": y,
            "y1": y, "yref": "y"}


def _layout(title: str, x: str, y: str, **more) -> dict:
    return {"title": {"text": title}, "xaxis": {"title": {"text": x}},
            "yaxis": {"title": {"text": y}}, "margin": MARGIN, "legend": {"title": {"text": ""}},
            **more}


def outcome_bars(frame: pd.DataFrame, x: str, title: str) -> go.Figure:
    """Stacked bars of decisions per `x`, coloured by outcome."""
    return _figure(_traces("bar", _escaped(frame, x), x, "decisions", "outcome",
                           OUTCOME_COLOURS),
                   _layout(_title(title), x, "decisions", barmode="stack"))


def decisions_over_time(frame: pd.DataFrame, grain: str = "minute") -> go.Figure:
    """Stacked bars per `grain` (minute, hour, day): a lone bucket still shows, a gap shows
    as a gap, and the bucket in progress reads as a short bar rather than a cliff."""
    return _figure(_traces("bar", frame, "time", "decisions", "outcome", OUTCOME_COLOURS),
                   _layout(f"Decisions per {grain} (the last bar is the {grain} in progress)",
                           "time", "decisions", barmode="stack"))


def budget_burndown(frame: pd.DataFrame, title: str) -> go.Figure:
    """Error budget left (% of the period's budget) at each evaluation point, with the 0 %
    line: below it the budget is spent."""
    return _figure([{"type": "scatter", "x": _array(frame["at"]),
                     "y": _array(frame["budget_remaining"] * 100), "mode": "lines+markers",
                     "name": "budget left", "connectgaps": False}],
                   {"title": {"text": _title(title)}, "yaxis": {"title": {"text":
                                                                          "budget left (%)"}},
                    "margin": MARGIN, "showlegend": False,
                    "shapes": [_hline(0, "#d62728")]})


def coverage_by_team(frame: pd.DataFrame, goal: float | None) -> go.Figure:
    """Enforcement coverage (%) per team as bars, with the goal (an SLO's objective) as a
    dashed line when there is one."""
    layout = {"title": {"text": "Enforcement coverage by team"},
              "yaxis": {"title": {"text": "coverage (%)"}, "range": [0, 100]},
              "margin": MARGIN, "showlegend": False}
    if goal is not None:
        layout["shapes"] = [_hline(goal * 100)]
        layout["annotations"] = [{"showarrow": False, "text": f"goal {goal:.0%}", "x": 1,
                                  "xanchor": "right", "xref": "x domain", "y": goal * 100,
                                  "yanchor": "bottom", "yref": "y"}]
    return _figure([{"type": "bar", "x": _array(_escaped(frame, "team")["team"]),
                     "y": _array(frame["coverage"] * 100), "name": "coverage",
                     "marker": {"color": ["#2ca02c" if goal is None or v >= goal
                                          else "#d62728" for v in frame["coverage"]]}}],
                   layout)


def line(frame: pd.DataFrame, x: str, y: str, title: str, y_title: str,
         color: str | None = None) -> go.Figure:
    """A line per `color` value (or one line) of `y` over `x`, with markers."""
    layout = _layout(_title(title), x, y_title)
    times = frame[x] if x in frame else pd.Series(dtype=object)
    if pd.api.types.is_datetime64_any_dtype(times) and times.nunique() == 1:
        # one point in time: Plotly would zoom its time axis to a millisecond around it
        at = pd.Timestamp(times.iloc[0])
        layout["xaxis"]["range"] = [(at - pd.Timedelta(days=3)).isoformat(),
                                    (at + pd.Timedelta(days=3)).isoformat()]
    return _figure(_traces("scatter", _escaped(frame, color), x, y, color,
                           mode="lines+markers"), layout)


def bars(frame: pd.DataFrame, x: str, y: str, title: str, y_title: str,
         categories: bool = False) -> go.Figure:
    """Bars of `y` per `x`; `categories`: one bar per distinct `x` label (for months as
    'YYYY-MM', which Plotly would otherwise read as dates and stretch over a time axis)."""
    layout = _layout(_title(title), x, y_title)
    if categories:
        layout["xaxis"]["type"] = "category"
    return _figure(_traces("bar", _escaped(frame, x), x, y, None), layout)


def latency_histogram(frame: pd.DataFrame, title: str) -> go.Figure:
    """Decisions per latency bucket (the rollups' log-scale histogram), in latency order."""
    return _figure([{"type": "bar", "x": _array(frame["bucket"]),
                     "y": _array(frame["decisions"]), "name": "decisions"}],
                   {"title": {"text": _title(title)},
                    "xaxis": {"title": {"text": "evaluation latency"}},
                    "yaxis": {"title": {"text": "decisions"}}, "margin": MARGIN})


def timeline(frame: pd.DataFrame, title: str) -> go.Figure:
    """One marker per event, by time and kind."""
    return _figure(_traces("scatter", _escaped(frame, "event_kind"), "event_time",
                           "event_kind", "event_kind", mode="markers"),
                   _layout(_title(title), "event_time", "", showlegend=False))


def fp_rate_trend(frame: pd.DataFrame) -> go.Figure:
    """False-positive rate (%) per policy per day, one line per policy (`day`, `policy`,
    `fp_rate` as a ratio, `false_positives`, `triaged`; days without verdicts have no row and
    no point), on a daily axis and a 0-100 % scale, the counts in the hover."""
    rows = frame.sort_values("day", kind="stable")
    lines: dict[str, dict] = {}
    for policy, day, rate, fps, triaged in zip(
            rows["policy"].tolist(), _listed(rows["day"]), (rows["fp_rate"] * 100).tolist(),
            rows["false_positives"].tolist(), rows["triaged"].tolist()):
        trace = lines.get(policy)
        if trace is None:
            trace = lines[policy] = {
                "type": "scatter", "x": [], "y": [], "mode": "lines+markers",
                "name": html.escape(str(policy)), "text": [],
                # the counts as hover text: lighter than a customdata array
                "hovertemplate": "%{x}: %{y:.1f} % (%{text})<extra></extra>"}
        trace["x"].append(day)
        trace["y"].append(rate)
        trace["text"].append(f"{fps} of {triaged}")
    days = pd.to_datetime(frame["day"])
    half_day = pd.Timedelta(hours=12)
    return _figure([lines[p] for p in sorted(lines)], {
        "title": {"text": "False-positive rate by policy per day"},
        "yaxis": {"title": {"text": "FP rate (%)"}, "range": [-2, 102]},
        "xaxis": {"range": [(days.min() - half_day).isoformat(),
                            (days.max() + half_day).isoformat()],
                  "dtick": 86_400_000, "tickformat": "%b %d"},
        "margin": MARGIN, "showlegend": True,  # named even when one line
        "legend": {"title": {"text": ""}}})
