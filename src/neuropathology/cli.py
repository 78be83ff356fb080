"""The ``neuropathology`` command and its subcommands.

Each subcommand lives next to the code it drives and exposes two functions:
``configure_parser(parser)`` adds its arguments and ``run_cli(args) -> int`` runs it.
The modules are imported lazily so that ``neuropathology audit`` does not pay for
importing TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from neuropathology import __version__

#: subcommand -> (module implementing it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("neuropathology.data.synthetic", "write the built-in synthetic MRI dataset to disk"),
    "audit": ("neuropathology.data.audit", "audit an image dataset: counts, sizes, bad files, duplicates"),
    "train": ("neuropathology.training.cli", "train the classifier (two-stage transfer learning)"),
    "explain": ("neuropathology.explain.cli",
                "explain predictions: Grad-CAM & co. overlays, localisation and faithfulness"),
    "evaluate": ("neuropathology.evaluation.cli",
                 "evaluate a run: metrics, calibration, uncertainty, statistics, report"),
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser; only the chosen subcommand's module is imported."""
    parser = argparse.ArgumentParser(
        prog="neuropathology",
        description="Brain-tumour MRI classification: data, training, evaluation, explanation.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.configure_parser(sub_parser)
            sub_parser.set_defaults(_run=module.run_cli)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neuropathology`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
