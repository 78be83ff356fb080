"""The data layer: from a folder of files to batches a model can train on.

Modules, in the order data flows through them:

* ``io`` - read one image file (JPEG, PNG 8/16-bit, BMP, TIFF, DICOM, NIfTI) into a ``uint8``
  RGB array, with explicit mode handling, DICOM windowing and an image-bomb guard.
* ``discovery`` - find the labelled images of a class-per-folder tree (optionally under
  ``Training``/``Testing`` split folders) and return an immutable ``Dataset``.
* ``dedup`` - exact (SHA-256) and near-duplicate (perceptual hash) grouping of images.
* ``splits`` - stratified, seeded, group-aware train/val/test splits in which no
  near-duplicate group spans two splits.
* ``audit`` - class balance, image sizes and modes, unreadable files and duplicates
  (``neuropathology audit DIR``).
* ``data_loader`` - the ``tf.data`` pipeline and the single preprocessing function shared by
  training and serving.
* ``synthetic`` - the built-in synthetic brain-MRI dataset used when no real data is present.

The names below are re-exported for convenience. ``data_loader`` is not: it imports
TensorFlow, and ``neuropathology audit`` or ``synth`` should not pay for that; import it as
``from neuropathology.data.data_loader import make_dataset``.
"""

from __future__ import annotations

from neuropathology.data.dedup import (
    exact_duplicate_groups,
    near_duplicate_groups,
    perceptual_hashes,
)
from neuropathology.data.discovery import (
    KAGGLE_4CLASS_ALIASES,
    SPLIT_NAMES,
    Dataset,
    DatasetError,
    Sample,
    discover_dataset,
)
from neuropathology.data.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    ImageInfo,
    ImageReadError,
    is_image_file,
    read_image,
    read_image_info,
)
from neuropathology.data.splits import assert_no_leakage, split_dataset
from neuropathology.data.synthetic import (
    CLASS_NAMES as SYNTHETIC_CLASS_NAMES,
)
from neuropathology.data.synthetic import (
    ensure_dataset,
    generate_arrays,
    generate_slice,
    write_dataset,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "KAGGLE_4CLASS_ALIASES",
    "SPLIT_NAMES",
    "Dataset",
    "DatasetError",
    "ImageInfo",
    "ImageReadError",
    "SYNTHETIC_CLASS_NAMES",
    "Sample",
    "assert_no_leakage",
    "discover_dataset",
    "ensure_dataset",
    "exact_duplicate_groups",
    "generate_arrays",
    "generate_slice",
    "near_duplicate_groups",
    "perceptual_hashes",
    "split_dataset",
    "write_dataset",
    "is_image_file",
    "read_image",
    "read_image_info",
]
