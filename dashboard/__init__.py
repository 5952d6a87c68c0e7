"""The Streamlit dashboard: one file per page, shared helpers in common.py, charts in charts.py."""
