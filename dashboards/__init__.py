"""Streamlit + Plotly dashboards: `app.py` routes (`st.navigation`) to one module per page under
`pages/`; `queries/` holds every query the pages run, `loaders.py` caches them, `charts.py`
builds the figures, `filters.py` keeps the global filters in the URL."""
