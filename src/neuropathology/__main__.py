"""``python -m neuropathology`` is the ``neuropathology`` command."""

from neuropathology.cli import main

raise SystemExit(main())
