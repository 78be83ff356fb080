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
"""

from __future__ import annotations

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

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "KAGGLE_4CLASS_ALIASES",
    "SPLIT_NAMES",
    "Dataset",
    "DatasetError",
    "ImageInfo",
    "ImageReadError",
    "Sample",
    "discover_dataset",
    "is_image_file",
    "read_image",
    "read_image_info",
]
