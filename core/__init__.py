"""Glassbox core: everything the studio does, without any UI (never imports streamlit)."""

__version__ = "0.1.0"
