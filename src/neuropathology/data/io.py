"""Read one medical or photographic image file into the project's single in-memory form.

Every consumer downstream (audit, deduplication, the tf.data pipeline, serving) receives the
same thing: a ``uint8`` array of shape ``(H, W, 3)`` in RGB order. Funnelling all formats
through one function means a model trained on JPEGs sees a DICOM or NIfTI slice exactly the
way it saw its training data, and a format bug is fixed in one place.

Formats and the rule each follows:

* JPEG / PNG / BMP / TIFF (Pillow). The file *content* decides the decoder, not the
  extension (Pillow sniffs the magic bytes), so a PNG saved as ``.jpg`` still reads. The
  EXIF orientation tag is applied. Multi-page files give their first page.
  Modes are handled explicitly: greyscale is replicated to three channels; 16-bit and
  32-bit greyscale (``I;16``, ``I;16B``, ``I``, ``F``) is rescaled to 8 bit by robust
  min-max; RGBA / LA are alpha-composited on black; palette and CMYK are converted to RGB.
* DICOM (pydicom). The modality LUT (``RescaleSlope``/``RescaleIntercept``) is applied,
  then the VOI window (``window=`` argument, else the file's ``WindowCenter``/
  ``WindowWidth``, else robust min-max), and ``MONOCHROME1`` is inverted so that high
  signal is always bright.
* NIfTI (nibabel, ``.nii`` / ``.nii.gz``). One 2-D slice: the middle slice along the last
  spatial axis (axial for RAS-ordered volumes) of the first volume, rescaled by robust
  min-max and rotated into the usual display orientation.

Image bombs: the pixel count is checked from the header *before* any pixel is decoded, so
a 1 kB PNG that claims to be 100 000 x 100 000 pixels is rejected without allocating
memory. Every failure a user can cause raises :class:`ImageReadError` whose message names
the file and says what to do about it.
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageInfo",
    "ImageReadError",
    "is_image_file",
    "read_image",
    "read_image_info",
]

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".dcm", ".dicom", ".nii", ".nii.gz"}
)
"""Lower-case suffixes treated as images by discovery (``.nii.gz`` is one suffix here)."""

DEFAULT_MAX_PIXELS: int = 64_000_000
"""Largest width*height accepted (about 8000 x 8000). MRI slices are ~512 x 512; anything far
larger is either not an MRI slice or a decompression bomb, and decoding it would need
``3 * max_pixels`` bytes per copy."""

ROBUST_PERCENTILES: tuple[float, float] = (0.5, 99.5)
"""Percentiles used as black and white points when rescaling high-bit-depth data to 8 bit."""

_DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})
_NIFTI_SUFFIXES = frozenset({".nii", ".nii.gz"})

PathLike = str | os.PathLike[str]


class ImageReadError(ValueError):
    """An image file could not be read; the message names the file and how to fix it."""


@dataclass(frozen=True)
class ImageInfo:
    """Header facts about one image, read without decoding its pixels (for audits)."""

    path: Path
    width: int
    height: int
    mode: str
    format: str
    bit_depth: int


# --------------------------------------------------------------------------- suffixes


def image_suffix(path: PathLike) -> str:
    """The lower-case image suffix of ``path``, treating ``.nii.gz`` as a single suffix."""
    name = Path(path).name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return Path(name).suffix


def is_image_file(path: PathLike) -> bool:
    """True when ``path``'s suffix (case-insensitive, ``.nii.gz`` aware) is an image format."""
    return image_suffix(path) in IMAGE_EXTENSIONS


# --------------------------------------------------------------------------- public API


def read_image(
    path: PathLike,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    window: tuple[float, float] | None = None,
    slice_index: int | None = None,
) -> np.ndarray:
    """Read ``path`` into a ``uint8`` RGB array of shape ``(H, W, 3)``.

    Args:
        path: an image file in any format of :data:`IMAGE_EXTENSIONS`.
        max_pixels: reject images whose header claims more than this many pixels
            (``None`` disables the guard; Pillow's own bomb limit then still applies).
        window: DICOM VOI window ``(center, width)`` overriding the file's own window.
            Ignored for other formats.
        slice_index: NIfTI slice along the last spatial axis; default the middle slice.

    Raises:
        ImageReadError: missing, empty, truncated, corrupt, unsupported or too large.
    """
    p = _check_file(path)
    kind = _detect_kind(p)
    if kind == "dicom":
        return _read_dicom(p, max_pixels=max_pixels, window=window)
    if kind == "nifti":
        return _read_nifti(p, max_pixels=max_pixels, slice_index=slice_index)
    return _read_pillow(p, max_pixels=max_pixels)


def read_image_info(path: PathLike) -> ImageInfo:
    """Width, height, mode, format and bit depth of ``path`` from its header only.

    Cheap enough to run over a whole dataset for audit statistics; it does not detect
    truncated pixel data (use :func:`read_image` for that).
    """
    p = _check_file(path)
    kind = _detect_kind(p)
    if kind == "dicom":
        return _dicom_info(p)
    if kind == "nifti":
        return _nifti_info(p)
    return _pillow_info(p)


# --------------------------------------------------------------------------- shared helpers


def _check_file(path: PathLike) -> Path:
    """Fail early, with a message naming the file, on missing, non-regular or empty files."""
    p = Path(path)
    if not p.exists():
        raise ImageReadError(f"{p}: file does not exist; check the path (was it moved or deleted?)")
    if not p.is_file():
        raise ImageReadError(f"{p}: is not a regular file; pass an image file, not a directory")
    if p.stat().st_size == 0:
        raise ImageReadError(
            f"{p}: file is empty (0 bytes), probably an interrupted copy or download; "
            "re-copy it or delete it"
        )
    return p


def _detect_kind(path: Path) -> str:
    """``"dicom"``, ``"nifti"`` or ``"pillow"``: by content where cheap, else by suffix.

    A DICOM Part-10 file carries ``DICM`` at byte 128 whatever its name (scanners often write
    files with no extension at all), so that check comes first. NIfTI has no reliable magic
    in gzipped form, so it is recognised by suffix. Everything else goes to Pillow, which
    identifies JPEG/PNG/BMP/TIFF by their own magic bytes.
    """
    with path.open("rb") as fh:
        head = fh.read(132)
    if head[128:132] == b"DICM":
        return "dicom"
    suffix = image_suffix(path)
    if suffix in _NIFTI_SUFFIXES:
        return "nifti"
    if suffix in _DICOM_SUFFIXES:
        return "dicom"
    return "pillow"


def _check_pixels(path: Path, width: int, height: int, max_pixels: int | None) -> None:
    """Reject a header that claims more than ``max_pixels`` pixels, before decoding."""
    if width <= 0 or height <= 0:
        raise ImageReadError(
            f"{path}: header claims an empty image ({width}x{height}); file is corrupt"
        )
    if max_pixels is not None and width * height > max_pixels:
        raise ImageReadError(
            f"{path}: image is {width}x{height} = {width * height:,} pixels, above the limit of "
            f"{max_pixels:,} (possible decompression bomb); if the file is genuine, downscale it "
            "or pass a larger max_pixels"
        )


def robust_rescale(
    values: np.ndarray, percentiles: tuple[float, float] = ROBUST_PERCENTILES
) -> np.ndarray:
    """Map a greyscale array of any numeric dtype to ``uint8`` by robust min-max.

    Why percentiles rather than the true min and max: a 12- or 16-bit MR image typically has
    a handful of extreme voxels (flow artefacts, a fiducial marker, a hot pixel). Scaling to
    the true maximum would squash the brain into a few grey levels. Using the 0.5th and
    99.5th percentiles as black and white points (``y = 255 * (x - p_lo) / (p_hi - p_lo)``,
    clipped) keeps the tissue contrast and saturates only the outliers. The mapping is
    monotonic, so intensity order is preserved. Non-finite values become black; a constant
    image becomes all zeros (it carries no contrast to keep).
    """
    data = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(data)
    if not finite.any():
        return np.zeros(data.shape, dtype=np.uint8)
    lo, hi = np.percentile(data[finite], percentiles)
    if hi <= lo:  # very peaked histogram: fall back to the true range
        lo, hi = float(data[finite].min()), float(data[finite].max())
    if hi <= lo:
        return np.zeros(data.shape, dtype=np.uint8)
    scaled = (np.where(finite, data, lo) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    """Replicate ``(H, W)`` uint8 to ``(H, W, 3)``: ImageNet backbones expect 3 channels."""
    return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))


def _composite_on_black(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``round(colour * alpha / 255)``: alpha-compositing over a black background.

    Black, not white, because MRI background is black: a transparent border composited on
    white would add a bright frame that the model could learn as a spurious feature.
    """
    c = colour.astype(np.uint32)
    a = alpha.astype(np.uint32)
    if c.ndim == 3:
        a = a[:, :, None]
    return ((c * a + 127) // 255).astype(np.uint8)


# --------------------------------------------------------------------------- Pillow formats


def _open_pillow(path: Path) -> Image.Image:
    """``Image.open`` (header only), with Pillow's errors turned into :class:`ImageReadError`."""
    try:
        return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ImageReadError(
            f"{path}: Pillow refused it as a decompression bomb ({exc}); if genuine, downscale it"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageReadError(
            f"{path}: not a recognised image (JPEG, PNG, BMP, TIFF, DICOM or NIfTI); the file is "
            "corrupt or in another format - re-export it or remove it from the dataset"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(
            f"{path}: cannot parse image header ({exc}); the file is corrupt"
        ) from exc


def _read_pillow(path: Path, *, max_pixels: int | None) -> np.ndarray:
    """Decode a JPEG/PNG/BMP/TIFF after the header passes the pixel-count guard."""
    with _open_pillow(path) as im:
        _check_pixels(path, im.width, im.height, max_pixels)
        try:
            im.load()
        except Image.DecompressionBombError as exc:
            raise ImageReadError(
                f"{path}: decompression bomb ({exc}); if genuine, downscale it"
            ) from exc
        except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as exc:
            raise ImageReadError(
                f"{path}: pixel data is truncated or corrupt ({exc}); re-copy the file or remove it"
            ) from exc
        return _pillow_to_rgb(path, _apply_exif_orientation(im))


_EXIF_ORIENTATION = 0x0112


def _apply_exif_orientation(im: Image.Image) -> Image.Image:
    """Rotate/flip as the EXIF Orientation tag says, so pixels match what viewers display.

    Phones and some export tools store a rotated JPEG plus a tag instead of rotating pixels;
    ignoring the tag would feed a model a sideways scan that a human never saw.
    """
    try:
        orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
    except (OSError, ValueError, SyntaxError):  # a damaged EXIF block is not worth failing on
        return im
    return ImageOps.exif_transpose(im) if orientation not in (None, 1) else im


def _pillow_to_rgb(path: Path, im: Image.Image) -> np.ndarray:
    """Convert a loaded Pillow image of any supported mode to ``uint8 (H, W, 3)`` RGB."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8).copy()
    if mode == "L":
        return _grey_to_rgb(np.asarray(im, dtype=np.uint8))
    if mode == "1":
        return _grey_to_rgb(np.asarray(im.convert("L"), dtype=np.uint8))
    if mode.startswith("I") or mode == "F":
        # I;16 / I;16B / I;16L / I;16N (16-bit), I (32-bit int), F (32-bit float): numpy
        # knows their byte order; rescale to 8 bit robustly rather than truncating bits.
        return _grey_to_rgb(robust_rescale(np.asarray(im)))
    if mode in ("RGBA", "RGBa", "LA", "La", "PA", "P"):
        return _pillow_alpha_to_rgb(im)
    try:  # CMYK, YCbCr, LAB, HSV, ...: Pillow's converters are exact enough for 8-bit data
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (ValueError, OSError) as exc:
        raise ImageReadError(
            f"{path}: unsupported image mode {mode!r}; convert it to 8-bit RGB or greyscale"
        ) from exc


def _pillow_alpha_to_rgb(im: Image.Image) -> np.ndarray:
    """Palette and alpha modes: expand the palette, then composite alpha on black."""
    if im.mode == "P" and "transparency" not in im.info:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    if im.mode in ("LA", "La"):
        la = np.asarray(im.convert("LA"), dtype=np.uint8)
        return _grey_to_rgb(_composite_on_black(la[:, :, 0], la[:, :, 1]))
    rgba = np.asarray(im.convert("RGBA"), dtype=np.uint8)
    return _composite_on_black(rgba[:, :, :3], rgba[:, :, 3])


_MODE_BITS = {"1": 1, "I": 32, "F": 32}


def _pillow_info(path: Path) -> ImageInfo:
    """Header facts via ``Image.open`` (Pillow parses only the header until ``load``)."""
    with _open_pillow(path) as im:
        mode = im.mode
        bits = 16 if mode.startswith("I;16") else _MODE_BITS.get(mode, 8)
        return ImageInfo(
            path=path,
            width=im.width,
            height=im.height,
            mode=mode,
            format=im.format or "unknown",
            bit_depth=bits,
        )


# --------------------------------------------------------------------------- DICOM


def _dcmread(path: Path, *, stop_before_pixels: bool):
    """Read a DICOM dataset; ``force`` only for ``.dcm``/``.dicom`` names without a preamble.

    ``force=True`` makes pydicom parse any bytes as DICOM, which for a random file yields
    nonsense rather than an error, so it is reserved for files that claim to be DICOM by
    name (old scanners and some anonymisers omit the 128-byte preamble + ``DICM``).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    force = image_suffix(path) in _DICOM_SUFFIXES
    try:
        return pydicom.dcmread(path, force=force, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError as exc:
        raise ImageReadError(
            f"{path}: not a DICOM file (no 'DICM' marker); if it is DICOM without a preamble, "
            "give it a .dcm extension"
        ) from exc
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ImageReadError(f"{path}: corrupt or truncated DICOM ({exc}); re-export it") from exc


def _read_dicom(
    path: Path, *, max_pixels: int | None, window: tuple[float, float] | None
) -> np.ndarray:
    """Decode a DICOM image: modality LUT, VOI window, MONOCHROME1 inversion."""
    ds = _dcmread(path, stop_before_pixels=False)
    if not any(tag in ds for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise ImageReadError(
            f"{path}: DICOM file has no pixel data (a DICOMDIR, report or presentation state?); "
            "export the image series itself"
        )
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    _check_pixels(path, cols, rows, max_pixels)
    try:
        pixels = np.asarray(ds.pixel_array)
    except Exception as exc:  # pydicom raises many types for bad/unsupported pixel data
        raise ImageReadError(
            f"{path}: cannot decode DICOM pixel data ({type(exc).__name__}: {exc}); "
            + _dicom_decode_fix(ds)
        ) from exc
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    pixels = _middle_frame(pixels, samples, int(ds.get("NumberOfFrames", 1) or 1))
    if samples > 1:
        return _dicom_colour(pixels)
    return _grey_to_rgb(dicom_grey_to_uint8(pixels, ds, window=window))


def _dicom_decode_fix(ds) -> str:
    """The likely fix for a pixel-decoding failure: a missing codec, or a damaged file."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and getattr(syntax, "is_compressed", False):
        return (
            f"its transfer syntax {syntax.name!r} is compressed: install a decoder "
            "(pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg) or re-export it "
            "uncompressed"
        )
    return "the file is truncated or corrupt: re-export or re-copy it"


def _middle_frame(pixels: np.ndarray, samples: int, frames: int) -> np.ndarray:
    """Pick the middle frame of a multi-frame DICOM (same convention as NIfTI volumes)."""
    if frames > 1 and pixels.ndim == (4 if samples > 1 else 3):
        return pixels[pixels.shape[0] // 2]
    return pixels


def _dicom_colour(pixels: np.ndarray) -> np.ndarray:
    """Colour DICOM (pydicom already converted YBR to RGB): keep 8 bit, rescale deeper data."""
    if pixels.dtype == np.uint8:
        return np.ascontiguousarray(pixels[:, :, :3])
    return robust_rescale(pixels[:, :, :3])


def dicom_grey_to_uint8(
    pixels: np.ndarray, ds, *, window: tuple[float, float] | None = None
) -> np.ndarray:
    """Stored values -> modality values -> VOI window -> display ``uint8`` (PS3.3 C.11).

    1. Modality LUT: ``x = stored * RescaleSlope + RescaleIntercept`` (Hounsfield units for
       CT; arbitrary but consistent units for MR).
    2. VOI LUT: the explicit ``window`` if given, else the file's first
       ``WindowCenter``/``WindowWidth``; without either, robust min-max.
    3. ``MONOCHROME1`` means low values are white; invert so bright always means high signal.
    """
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    values = pixels.astype(np.float64) * slope + intercept
    win = window if window is not None else _file_window(ds)
    if win is None:
        out = robust_rescale(values)
    else:
        function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
        out = apply_window(values, float(win[0]), float(win[1]), function=function)
    if str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper() == "MONOCHROME1":
        out = 255 - out
    return out


def _file_window(ds) -> tuple[float, float] | None:
    """The first WindowCenter/WindowWidth pair in the dataset, or None (multi-valued allowed)."""
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is None or width is None:
        return None
    try:
        c = float(center[0]) if _is_multi(center) else float(center)
        w = float(width[0]) if _is_multi(width) else float(width)
    except (TypeError, ValueError, IndexError):
        return None
    return (c, w) if w > 0 else None


def _is_multi(value: object) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"


def apply_window(
    values: np.ndarray, center: float, width: float, *, function: str = "LINEAR"
) -> np.ndarray:
    """DICOM VOI windowing to ``uint8`` (PS3.3 C.11.2.1.2).

    LINEAR: ``y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255`` clipped to [0, 255], i.e. values
    at or below ``c - 0.5 - (w - 1) / 2`` are black and above ``c - 0.5 + (w - 1) / 2`` white.
    SIGMOID: ``y = 255 / (1 + exp(-4 (x - c) / w))``. LINEAR_EXACT: ``(x - c) / w + 0.5``.
    """
    if width <= 0:
        raise ValueError(f"window width must be positive, got {width}")
    x = np.asarray(values, dtype=np.float64)
    if function == "SIGMOID":
        y = 255.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    elif function == "LINEAR_EXACT":
        y = ((x - center) / width + 0.5) * 255.0
    else:
        y = ((x - (center - 0.5)) / max(width - 1.0, 1.0) + 0.5) * 255.0
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def _dicom_info(path: Path) -> ImageInfo:
    ds = _dcmread(path, stop_before_pixels=True)
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 0)) or 0)
    return ImageInfo(
        path=path,
        width=int(ds.get("Columns", 0) or 0),
        height=int(ds.get("Rows", 0) or 0),
        mode=str(ds.get("PhotometricInterpretation", "unknown")),
        format="DICOM",
        bit_depth=bits,
    )


# --------------------------------------------------------------------------- NIfTI


def _load_nifti(path: Path):
    """``nibabel.load`` (reads the header; data stay on disk behind an array proxy)."""
    import nibabel as nib

    try:
        return nib.load(str(path))
    except (
        nib.filebasedimages.ImageFileError,
        OSError,
        EOFError,
        ValueError,
        zlib.error,
        gzip.BadGzipFile,
    ) as exc:
        raise ImageReadError(f"{path}: not a readable NIfTI file ({exc}); re-export it") from exc


def _nifti_plane_shape(path: Path, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(nx, ny, nz)`` of the spatial grid (nz = 1 for 2-D); axes past the 4th must be 1."""
    dims = list(shape)
    while len(dims) > 4 and dims[-1] == 1:
        dims.pop()
    if len(dims) < 2 or len(dims) > 4:
        raise ImageReadError(f"{path}: NIfTI with shape {shape} is not a 2-D, 3-D or 4-D image")
    nz = dims[2] if len(dims) >= 3 else 1
    return dims[0], dims[1], nz


def _read_nifti(path: Path, *, max_pixels: int | None, slice_index: int | None) -> np.ndarray:
    """One slice of a NIfTI volume: middle along the last spatial axis, first volume if 4-D.

    Only that slice is read from disk (nibabel's array proxy), so a large 4-D fMRI file costs
    one plane, not the whole volume. NIfTI stores voxel ``(i, j)`` with ``i`` running
    left-right; ``rot90`` puts it into the usual display orientation (anterior up).
    """
    img = _load_nifti(path)
    shape = tuple(int(s) for s in img.shape)
    nx, ny, nz = _nifti_plane_shape(path, shape)
    _check_pixels(path, nx, ny, max_pixels)
    k = nz // 2 if slice_index is None else int(slice_index)
    if not -nz <= k < nz:
        raise ImageReadError(
            f"{path}: slice_index {slice_index} outside 0..{nz - 1}; pick a valid slice"
        )
    index: tuple = (slice(None), slice(None))
    if len(shape) >= 3:
        index += (k,) + (0,) * (len(shape) - 3)
    try:
        plane = np.asarray(img.dataobj[index], dtype=np.float64)
    except (OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile) as exc:
        raise ImageReadError(
            f"{path}: NIfTI voxel data truncated or corrupt ({exc}); re-export it"
        ) from exc
    return _grey_to_rgb(robust_rescale(np.rot90(plane.reshape(nx, ny))))


def _nifti_info(path: Path) -> ImageInfo:
    img = _load_nifti(path)
    nx, ny, _ = _nifti_plane_shape(path, tuple(int(s) for s in img.shape))
    dtype = np.dtype(img.get_data_dtype())
    # After rot90 the displayed slice is ny rows by nx columns.
    return ImageInfo(
        path=path,
        width=nx,
        height=ny,
        mode=dtype.name,
        format="NIfTI",
        bit_depth=dtype.itemsize * 8,
    )
