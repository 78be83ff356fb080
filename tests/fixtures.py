"""Builders of tiny image files and dataset trees, written at test time (no binary is committed).

Import from any test module as ``from fixtures import ...`` (``tests/conftest.py`` puts the tests
directory on ``sys.path``). Every builder writes real files in real formats with the real
libraries (Pillow, pydicom, nibabel, zlib), so tests exercise the same decoders users hit.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "KAGGLE_4CLASS_FOLDERS",
    "KAGGLE_4CLASS_NEW_FOLDERS",
    "SEVENTEEN_CLASS_FOLDERS",
    "build_class_tree",
    "noise_image",
    "ramp16",
    "write_dicom",
    "write_image",
    "write_nifti",
    "write_png_bomb",
    "write_png_header_only",
    "write_sample_image",
]

KAGGLE_4CLASS_FOLDERS = ("glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor")
"""Class folders of the Sartaj Bhuvaji 4-class Kaggle set (``Training/`` and ``Testing/``)."""

KAGGLE_4CLASS_NEW_FOLDERS = ("glioma", "meningioma", "notumor", "pituitary")
"""Class folders of the newer 4-class Kaggle set (Masoud Nickparvar)."""

SEVENTEEN_CLASS_FOLDERS = (
    "Astrocitoma T1C+",
    "Carcinoma T1C+",
    "Ependimoma T1",
    "Ganglioglioma T1",
    "Germinoma T1C+",
    "Glioblastoma T1C+",
    "Granuloma T1",
    "Meduloblastoma T1C+",
    "Meningioma T2",
    "Neurocitoma T1",
    "Neurocitoma Ácido T1",
    "Oligodendroglioma T1",
    "Papiloma T1C+",
    "Schwannoma T2",
    "Tuberculoma T1C+",
    "_NORMAL T1",
)
"""Folder names in the style of the 17-class set: spaces, '+', an accent, a leading '_'."""

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def noise_image(size: int | tuple[int, int] = 8, *, seed: int = 0, channels: int = 3) -> np.ndarray:
    """Deterministic random ``uint8`` image, ``(H, W, channels)`` (or ``(H, W)`` if channels is 1).

    Random content makes every fixture image distinct, so exact-duplicate and perceptual-hash
    grouping do not merge unrelated fixture files by accident.
    """
    h, w = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels == 1 else (h, w, channels)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def ramp16(height: int = 8, width: int = 8, *, low: int = 0, high: int = 65535) -> np.ndarray:
    """``uint16`` ramp from ``low`` to ``high`` in raster order (strictly increasing)."""
    values = np.linspace(low, high, height * width)
    return np.rint(values).astype(np.uint16).reshape(height, width)


def write_image(
    path: str | Path,
    array: np.ndarray,
    *,
    mode: str | None = None,
    format: str | None = None,
    **save_kwargs: object,
) -> Path:
    """Save ``array`` with Pillow (format from the suffix unless ``format``); returns the path.

    ``mode`` forces the Pillow mode: ``"I;16"``/``"I;16B"`` build little/big-endian 16-bit
    images from the array's values; any other mode is reached with ``Image.convert`` (e.g.
    ``"P"``, ``"CMYK"``, ``"1"``). Extra keyword arguments go to ``Image.save``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.asarray(array)
    if mode is not None and mode.startswith("I;16"):
        dtype = ">u2" if mode == "I;16B" else "<u2"
        image = Image.frombytes(
            mode, (array.shape[1], array.shape[0]), array.astype(dtype).tobytes()
        )
    else:
        image = Image.fromarray(array)
        if mode is not None and image.mode != mode:
            image = image.convert(mode)
    image.save(path, format=format, **save_kwargs)
    return path


def write_dicom(
    path: str | Path,
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    slope: float | None = None,
    intercept: float | None = None,
    window: tuple[float, float] | None = None,
    with_pixels: bool = True,
    preamble: bool = True,
    multiframe: bool = False,
) -> Path:
    """Write a single-frame MR DICOM of ``pixels`` (uint8/uint16/int16 ``(H, W)`` or uint8 RGB).

    ``slope``/``intercept`` set RescaleSlope/RescaleIntercept, ``window`` (center, width) sets
    WindowCenter/WindowWidth; ``with_pixels=False`` omits PixelData (like a report or
    DICOMDIR); ``preamble=False`` writes no 128-byte preamble and ``DICM`` marker;
    ``multiframe=True`` reads ``pixels`` as greyscale frames ``(F, H, W)``.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.ascontiguousarray(pixels)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    if multiframe:
        ds.NumberOfFrames = int(pixels.shape[0])
    ds.Rows, ds.Columns = (
        int(pixels.shape[-2 if multiframe else 0]),
        int(pixels.shape[-1 if multiframe else 1]),
    )
    colour = pixels.ndim == 3 and not multiframe
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = "RGB" if colour else photometric
    if colour:
        ds.PlanarConfiguration = 0
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if with_pixels:
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    ds.save_as(path, enforce_file_format=preamble)
    return path


def write_nifti(path: str | Path, volume: np.ndarray) -> Path:
    """Write ``volume`` (2-D, 3-D or 4-D) as NIfTI-1, identity affine (``.nii``/``.nii.gz``)."""
    import nibabel as nib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(volume), np.eye(4)), str(path))
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png_bomb(path: str | Path, width: int, height: int) -> Path:
    """A *valid* 1-bit greyscale PNG of ``width x height`` black pixels, streamed through zlib.

    All-zero rows compress ~1000:1, so a 10000 x 10000 image (100 M pixels, 300 MB once
    decoded to RGB) is a ~12 kB file: a genuine decompression bomb, built in well under a
    second without ever holding the raw image in memory.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    chunks = [compressor.compress(row) for _ in range(height)]
    idat = b"".join(chunks) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
    return path


def write_png_header_only(path: str | Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width x height`` 8-bit RGB but whose pixel data is empty.

    Decoding it would fail; a reader that rejects it *as too large* has therefore checked the
    header before decoding.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b""))
        + _png_chunk(b"IEND", b"")
    )
    return path


def write_sample_image(path: str | Path, *, size: int = 8, seed: int = 0) -> Path:
    """Write a distinct noise image in the format given by ``path``'s suffix.

    JPEG/PNG/BMP/TIFF get an RGB noise image, ``.dcm``/``.dicom`` a 16-bit MONOCHROME2 DICOM,
    ``.nii``/``.nii.gz`` a ``size x size x 3`` volume. Any other suffix gets PNG bytes (handy for
    "wrong extension" and "non-image file" cases, e.g. ``notes.txt``).
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".dcm", ".dicom")):
        rng = np.random.default_rng(seed)
        return write_dicom(path, rng.integers(0, 4096, size=(size, size), dtype=np.uint16))
    if name.endswith((".nii", ".nii.gz")):
        rng = np.random.default_rng(seed)
        return write_nifti(path, rng.normal(size=(size, size, 3)).astype(np.float32))
    fmt = {
        ".jpg": "JPEG",
        ".jpeg": "JPEG",
        ".png": "PNG",
        ".bmp": "BMP",
        ".tif": "TIFF",
        ".tiff": "TIFF",
    }.get(path.suffix.lower(), "PNG")
    return write_image(path, noise_image(size, seed=seed), format=fmt)


def build_class_tree(
    root: str | Path,
    layout: Mapping[str, int | Sequence[str]],
    *,
    size: int = 8,
    suffix: str = ".png",
    seed: int = 0,
) -> list[Path]:
    """Create a class-per-folder tree of tiny distinct images; returns the written paths.

    ``layout`` maps a folder path relative to ``root`` (``"Training/glioma_tumor"``,
    ``"yes"``, ``"Glioblastoma T1C+"``) to either a count of images (named ``img_000`` ...
    with ``suffix``) or an explicit list of file names (format from each name's suffix;
    names may contain sub-folders, spaces and parentheses, e.g. ``"gg (627).jpg"``).
    Images get consecutive noise seeds starting at ``seed + 1``, so no two images of one call
    are identical; give separate calls in one test different ``seed`` values (e.g. 0 and 500)
    when their images must differ too.
    """
    root = Path(root)
    written: list[Path] = []
    counter = seed
    for folder, files in layout.items():
        names = [f"img_{i:03d}{suffix}" for i in range(files)] if isinstance(files, int) else files
        for name in names:
            counter += 1
            written.append(write_sample_image(root / folder / name, size=size, seed=counter))
    return written
