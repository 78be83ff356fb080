"""The app's entry point: sidebar (runs folder, model picker, page) and page dispatch.

``streamlit run app.py`` runs :func:`run`. Any unexpected error on a page is shown as a short
message (the details go to the server log), never as a stack trace in the browser.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from neuropathology.app.runs import default_runs_dir, discover_runs

PAGES = ("Predict", "Model", "Classes")


def run() -> None:
    st.set_page_config(page_title="Brain MRI classifier (research and education)",
                       page_icon=":material/neurology:", layout="wide")
    from neuropathology.app import pages

    with st.sidebar:
        st.header("Brain MRI classifier")
        page = st.radio("Page", PAGES, key="page")
        runs_dir = Path(st.text_input("Runs folder", value=str(default_runs_dir()),
                                      key="runs_dir").strip() or ".")
        runs = discover_runs(runs_dir)
        run_info = None
        if runs:
            labels = [r.label() for r in runs]
            choice = st.selectbox("Model (run)", range(len(runs)), format_func=labels.__getitem__,
                                  key="run_choice")
            run_info = runs[choice or 0]
        st.caption("Research and education only - not for diagnosis.")
    try:
        if page == "Classes":
            pages.classes_page(run_info)
        elif run_info is None:
            pages.no_run_page(runs_dir)
        elif page == "Predict":
            pages.predict_page(run_info)
        else:
            pages.model_page(run_info)
    except Exception as exc:  # st.rerun / st.stop raise BaseException: not caught here
        pages.log.exception("page %s failed", page)
        st.error(f"Something went wrong on this page ({type(exc).__name__}: {exc}). The "
                 "details are in the server log.")
