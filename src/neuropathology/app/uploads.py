"""Validating an uploaded file before anything decodes it, with readable messages.

The app accepts PNG, JPEG and DICOM, checked in this order; every failure raises
:class:`UploadError` whose message is meant for the person who uploaded the file (no stack
trace, no temporary path):

1. the file name has an allowed extension (:data:`ALLOWED_EXTENSIONS`);
2. the size is within :data:`MAX_UPLOAD_BYTES` (Streamlit's ``server.maxUploadSize`` in
   ``.streamlit/config.toml`` enforces the same limit in the browser; this is the server-side
   check) and not zero;
3. the *content* is PNG, JPEG or DICOM by its magic bytes - a GIF or a text file renamed
   ``.png`` is refused; a PNG named ``.jpg`` is read as PNG, with a note saying so;
4. the header's pixel count is at most :data:`MAX_PIXELS` (decompression bombs are refused
   before any pixel is decoded);
5. ``neuropathology.data.io.read_image`` decodes it - the project's one reader, so the app
   sees an upload exactly as training saw its files: truncated data and DICOM without pixel
   data raise its ``ImageReadError``; 16-bit images are rescaled to 8 bit (robust min-max)
   and RGBA is composited on black, each with a note.

Nothing is ever fetched from a URL: only the bytes the user uploaded are read.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuropathology.data.io import ImageReadError, read_image, read_image_info

#: Lower-case extensions accepted by the uploader -> the format they name.
ALLOWED_EXTENSIONS: dict[str, str] = {
    "png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "dcm": "DICOM", "dicom": "DICOM",
}
#: Largest upload in MB; keep equal to ``[server] maxUploadSize`` in .streamlit/config.toml.
MAX_UPLOAD_MB = 20
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
#: Largest width * height accepted (25 megapixels, 5000 x 5000): MRI slices are ~512 x 512.
MAX_PIXELS = 25_000_000

_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "DICOM": ".dcm"}


class UploadError(ValueError):
    """An upload the app cannot use; the message says why and what to do, for a person."""


@dataclass(frozen=True)
class UploadedImage:
    """A validated upload: the decoded RGB uint8 image and what was noticed on the way."""

    name: str
    image: np.ndarray = field(repr=False)  #: uint8 (H, W, 3), as read_image returns it
    format: str  #: "PNG", "JPEG" or "DICOM" (by content)
    digest: str  #: sha256 of the bytes (cache key of the explanation maps)
    notes: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])


def sniff_format(data: bytes) -> str | None:
    """``"PNG"``, ``"JPEG"``, ``"DICOM"`` (Part-10 ``DICM`` marker) from magic bytes, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[128:132] == b"DICM":
        return "DICOM"
    return None


def _extension(name: str) -> str:
    return Path(name).suffix.lower().lstrip(".")


def _safe_name(name: str) -> str:
    """The base name for messages (no directories, no control characters, bounded length)."""
    base = Path(name.replace("\\", "/")).name
    return re.sub(r"[\x00-\x1f\x7f]", "?", base)[:120] or "upload"


def validate_upload(name: str, data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES,
                    max_pixels: int = MAX_PIXELS) -> UploadedImage:
    """Check and decode one uploaded file (see the module docstring for the steps).

    Raises:
        UploadError: with a message for the user; never another exception type.
    """
    shown = _safe_name(name)
    ext = _extension(shown)
    if ext not in ALLOWED_EXTENSIONS:
        allowed = ", ".join(f".{e}" for e in ALLOWED_EXTENSIONS)
        raise UploadError(f"{shown}: files of this type are not accepted; upload {allowed}.")
    if len(data) == 0:
        raise UploadError(f"{shown}: the file is empty (0 bytes); upload it again.")
    if len(data) > max_bytes:
        raise UploadError(f"{shown}: {len(data) / 2**20:.1f} MB is above the upload limit of "
                          f"{max_bytes / 2**20:.0f} MB; export a single slice or downscale it.")
    claimed = ALLOWED_EXTENSIONS[ext]
    actual = sniff_format(data)
    if actual is None and claimed == "DICOM":
        actual = "DICOM"  # DICOM without the 128-byte preamble: the name is the only hint
    if actual is None:
        raise UploadError(f"{shown}: the content is not a PNG, JPEG or DICOM image (the file "
                          f"is named .{ext} but is something else); export it as PNG or JPEG.")
    notes: list[str] = []
    if actual != claimed:
        notes.append(f"The file is named .{ext} but contains a {actual} image; it was read as "
                     f"{actual}.")
    try:
        image, header_notes = _decode(data, actual, shown, max_pixels)
    except UploadError:
        raise
    except Exception as exc:  # any decoder failure becomes a message, never a stack trace
        raise UploadError(f"{shown}: the image could not be read ({type(exc).__name__}); "
                          "the file may be damaged - export it again.") from exc
    notes.extend(header_notes)
    return UploadedImage(shown, image, actual, hashlib.sha256(data).hexdigest(), tuple(notes))


def _decode(data: bytes, fmt: str, shown: str, max_pixels: int
            ) -> tuple[np.ndarray, list[str]]:
    with tempfile.TemporaryDirectory(prefix="np-upload-") as tmp:
        path = Path(tmp) / f"upload{_SUFFIX[fmt]}"
        path.write_bytes(data)
        try:
            info = read_image_info(path)
            image = read_image(path, max_pixels=max_pixels)  # refuses bombs from the header
        except ImageReadError as exc:
            message = str(exc).replace(str(path), shown)
            raise UploadError(message.rstrip(".") + ".") from exc
    notes: list[str] = []
    if info.bit_depth > 8 and fmt != "DICOM":
        notes.append(f"{info.bit_depth}-bit image: rescaled to 8 bit by robust min-max "
                     "(0.5th-99.5th percentile), as in training.")
    if fmt == "DICOM":
        notes.append(f"DICOM ({info.mode}, {info.bit_depth} bit): modality LUT and VOI window "
                     "applied, as in training.")
    if info.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        notes.append("The image has transparency: it was composited on black.")
    return image, notes
