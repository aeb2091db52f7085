"""Streamlit entry point: routes to one module per view (only the live view so far)."""

from __future__ import annotations

import streamlit as st

from dashboards.views import live

st.set_page_config(page_title="PolicyScope", layout="wide")
live.render()
