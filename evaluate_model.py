"""``python evaluate_model.py --run RUN [...]`` == ``neuropathology evaluate --run RUN [...]``."""

from neuropathology.evaluation.cli import main

raise SystemExit(main())
