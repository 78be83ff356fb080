"""The Streamlit app (``streamlit run app.py``): predict, explain and inspect a trained run.

Small modules, each usable (and tested) without Streamlit running:

* :mod:`~neuropathology.app.runs` - finding run directories and reading their facts.
* :mod:`~neuropathology.app.uploads` - validating an uploaded file before anything decodes it.
* :mod:`~neuropathology.app.inference` - prediction, the uncertainty warning, explanation maps.
* :mod:`~neuropathology.app.report` - the downloadable per-image report (PNG overlay + JSON).
* :mod:`~neuropathology.app.quick_train` - training the quick synthetic model from the page.
* :mod:`~neuropathology.app.classes` - the Classes page text and its references.
* :mod:`~neuropathology.app.pages` - the three pages; :mod:`~neuropathology.app.main` - the entry.

Research and education only: nothing here is a medical device or fit for diagnosis.
"""
