"""Streamlit + Plotly dashboards. `app.py` routes; `views/` (not `pages/`, which Streamlit would list as extra pages) has one module per view."""
