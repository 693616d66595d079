"""Streamlit views of the app, one module per feature; `app.py` lays them out.

Each module holds widget code only and calls the library (no geo logic here). Only `app.py`
and this sub-package import streamlit (`riskmap.mapview` never does).
"""
