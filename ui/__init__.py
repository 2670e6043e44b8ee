"""View helpers shared by app.py and the pages: the one place that talks to both streamlit and core."""
