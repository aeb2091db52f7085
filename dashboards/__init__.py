"""Streamlit + Plotly dashboards. `app.py` routes; `pages/` has one module per view."""
