"""``neuropathology evaluate`` (== ``python evaluate_model.py``): flags -> evaluate -> report.

See :mod:`neuropathology.evaluation.evaluate` for the steps and the output folder.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the evaluation flags (see ``--help``)."""
    add = parser.add_argument
    add("--run", required=True, type=Path, metavar="RUN",
        help="a finished run directory (the folder `neuropathology train` printed)")
    add("--data-dir", type=Path, default=None, metavar="DIR",
        help="evaluate on this dataset instead of the one the run was trained on; it is split "
             "with the run's own settings (seed, fractions, dedup), and needs the same classes")
    add("--split", choices=("train", "val", "test"), default="test",
        help="which split to evaluate (default test; the temperature is always fitted on val)")
    add("--tta", action="store_true",
        help="also report test-time augmentation (mirror, +-8 degree rotations, averaged)")
    add("--compare", type=Path, default=None, metavar="RUN2",
        help="a second run, evaluated on the same images; McNemar's test of the difference")
    add("--out", type=Path, default=None, metavar="DIR",
        help="output folder (default: RUN/evaluation, or RUN/evaluation-<split>)")
    add("--mc-dropout", type=int, default=0, metavar="N",
        help="also report MC dropout: N stochastic passes with dropout active, averaged")
    add("--n-boot", type=int, default=1000, help="bootstrap resamples for the 95%% CIs (1000)")
    add("--bins", dest="n_bins", type=int, default=15, help="calibration bins (15)")
    add("--seed", type=int, default=0, help="seed of the bootstrap and MC dropout (0)")


def run_cli(args: argparse.Namespace) -> int:
    """Evaluate, write the outputs, print the summary; user errors -> message + exit code 2."""
    from neuropathology.evaluation.evaluate import (
        EvaluateOptions,
        evaluate,
        summary_text,
        write_outputs,
    )

    options = EvaluateOptions(run=args.run, data_dir=args.data_dir, split=args.split,
                              tta=args.tta, compare=args.compare, out=args.out,
                              mc_dropout=args.mc_dropout, n_boot=args.n_boot,
                              n_bins=args.n_bins, seed=args.seed)
    try:
        result = evaluate(options)
        write_outputs(result)
    except _user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary_text(result))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python evaluate_model.py [flags]``: the same as ``neuropathology evaluate [flags]``."""
    parser = argparse.ArgumentParser(
        prog="evaluate_model.py",
        description="Evaluate a trained run: metrics, calibration, uncertainty, statistics.")
    configure_parser(parser)
    return run_cli(parser.parse_args(argv))


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions a user can cause with bad input; reported as one line, not a traceback."""
    from neuropathology.data.discovery import DatasetError
    from neuropathology.data.io import ImageReadError
    from neuropathology.evaluation.calibration import CalibrationError
    from neuropathology.evaluation.evaluate import EvaluationError
    from neuropathology.predictor import RunLoadError
    from neuropathology.training.config import ConfigError

    return (EvaluationError, CalibrationError, ConfigError, DatasetError, ImageReadError,
            RunLoadError)
