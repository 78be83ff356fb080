"""Streamlit entry point: ``streamlit run app.py`` (the app lives in ``neuropathology.app``)."""

from neuropathology.app.main import run

run()
