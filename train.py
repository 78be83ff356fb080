"""``python train.py [flags]`` is ``neuropathology train [flags]``; try ``python train.py --quick``."""

from neuropathology.training.cli import main

raise SystemExit(main())
