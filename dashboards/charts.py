"""Pure Plotly figure builders (frame in, figure out), so they can be tested without Streamlit."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

OUTCOME_COLOURS = {"allow": "#2ca02c", "deny": "#d62728", "warn": "#ff7f0e", "error": "#7f3fbf"}


def outcome_bars(frame: pd.DataFrame, x: str, title: str) -> go.Figure:
    """Stacked bars of decisions per `x`, coloured by outcome."""
    fig = px.bar(frame, x=x, y="decisions", color="outcome", title=title,
                 color_discrete_map=OUTCOME_COLOURS, barmode="stack")
    fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend_title_text="")
    return fig


def decisions_over_time(frame: pd.DataFrame) -> go.Figure:
    """Stacked bars per minute: a lone minute still shows, a gap shows as a gap, and the
    current, unfinished minute reads as a short bar rather than a cliff."""
    fig = px.bar(frame, x="minute", y="decisions", color="outcome", barmode="stack",
                 title="Decisions per minute (the last bar is the minute in progress)",
                 color_discrete_map=OUTCOME_COLOURS)
    fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend_title_text="")
    return fig
