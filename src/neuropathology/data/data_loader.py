"""The ``tf.data`` input pipeline and the one preprocessing path shared by training and serving.

Data flow of :func:`make_dataset` (top to bottom, as the course draws it)::

    file paths + integer labels
      -> check_readable          decode every file once up front; drop (or, strict, reject) bad ones
      -> parallel map            read_image (Pillow/pydicom/nibabel via tf.numpy_function)
                                 + resize (bilinear, antialiased; optional aspect-preserving pad)
      -> cache                   decoded, resized uint8 images kept in memory after epoch 1
      -> shuffle                 seeded, reshuffled every epoch (training only by default)
      -> batch
      -> augment                 training only, on batches, in the [0, 255] float space
      -> normalise               the base model's own input convention
      -> prefetch                overlap input work with the model's step

Serving (:func:`preprocess_paths`, :func:`preprocess_arrays`, used by the Predictor) runs the
*same* decode/resize/normalise functions, so a model sees exactly the tensors it was trained on
(minus augmentation). The test suite checks this equality to 1e-6.

Why cache *after* resize and *before* augmentation: decode + resize is deterministic and is
the larger share of the per-image cost, while augmentation must differ every epoch; so the
deterministic part is memoised and only the random part is recomputed. The cache holds uint8 (the source
images are 8-bit anyway), a quarter of the memory of float32.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf
from PIL import Image

from neuropathology.data.io import ImageReadError, read_image
from neuropathology.utils.helpers import derive_seed, get_logger

if TYPE_CHECKING:
    from neuropathology.data.discovery import Dataset

__all__ = [
    "AUGMENT_ORDER",
    "NORMALIZATIONS",
    "AugmentConfig",
    "PreprocessConfig",
    "Augmenter",
    "affine_transform",
    "bias_field",
    "brightness_contrast",
    "build_augmenter",
    "check_readable",
    "class_weights",
    "cutout",
    "load_image",
    "make_dataset",
    "mixup",
    "normalize",
    "one_hot",
    "oversample_indices",
    "preprocess_arrays",
    "preprocess_paths",
    "random_affine",
    "resize_image",
    "rician_noise",
    "steps_per_epoch",
]

log = get_logger("data.loader")

PathLike = str | os.PathLike[str]
AUTOTUNE = tf.data.AUTOTUNE

#: Normalisation name -> what the base network expects. See :func:`normalize`.
NORMALIZATIONS: dict[str, str] = {
    "mobilenetv2": "x / 127.5 - 1 -> [-1, 1] (keras.applications.mobilenet_v2.preprocess_input)",
    "efficientnet": "identity, [0, 255] (Keras EfficientNet rescales inside the model)",
    "resnet50": "RGB -> BGR, minus ImageNet channel means (caffe-style resnet50.preprocess_input)",
    "unit": "x / 255 -> [0, 1] (the small CNN)",
}

# ImageNet channel means in BGR order, as keras.applications.imagenet_utils uses for "caffe" mode.
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)

#: The order in which :func:`build_augmenter` applies the enabled augmentations.
AUGMENT_ORDER = ("flip", "rotation", "zoom", "bias_field", "brightness", "contrast",
                 "rician_noise", "cutout", "mixup")


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def _from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"Unknown {cls.__name__} key(s) {unknown}; valid keys: {sorted(names)}")
    return cls(**dict(data))


@dataclass(frozen=True)
class PreprocessConfig:
    """Everything that turns an image file into a model input; saved with every trained model.

    ``image_size``: side S of the square network input. ``pad_to_square``: keep the aspect
    ratio and pad with black bars (``tf.image.resize_with_pad``) instead of stretching.
    ``normalization``: one of :data:`NORMALIZATIONS`, chosen by the base model.
    """

    image_size: int = 224
    pad_to_square: bool = False
    normalization: str = "mobilenetv2"

    def __post_init__(self) -> None:
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, (int, np.integer)):
            raise ValueError(f"image_size must be an int, got {self.image_size!r}")
        if self.image_size < 8:
            raise ValueError(f"image_size must be >= 8 pixels, got {self.image_size}")
        object.__setattr__(self, "image_size", int(self.image_size))
        _check_normalization(self.normalization)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (what a run directory's ``config.json`` stores)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreprocessConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error, missing keys take defaults."""
        return _from_dict(cls, data)


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation strengths (0 disables one).

    ``rotation_deg``: max |angle| in degrees. ``zoom``: max relative zoom in/out.
    ``brightness``: max additive shift as a fraction of 255. ``contrast``: max relative contrast
    change. ``bias_field``: max log-amplitude of a smooth multiplicative intensity field (MRI
    coil inhomogeneity; 0.3 means the field spans roughly exp(+-0.3)). ``rician_noise``: max
    noise sigma as a fraction of 255 (magnitude-MRI noise). ``mixup_alpha``: Beta(alpha, alpha)
    parameter for mixup. ``cutout``: side of the zeroed square as a fraction of the image side.
    """

    rotation_deg: float = 20.0
    zoom: float = 0.1
    horizontal_flip: bool = True
    brightness: float = 0.1
    contrast: float = 0.1
    bias_field: float = 0.0
    rician_noise: float = 0.0
    mixup_alpha: float = 0.0
    cutout: float = 0.0

    def __post_init__(self) -> None:
        bounds = {"rotation_deg": (0.0, 180.0), "zoom": (0.0, 0.9), "brightness": (0.0, 1.0),
                  "contrast": (0.0, 1.0), "bias_field": (0.0, 2.0), "rician_noise": (0.0, 1.0),
                  "mixup_alpha": (0.0, 100.0), "cutout": (0.0, 0.9)}
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not low <= float(value) <= high:
                raise ValueError(f"AugmentConfig.{name} must be a number in [{low}, {high}], "
                                 f"got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AugmentConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error, missing keys take defaults."""
        return _from_dict(cls, data)

    @classmethod
    def disabled(cls) -> AugmentConfig:
        """A config with every augmentation switched off."""
        return cls(rotation_deg=0.0, zoom=0.0, horizontal_flip=False, brightness=0.0,
                   contrast=0.0)

    @property
    def enabled(self) -> tuple[str, ...]:
        """Names of the augmentations this config switches on, in application order."""
        on = {"flip": self.horizontal_flip, "rotation": self.rotation_deg > 0,
              "zoom": self.zoom > 0, "bias_field": self.bias_field > 0,
              "brightness": self.brightness > 0, "contrast": self.contrast > 0,
              "rician_noise": self.rician_noise > 0, "cutout": self.cutout > 0,
              "mixup": self.mixup_alpha > 0}
        return tuple(name for name in AUGMENT_ORDER if on[name])


def _check_normalization(name: str) -> None:
    if name not in NORMALIZATIONS:
        raise ValueError(f"Unknown normalization {name!r}; valid names: {sorted(NORMALIZATIONS)}")


# --------------------------------------------------------------------------------------------
# Decode, resize, normalise: the shared (training == serving) path
# --------------------------------------------------------------------------------------------


def resize_image(image: np.ndarray, size: int, pad_to_square: bool = False) -> np.ndarray:
    """Resize one uint8 (H, W, 3) image to uint8 (size, size, 3): the only resize in the project.

    Filter: Pillow's bilinear (triangle) filter, whose support widens with the scale factor
    when shrinking. That is *antialiased* resampling, the same filter as
    ``tf.image.resize(..., "bilinear", antialias=True)`` (they agree within one grey level):
    plain bilinear would sample only 4 source pixels per output pixel when shrinking
    512 -> 224 and alias fine texture. Pillow does it in 8-bit fixed point about 3x faster
    than TF's float kernel on a CPU and releases the GIL, so the parallel ``tf.data`` map
    scales over cores. With ``pad_to_square`` the image is scaled so its longer side is
    ``size`` and centred on black bars: the aspect ratio, and so the anatomy, is preserved.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"resize_image expects uint8 (H, W, 3), got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    pil = Image.fromarray(image)
    if not pad_to_square:
        if (h, w) == (size, size):
            return image
        return np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR))
    scale = size / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = np.zeros((size, size, 3), np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas[top:top + new_h, left:left + new_w] = np.asarray(
        pil.resize((new_w, new_h), Image.Resampling.BILINEAR))
    return canvas


def _load_resized(path: PathLike, size: int, pad_to_square: bool) -> np.ndarray:
    """read_image + resize_image: uint8 (S, S, 3). The body of the tf.data decode map."""
    return resize_image(read_image(Path(os.fsdecode(path))), size, pad_to_square)


def _decode_and_resize(path: tf.Tensor, config: PreprocessConfig) -> tf.Tensor:
    size, pad = config.image_size, config.pad_to_square
    image = tf.numpy_function(lambda p: _load_resized(p, size, pad), [path], tf.uint8,
                              stateful=False)
    # numpy_function loses static shape information; restore what resize_image guarantees.
    image.set_shape((size, size, 3))
    return image


def normalize(images: tf.Tensor | np.ndarray, normalization: str) -> tf.Tensor:
    """Map [0, 255] RGB images ((S,S,3) or (B,S,S,3)) to the base model's input convention.

    - ``mobilenetv2``: ``x / 127.5 - 1`` in [-1, 1].
    - ``efficientnet``: identity; ``keras.applications.EfficientNetB0`` has its own Rescaling
      and Normalization layers, so it wants raw [0, 255] values.
    - ``resnet50``: "caffe" convention of the original ResNet weights: channels reversed to
      BGR, then the ImageNet per-channel mean (103.939, 116.779, 123.68) subtracted; no scaling.
    - ``unit``: ``x / 255`` in [0, 1].
    """
    _check_normalization(normalization)
    x = tf.cast(images, tf.float32)
    if normalization == "mobilenetv2":
        return x / 127.5 - 1.0
    if normalization == "efficientnet":
        return tf.identity(x)
    if normalization == "resnet50":
        return tf.reverse(x, axis=[-1]) - tf.constant(_CAFFE_BGR_MEAN, tf.float32)
    return x / 255.0


def load_image(path: PathLike, config: PreprocessConfig) -> np.ndarray:
    """One file -> float32 (S, S, 3) in [0, 255]: ``read_image`` + resize (+ pad), no normalisation."""
    return _load_resized(path, config.image_size, config.pad_to_square).astype(np.float32)


def preprocess_paths(paths: Sequence[PathLike], config: PreprocessConfig, *,
                     num_threads: int | None = None) -> np.ndarray:
    """Files -> float32 (N, S, S, 3), normalised: THE serving path (the Predictor calls this).

    Identical, value for value, to ``make_dataset(..., training=False)`` for the same files.
    Files are decoded in a thread pool (the decoders release the GIL). A file that cannot be
    read raises :class:`ImageReadError` naming it.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        return np.zeros((0, config.image_size, config.image_size, 3), np.float32)

    def load(path: Path) -> np.ndarray:
        return _load_resized(path, config.image_size, config.pad_to_square)

    workers = num_threads or min(len(paths), os.cpu_count() or 1, 8)
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            images = list(pool.map(load, paths))
    else:
        images = [load(p) for p in paths]
    return _normalize_batch(images, config)


def _normalize_batch(resized: Sequence[np.ndarray], config: PreprocessConfig) -> np.ndarray:
    return normalize(np.stack(resized).astype(np.float32), config.normalization).numpy()


def _to_rgb(array: np.ndarray) -> np.ndarray:
    """One in-memory image -> uint8 (H, W, 3) with the same channel rules as ``read_image``.

    Greyscale (H, W) or (H, W, 1) is replicated to 3 channels; RGBA is alpha-composited on
    black (``round(rgb * alpha / 255)``). Integer images must be 8-bit; floats are taken on
    the 0-255 scale, clipped and rounded, as if they had been saved as an 8-bit file.
    """
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.integer)
                                       or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"Unsupported image dtype {array.dtype}; pass uint8 or float arrays")
    if np.issubdtype(array.dtype, np.integer) and array.size and (
            array.min() < 0 or array.max() > 255):
        raise ValueError(f"Integer image values must lie in [0, 255] (8-bit), got "
                         f"[{array.min()}, {array.max()}]; rescale 16-bit data first")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(f"Expected an image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), "
                         f"got {array.shape}")
    if np.issubdtype(array.dtype, np.floating):
        x = np.rint(np.clip(np.nan_to_num(array, nan=0.0), 0.0, 255.0)).astype(np.uint32)
    else:
        x = array.astype(np.uint32)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    elif x.shape[-1] == 4:
        x = (x[..., :3] * x[..., 3:] + 127) // 255
    return np.ascontiguousarray(x.astype(np.uint8))


def preprocess_arrays(images: np.ndarray | Sequence[np.ndarray],
                      config: PreprocessConfig) -> np.ndarray:
    """In-memory images -> float32 (N, S, S, 3), normalised, exactly like :func:`preprocess_paths`.

    Accepts one image (H, W), (H, W, 1|3|4) or a batch (N, H, W), (N, H, W, 1|3|4), or a list of
    images of different sizes. A 3-D array whose last axis is 1, 3 or 4 is one image; any
    other 3-D array is a batch of greyscale images. uint8 input gives bit-identical results to
    reading the same pixels from a file.
    """
    if isinstance(images, np.ndarray):
        if images.ndim == 2 or (images.ndim == 3 and images.shape[-1] in (1, 3, 4)):
            batch: Sequence[np.ndarray] = [images]
        elif images.ndim in (3, 4):
            batch = list(images)
        else:
            raise ValueError(f"Expected an image or a batch of images, got shape {images.shape}")
    else:
        batch = [np.asarray(img) for img in images]
    if not batch:
        return np.zeros((0, config.image_size, config.image_size, 3), np.float32)
    return _normalize_batch([resize_image(_to_rgb(img), config.image_size, config.pad_to_square)
                             for img in batch], config)


# --------------------------------------------------------------------------------------------
# Bad files
# --------------------------------------------------------------------------------------------

# (resolved path, size, mtime_ns) of files already decoded successfully in this process, so
# the train/val/test pipelines and both training stages do not decode every file twice.
_VERIFIED: set[tuple[str, int, int]] = set()


def _file_key(path: Path) -> tuple[str, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _try_read(path: Path) -> str | None:
    key = _file_key(path)
    if key is not None and key in _VERIFIED:
        return None
    try:
        read_image(path)
    except (ImageReadError, OSError) as exc:
        return str(exc)
    if key is not None:
        _VERIFIED.add(key)
    return None


def check_readable(paths: Sequence[PathLike], *, strict: bool = False,
                   num_threads: int | None = None) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Decode every file fully, up front, and split them into (ok, bad).

    Why up front: a corrupt file found by ``tf.data`` half-way through epoch 3 kills the run.
    Decoding once before training costs one pass over the data (and the pipeline's cache
    makes the first epoch no slower), and turns a crash into a report.

    Default: one counted warning naming the first few bad files; callers drop them.
    ``strict=True``: raise :class:`ImageReadError` naming every bad file.
    Results for unchanged files are remembered for the rest of the process.
    """
    unique = list(dict.fromkeys(Path(p) for p in paths))
    workers = num_threads or min(max(len(unique), 1), os.cpu_count() or 1, 8)
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            errors = list(pool.map(_try_read, unique))
    else:
        errors = [_try_read(p) for p in unique]
    bad_map = {p: e for p, e in zip(unique, errors, strict=True) if e is not None}
    bad = list(bad_map.items())
    ok = [Path(p) for p in paths if Path(p) not in bad_map]
    if bad:
        if strict:
            listing = "\n".join(f"  {e}" if str(p) in e else f"  {p}: {e}" for p, e in bad)
            raise ImageReadError(f"{len(bad)} unreadable image file(s) of {len(unique)}:\n"
                                 f"{listing}\nRemove or replace them, or run without --strict "
                                 f"to skip them with a warning.")
        shown = "; ".join(e if str(p) in e else f"{p}: {e}" for p, e in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        log.warning("Skipping %d unreadable image file(s) of %d: %s%s. Run `neuropathology "
                    "audit DIR` for the full list, or pass --strict to make this an error.",
                    len(bad), len(unique), shown, more)
    return ok, bad


# --------------------------------------------------------------------------------------------
# Augmentation (training only, on batches of float32 in [0, 255])
# --------------------------------------------------------------------------------------------


def _seed_pair(seed: tf.Tensor | Sequence[int] | int) -> tf.Tensor:
    if isinstance(seed, int):
        return tf.constant([seed % (2**31), 0], tf.int64)
    return tf.cast(seed, tf.int64)


def bias_field(images: tf.Tensor, strength: float | tf.Tensor, seed: Any,
               order: int = 3) -> tf.Tensor:
    """Multiply each image by a smooth random intensity field (MRI bias-field augmentation).

    Receive-coil sensitivity makes MR intensity drift slowly across the field of view. We model
    it as ``B(x, y) = exp(s * p(x, y))`` with ``p`` a random polynomial of total degree ``order``
    in normalised coordinates x, y in [-1, 1] (coefficients U(-1, 1), rescaled so max|p| = 1).
    The exponential keeps ``B > 0`` and makes the field symmetric in log space
    (``exp(-s) <= B <= exp(s)``); a low-order polynomial is smooth by construction. The
    same field multiplies all three channels, black background stays black. Output clipped
    to [0, 255]. ``images``: (B, H, W, C) float32; ``seed``: stateless seed (shape [2]).
    """
    shape = tf.shape(images)
    b, h, w = shape[0], shape[1], shape[2]
    y = tf.linspace(-1.0, 1.0, h)
    x = tf.linspace(-1.0, 1.0, w)
    yy, xx = tf.meshgrid(y, x, indexing="ij")
    terms = [xx ** i * yy ** j for i in range(order + 1) for j in range(order + 1 - i)
             if i + j > 0]
    basis = tf.stack(terms, axis=0)  # (T, H, W)
    coeffs = tf.random.stateless_uniform((b, len(terms)), _seed_pair(seed), -1.0, 1.0)
    poly = tf.einsum("bt,thw->bhw", coeffs, basis)
    poly = poly / (tf.reduce_max(tf.abs(poly), axis=[1, 2], keepdims=True) + 1e-6)
    strength = tf.reshape(tf.cast(strength, tf.float32), [-1, 1, 1])
    field = tf.exp(strength * poly)[..., None]
    return tf.clip_by_value(images * field, 0.0, 255.0)


def rician_noise(images: tf.Tensor, sigma: float | tf.Tensor, seed: Any) -> tf.Tensor:
    """Rician noise: ``sqrt((x + n1)^2 + n2^2)``, n1, n2 ~ N(0, sigma^2) independent.

    A magnitude MR image is |complex signal + complex Gaussian noise|, so its noise is Rician,
    not additive Gaussian: on the (zero-signal) background it follows a Rayleigh distribution
    with mean ``sigma * sqrt(pi / 2)`` and is always positive; on bright tissue it tends to
    Gaussian. ``sigma`` on the 0-255 scale, a scalar or one value per image. One noise field
    per pixel is shared by the channels: the RGB channels of an MR image are copies of one
    greyscale magnitude image, and noisy copies must stay copies. Output clipped to [0, 255].
    """
    seed = _seed_pair(seed)
    sigma = tf.reshape(tf.cast(sigma, tf.float32), [-1, 1, 1, 1])
    seeds = tf.random.experimental.stateless_split(seed, 2)
    shape = tf.concat([tf.shape(images)[:-1], [1]], axis=0)
    n1 = tf.random.stateless_normal(shape, seeds[0]) * sigma
    n2 = tf.random.stateless_normal(shape, seeds[1]) * sigma
    return tf.clip_by_value(tf.sqrt(tf.square(images + n1) + tf.square(n2)), 0.0, 255.0)


def cutout(images: tf.Tensor, fraction: float, seed: Any) -> tf.Tensor:
    """Zero one random square of side ``round(fraction * min(H, W))`` in each image (Cutout).

    The square lies fully inside the image, its position uniform. Occluding part of the image
    forces the classifier to use more than one discriminative region (DeVries & Taylor 2017).
    """
    shape = tf.shape(images)
    b, h, w = shape[0], shape[1], shape[2]
    side = tf.cast(tf.round(fraction * tf.cast(tf.minimum(h, w), tf.float32)), tf.int32)
    seeds = tf.random.experimental.stateless_split(_seed_pair(seed), 2)
    top = tf.random.stateless_uniform((b,), seeds[0], 0, h - side + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform((b,), seeds[1], 0, w - side + 1, dtype=tf.int32)
    rows = tf.range(h)[None, :]
    cols = tf.range(w)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + side)[:, None])  # (B, H)
    in_cols = (cols >= left[:, None]) & (cols < (left + side)[:, None])  # (B, W)
    mask = tf.logical_and(in_rows[:, :, None], in_cols[:, None, :])  # (B, H, W)
    return tf.where(mask[..., None], tf.zeros_like(images), images)


def _sample_beta(shape: tf.Tensor | tuple[int, ...], alpha: float, seed: tf.Tensor) -> tf.Tensor:
    # Beta(a, a) = G1 / (G1 + G2) with G1, G2 ~ Gamma(a, 1) independent.
    seeds = tf.random.experimental.stateless_split(seed, 2)
    g1 = tf.random.stateless_gamma(shape, seeds[0], alpha=alpha)
    g2 = tf.random.stateless_gamma(shape, seeds[1], alpha=alpha)
    return g1 / (g1 + g2 + 1e-12)


def mixup(images: tf.Tensor, labels: tf.Tensor, alpha: float,
          seed: Any) -> tuple[tf.Tensor, tf.Tensor]:
    """Mixup (Zhang et al. 2018) within a batch: convex combinations of images *and* labels.

    For each sample i: ``lam_i ~ Beta(alpha, alpha)``, j = a random permutation of the batch,
    ``x_i' = lam_i x_i + (1 - lam_i) x_j`` and ``y_i' = lam_i y_i + (1 - lam_i) y_j``; one-hot
    labels stay on the probability simplex (non-negative, summing to 1). Small alpha (0.2)
    keeps most samples near one of the two originals.
    """
    seed = _seed_pair(seed)
    seeds = tf.random.experimental.stateless_split(seed, 2)
    b = tf.shape(images)[0]
    lam = _sample_beta((b,), alpha, seeds[0])
    perm = tf.argsort(tf.random.stateless_uniform((b,), seeds[1]))
    lam_x = tf.reshape(lam, [-1, 1, 1, 1])
    lam_y = tf.reshape(lam, [-1, 1])
    labels = tf.cast(labels, tf.float32)
    mixed_x = lam_x * images + (1.0 - lam_x) * tf.gather(images, perm)
    mixed_y = lam_y * labels + (1.0 - lam_y) * tf.gather(labels, perm)
    return mixed_x, mixed_y


def affine_transform(images: tf.Tensor, angles: tf.Tensor, scales: tf.Tensor,
                     flips: tf.Tensor) -> tf.Tensor:
    """Rotate by ``angles`` (radians), zoom by ``scales`` and mirror where ``flips`` is -1.

    All three are one affine map about the image centre c = ((W-1)/2, (H-1)/2), applied in a
    single bilinear warp (one interpolation, not three). For an output pixel p the warp reads
    the input at ``c + M (p - c)`` with ``M = R(theta) F / s``: ``F = diag(f, 1)`` mirrors x
    (f = +-1), ``R`` rotates, dividing by ``s`` zooms in for s > 1 (reads closer to the
    centre) and out for s < 1. Pixels read from outside the image are black, like the
    scanner background. ``images`` (B, H, W, C) float32; the parameters have shape (B,).
    """
    shape = tf.shape(images)
    h, w = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    cos, sin = tf.cos(angles) / scales, tf.sin(angles) / scales
    m00, m01, m10, m11 = cos * flips, -sin, sin * flips, cos
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    zero = tf.zeros_like(angles)
    transforms = tf.stack([m00, m01, cx - m00 * cx - m01 * cy,
                           m10, m11, cy - m10 * cx - m11 * cy, zero, zero], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=shape[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")


def random_affine(images: tf.Tensor, seed: Any, *, rotation_deg: float = 20.0,
                  zoom: float = 0.1, horizontal_flip: bool = True) -> tf.Tensor:
    """Per image: angle ~ U(-rotation_deg, rotation_deg), zoom s ~ U(1 - zoom, 1 + zoom),
    mirror with probability 1/2; one :func:`affine_transform` warp for the batch."""
    seeds = tf.random.experimental.stateless_split(_seed_pair(seed), 3)
    b = tf.shape(images)[0]
    angles = tf.random.stateless_uniform((b,), seeds[0], -1.0, 1.0) * (rotation_deg * math.pi
                                                                       / 180.0)
    scales = tf.random.stateless_uniform((b,), seeds[1], 1.0 - zoom, 1.0 + zoom)
    if horizontal_flip:
        flips = tf.where(tf.random.stateless_uniform((b,), seeds[2]) < 0.5, -1.0, 1.0)
    else:
        flips = tf.ones((b,))
    return affine_transform(images, angles, scales, flips)


def brightness_contrast(images: tf.Tensor, seed: Any, *, brightness: float = 0.1,
                        contrast: float = 0.1) -> tf.Tensor:
    """Colour jitter for greyscale-like images: ``(x - m) * k + m + d``, clipped to [0, 255].

    Per image: contrast factor ``k ~ U(1 - contrast, 1 + contrast)`` about the image's own
    per-channel mean ``m`` (the mean is kept, the spread scales), then a brightness shift
    ``d ~ U(-brightness, brightness) * 255`` (a fraction of the value range, as in
    ``keras.layers.RandomBrightness``). One k and one d per image, shared by the channels, so
    a grey image stays grey.
    """
    seeds = tf.random.experimental.stateless_split(_seed_pair(seed), 2)
    b = tf.shape(images)[0]
    k = tf.random.stateless_uniform((b, 1, 1, 1), seeds[0], 1.0 - contrast, 1.0 + contrast)
    d = tf.random.stateless_uniform((b, 1, 1, 1), seeds[1], -brightness, brightness) * 255.0
    mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
    # (x - m) k + m + d == x k + (m (1 - k) + d): two passes over the pixels instead of four.
    return tf.clip_by_value(images * k + (mean * (1.0 - k) + d), 0.0, 255.0)


class Augmenter:
    """``augment(images, labels, seed=None) -> (images, labels)`` on batches in [0, 255].

    Applies, in :data:`AUGMENT_ORDER`: flip + rotation + zoom (one :func:`random_affine`
    warp), :func:`bias_field`, :func:`brightness_contrast`, :func:`rician_noise`, clipping
    to [0, 255], :func:`cutout`, :func:`mixup`. Each step is a stateless function of the
    batch and a seed split from ``seed``: the same (batch, seed) always gives the same
    output. That is what lets :func:`make_dataset` augment several batches in parallel and
    still reproduce a run exactly: it feeds every batch a seed from a seeded random stream
    (different each epoch). Called without a seed (eager use, notebooks), it draws one from
    its own ``tf.random.Generator`` started from the constructor's ``seed``.
    """

    def __init__(self, config: AugmentConfig, seed: int | None = 0) -> None:
        self.config = config
        self.enabled = config.enabled
        self._generator = (tf.random.Generator.from_non_deterministic_state() if seed is None
                           else tf.random.Generator.from_seed(seed))

    def __call__(self, images: tf.Tensor, labels: tf.Tensor,
                 seed: tf.Tensor | Sequence[int] | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        cfg, on = self.config, self.enabled
        if seed is None:
            seed = self._generator.make_seeds(1)[:, 0]
        seeds = tf.random.experimental.stateless_split(_seed_pair(seed), 6)
        x = tf.cast(images, tf.float32)
        batch = tf.shape(x)[0]
        if {"flip", "rotation", "zoom"} & set(on):
            x = random_affine(x, seeds[0], rotation_deg=cfg.rotation_deg, zoom=cfg.zoom,
                              horizontal_flip=cfg.horizontal_flip)
        if "bias_field" in on:
            strength = tf.random.stateless_uniform((batch,), seeds[1], 0.0, cfg.bias_field)
            x = bias_field(x, strength, tf.random.experimental.stateless_fold_in(seeds[1], 1))
        if "brightness" in on or "contrast" in on:
            x = brightness_contrast(x, seeds[2], brightness=cfg.brightness,
                                    contrast=cfg.contrast)
        if "rician_noise" in on:
            sigma = tf.random.stateless_uniform((batch,), seeds[3], 0.0, cfg.rician_noise * 255.0)
            x = rician_noise(x, sigma, tf.random.experimental.stateless_fold_in(seeds[3], 1))
        x = tf.clip_by_value(x, 0.0, 255.0)
        if "cutout" in on:
            x = cutout(x, cfg.cutout, seeds[4])
        if "mixup" in on:
            x, labels = mixup(x, labels, cfg.mixup_alpha, seeds[5])
        return tf.ensure_shape(x, images.shape), labels


def build_augmenter(config: AugmentConfig, seed: int | None = 0) -> Augmenter:
    """The training augmentation for ``config`` (see :class:`Augmenter`); ``seed=None``: random."""
    return Augmenter(config, seed)


# --------------------------------------------------------------------------------------------
# Labels and class balance
# --------------------------------------------------------------------------------------------


def one_hot(labels: Sequence[int] | np.ndarray, num_classes: int) -> np.ndarray:
    """Integer labels -> float32 one-hot (N, num_classes); out-of-range labels are an error."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got [{labels.min()}, "
                         f"{labels.max()}]")
    return np.eye(num_classes, dtype=np.float32)[labels]


def class_weights(labels: Sequence[int] | np.ndarray, num_classes: int) -> dict[int, float]:
    """The "balanced" class weights ``w_c = n / (k * n_c)`` (n samples, k classes, n_c in class c).

    Derivation: the weighted loss sums ``w_c`` over the ``n_c`` samples of class c, so each
    class contributes ``w_c * n_c = n / k`` in total: every class carries the same share of
    the loss, as if the data were balanced, and the mean weight over the samples is
    ``sum_c n_c w_c / n = 1`` so the learning rate keeps its meaning. (Same formula as
    scikit-learn's ``compute_class_weight("balanced")``.) A class with no samples gets 1.0
    (its weight never multiplies anything).
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        raise ValueError("class_weights needs at least one label")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes})")
    counts = np.bincount(labels, minlength=num_classes)
    n, k = labels.size, num_classes
    return {c: (float(n / (k * counts[c])) if counts[c] else 1.0) for c in range(num_classes)}


def oversample_indices(labels: Sequence[int] | np.ndarray, seed: int = 0) -> np.ndarray:
    """Indices that repeat minority-class samples until every class has the majority count.

    Random oversampling: each class keeps all its samples once, plus ``max_count - n_c``
    draws with replacement from itself. The result is shuffled (seeded), int64. Use it with
    ``dataset.with_samples([dataset.samples[i] for i in idx])``. Apply it to the training
    split only: oversampled duplicates in validation would fake the metrics.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        return np.zeros(0, np.int64)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    target = counts.max()
    parts = []
    for c, n_c in zip(classes, counts, strict=True):
        idx = np.flatnonzero(labels == c)
        extra = rng.choice(idx, size=target - n_c, replace=True) if target > n_c else idx[:0]
        parts.extend([idx, extra])
    out = np.concatenate(parts).astype(np.int64)
    rng.shuffle(out)
    return out


# --------------------------------------------------------------------------------------------
# The tf.data pipeline
# --------------------------------------------------------------------------------------------


def make_dataset(dataset: Dataset, config: PreprocessConfig, *, batch_size: int = 32,
                 training: bool = False, augment: AugmentConfig | None = None,
                 shuffle: bool | None = None, seed: int | None = 0, cache: bool = True,
                 strict: bool = False, num_classes: int | None = None,
                 check_files: bool = True, drop_remainder: bool = False) -> tf.data.Dataset:
    """Build the input pipeline: yields (images float32 (B,S,S,3) normalised, one-hot (B,C)).

    - ``training``: enables augmentation (if ``augment`` is given; ``None`` means no
      augmentation) and, unless ``shuffle`` says otherwise, shuffling.
    - ``seed``: seeds shuffling and augmentation and makes the parallel decode keep file
      order; same seed, same data -> the same batches, reshuffled differently each epoch.
      ``None``: non-deterministic and slightly faster.
    - ``cache``: keep the decoded, resized images in memory after the first epoch.
    - ``strict``: an unreadable file is an error (naming every bad file) instead of a
      skipped-with-warning file; see :func:`check_readable`. ``check_files=False`` skips the
      up-front check (only for callers that just checked, e.g. benchmarks).
    - ``num_classes``: one-hot width; defaults to ``len(dataset.class_names)``.
    - ``drop_remainder``: drop the last partial batch (static batch size; avoids a batch of
      one through batch normalisation). Off by default so evaluation sees every image.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n_cls = len(dataset.class_names) if num_classes is None else int(num_classes)
    if n_cls < len(dataset.class_names):
        raise ValueError(f"num_classes={n_cls} is smaller than the dataset's "
                         f"{len(dataset.class_names)} classes {list(dataset.class_names)}")
    root = getattr(dataset, "root", "?")
    if len(dataset) == 0:
        raise ValueError(f"Dataset at {root} has no images; check the directory (expected "
                         f"<class>/<image> folders) or the split you selected.")
    paths = [Path(p) for p in dataset.paths]
    labels = np.asarray(dataset.labels, dtype=np.int64)
    if check_files:
        _, bad = check_readable(paths, strict=strict)
        if bad:
            bad_set = {p for p, _ in bad}
            keep = np.array([p not in bad_set for p in paths])
            paths = [p for p, k in zip(paths, keep, strict=True) if k]
            labels = labels[keep]
            if not paths:
                raise ValueError(f"Dataset at {root}: none of its {len(keep)} images could be "
                                 f"read; run `neuropathology audit {root}` to see why.")

    do_shuffle = training if shuffle is None else shuffle
    deterministic = seed is not None
    ds = tf.data.Dataset.from_tensor_slices(
        ([os.fspath(p) for p in paths], one_hot(labels, n_cls)))
    if do_shuffle and not cache:
        # Without a cache, shuffle the cheap (path, label) pairs, not decoded images.
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda p, y: (_decode_and_resize(p, config), y),
                num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    if cache:
        ds = ds.cache()
        if do_shuffle:
            ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if training and augment is not None and augment.enabled:
        augmenter = build_augmenter(augment, seed)
        # One seed per batch from a seeded stream that changes every epoch: the augmenter is
        # stateless given that seed, so batches can be augmented in parallel, reproducibly.
        stream_seed = None if seed is None else derive_seed(seed, "augment")
        batch_seeds = tf.data.Dataset.random(seed=stream_seed,
                                             rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, batch_seeds)).map(
            lambda xy, s: augmenter(xy[0], xy[1], s),
            num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    ds = ds.map(lambda x, y: (normalize(x, config.normalization), y),
                num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    options = tf.data.Options()
    options.deterministic = deterministic
    ds = ds.with_options(options)
    return ds.prefetch(AUTOTUNE)


def steps_per_epoch(n_samples: int, batch_size: int, *, drop_remainder: bool = False) -> int:
    """Number of batches ``make_dataset`` yields per epoch for ``n_samples`` readable images."""
    return n_samples // batch_size if drop_remainder else math.ceil(n_samples / batch_size)
