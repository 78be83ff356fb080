"""Small helpers shared by every stage: seeding, atomic files, logging and text tables.

Nothing here knows about images or models; anything that does belongs in ``data``,
``models`` or ``training``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

LOGGER_NAME = "neuropathology"


def get_logger(name: str | None = None) -> logging.Logger:
    """Return the project's logger (or a child of it), configured once for the console."""
    root = logging.getLogger(LOGGER_NAME)
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    return root if name is None else root.getChild(name)


def derive_seed(*parts: object) -> int:
    """A 32-bit seed derived deterministically from ``parts``.

    Python's ``hash`` is salted per process, so it cannot give reproducible seeds;
    a SHA-256 of the parts' ``repr`` does, on every machine and Python version.
    """
    digest = hashlib.sha256(repr(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little")


def set_global_seed(seed: int) -> None:
    """Seed Python, NumPy and (if it is importable) TensorFlow from one integer."""
    random.seed(seed)
    # The legacy global generator is still what third-party code (e.g. Keras utilities) draws on.
    np.random.seed(seed % (2**32))  # noqa: NPY002
    os.environ["PYTHONHASHSEED"] = str(seed)
    with contextlib.suppress(ImportError):
        import keras

        keras.utils.set_random_seed(seed)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A rename within one directory is atomic on POSIX and Windows, so a reader (or a
    resumed run) sees either the old complete file or the new complete file, never a
    half-written one. On error the temporary file is removed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Keep the last two suffixes: writers such as Keras insist on ``.weights.h5`` or ``.keras``.
    suffix = ".partial" + "".join(target.suffixes[-2:])
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates the file with mode 0600; give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _current_umask() -> int:
    """The process umask (reading it requires setting it, so set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON atomically; NumPy scalars/arrays allowed."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serialisable")


def format_table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    """Render rows as a plain-text table with right-aligned numbers, for terminals and logs."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [all(_is_number(row[i]) for row in rows) if rows else False for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells)
    return "\n".join(out)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _cell(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.4f}"
    return str(value)
