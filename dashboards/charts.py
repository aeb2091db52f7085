"""Pure Plotly figure builders (frame in, figure out), so they can be tested without Streamlit.

Plotly renders a subset of HTML in titles, tick labels and legends; strings from events
(team, policy, version names) are escaped (`_escaped`, `_title`) so they show as typed.

Figures are built from `plotly.graph_objects` traces in one constructor call, one trace per
series (`_traces`, in the order the series first appear, as Plotly Express orders them):
Plotly Express builds the same figures through subplots and per-trace updates at several
times the cost, which a page pays on every load.
"""

from __future__ import annotations

import html

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


def _traces(trace, frame: pd.DataFrame, x: str, y: str, color: str | None,
            colours: dict[str, str] | None = None, **props) -> list:
    """One `trace` (go.Bar, go.Scatter) of `y` over `x` per distinct `color` value, in order of
    first appearance, named after it (coloured from `colours` where it names it); one unnamed
    trace without `color`."""
    if color is None:
        return [trace(x=frame[x].tolist(), y=frame[y].tolist(), showlegend=False, **props)]
    out = []
    for name, rows in frame.groupby(color, sort=False):
        extra = {"marker_color": colours[name]} if colours and name in colours else {}
        out.append(trace(x=rows[x].tolist(), y=rows[y].tolist(), name=str(name),
                         legendgroup=str(name), **extra, **props))
    return out


def _layout(title: str, x: str, y: str, **more) -> dict:
    return {"title": {"text": title}, "xaxis": {"title": {"text": x}},
            "yaxis": {"title": {"text": y}}, "margin": MARGIN, "legend": {"title": {"text": ""}},
            **more}


def outcome_bars(frame: pd.DataFrame, x: str, title: str) -> go.Figure:
    """Stacked bars of decisions per `x`, coloured by outcome."""
    return go.Figure(_traces(go.Bar, _escaped(frame, x), x, "decisions", "outcome",
                             OUTCOME_COLOURS),
                     _layout(_title(title), x, "decisions", barmode="stack"))


def decisions_over_time(frame: pd.DataFrame, grain: str = "minute") -> go.Figure:
    """Stacked bars per `grain` (minute, hour, day): a lone bucket still shows, a gap shows
    as a gap, and the bucket in progress reads as a short bar rather than a cliff."""
    return go.Figure(_traces(go.Bar, frame, "time", "decisions", "outcome", OUTCOME_COLOURS),
                     _layout(f"Decisions per {grain} (the last bar is the {grain} in progress)",
                             "time", "decisions", barmode="stack"))


def budget_burndown(frame: pd.DataFrame, title: str) -> go.Figure:
    """Error budget left (% of the period's budget) at each evaluation point, with the 0 %
    line: below it the budget is spent."""
    fig = go.Figure(go.Scatter(x=frame["at"], y=frame["budget_remaining"] * 100,
                               mode="lines+markers", name="budget left",
                               connectgaps=False))
    fig.add_hline(y=0, line_dash="dash", line_color="#d62728")
    fig.update_layout(title=_title(title), yaxis_title="budget left (%)", margin=MARGIN,
                      showlegend=False)
    return fig


def coverage_by_team(frame: pd.DataFrame, goal: float | None) -> go.Figure:
    """Enforcement coverage (%) per team as bars, with the goal (an SLO's objective) as a
    dashed line when there is one."""
    fig = go.Figure(go.Bar(x=_escaped(frame, "team")["team"], y=frame["coverage"] * 100,
                           name="coverage",
                           marker_color=["#2ca02c" if goal is None or v >= goal else "#d62728"
                                         for v in frame["coverage"]]))
    if goal is not None:
        fig.add_hline(y=goal * 100, line_dash="dash", annotation_text=f"goal {goal:.0%}")
    fig.update_layout(title="Enforcement coverage by team", yaxis_title="coverage (%)",
                      yaxis_range=[0, 100], margin=MARGIN, showlegend=False)
    return fig


def line(frame: pd.DataFrame, x: str, y: str, title: str, y_title: str,
         color: str | None = None) -> go.Figure:
    """A line per `color` value (or one line) of `y` over `x`, with markers."""
    fig = go.Figure(_traces(go.Scatter, _escaped(frame, color), x, y, color,
                            mode="lines+markers"),
                    _layout(_title(title), x, y_title))
    times = frame[x] if x in frame else pd.Series(dtype=object)
    if pd.api.types.is_datetime64_any_dtype(times) and times.nunique() == 1:
        # one point in time: Plotly would zoom its time axis to a millisecond around it
        at = pd.Timestamp(times.iloc[0])
        fig.update_xaxes(range=[at - pd.Timedelta(days=3), at + pd.Timedelta(days=3)])
    return fig


def bars(frame: pd.DataFrame, x: str, y: str, title: str, y_title: str,
         categories: bool = False) -> go.Figure:
    """Bars of `y` per `x`; `categories`: one bar per distinct `x` label (for months as
    'YYYY-MM', which Plotly would otherwise read as dates and stretch over a time axis)."""
    layout = _layout(_title(title), x, y_title)
    if categories:
        layout["xaxis"]["type"] = "category"
    return go.Figure(_traces(go.Bar, _escaped(frame, x), x, y, None), layout)


def latency_histogram(frame: pd.DataFrame, title: str) -> go.Figure:
    """Decisions per latency bucket (the rollups' log-scale histogram), in latency order."""
    fig = go.Figure(go.Bar(x=frame["bucket"], y=frame["decisions"], name="decisions"))
    fig.update_layout(title=_title(title), xaxis_title="evaluation latency",
                      yaxis_title="decisions",
                      margin=MARGIN)
    return fig


def timeline(frame: pd.DataFrame, title: str) -> go.Figure:
    """One marker per event, by time and kind."""
    return go.Figure(_traces(go.Scatter, _escaped(frame, "event_kind"), "event_time",
                             "event_kind", "event_kind", mode="markers"),
                     _layout(_title(title), "event_time", "", showlegend=False))


def fp_rate_trend(frame: pd.DataFrame) -> go.Figure:
    """False-positive rate (%) per policy per day, one line per policy (`day`, `policy`,
    `fp_rate` as a ratio, `false_positives`, `triaged`; days without verdicts have no row and
    no point), on a daily axis and a 0-100 % scale, the counts in the hover."""
    traces = [go.Scatter(
        x=rows["day"].tolist(), y=(rows["fp_rate"] * 100).tolist(), mode="lines+markers",
        name=html.escape(str(policy)),
        # the counts as hover text: Plotly validates strings faster than a customdata array
        text=[f"{fps} of {triaged}" for fps, triaged in
              zip(rows["false_positives"], rows["triaged"])],
        hovertemplate="%{x}: %{y:.1f} % (%{text})<extra></extra>")
        for policy, rows in frame.sort_values("day").groupby("policy", sort=True)]
    days = pd.to_datetime(frame["day"])
    half_day = pd.Timedelta(hours=12)
    return go.Figure(traces, {
        "title": {"text": "False-positive rate by policy per day"},
        "yaxis": {"title": {"text": "FP rate (%)"}, "range": [-2, 102]},
        "xaxis": {"range": [days.min() - half_day, days.max() + half_day],
                  "dtick": 86_400_000, "tickformat": "%b %d"},
        "margin": MARGIN, "showlegend": True,  # named even when one line
        "legend": {"title": {"text": ""}}})
