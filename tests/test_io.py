"""Every supported format, mode and bad-input case of ``neuropathology.data.io``."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from fixtures import (
    noise_image,
    ramp16,
    write_dicom,
    write_image,
    write_nifti,
    write_png_bomb,
    write_png_header_only,
)
from neuropathology.data.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    ImageReadError,
    apply_window,
    is_image_file,
    read_image,
    read_image_info,
    robust_rescale,
)


def assert_rgb_uint8(arr: np.ndarray, height: int, width: int) -> None:
    assert arr.dtype == np.uint8
    assert arr.shape == (height, width, 3)


def assert_grey(arr: np.ndarray) -> np.ndarray:
    """All three channels equal; returns the single channel."""
    np.testing.assert_array_equal(arr[..., 0], arr[..., 1])
    np.testing.assert_array_equal(arr[..., 0], arr[..., 2])
    return arr[..., 0]


# --------------------------------------------------------------------------- suffixes


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.jpg", True),
        ("a.JPEG", True),
        ("gg (627).jpg", True),
        ("a.png", True),
        ("a.bmp", True),
        ("a.TIF", True),
        ("a.tiff", True),
        ("a.dcm", True),
        ("a.DICOM", True),
        ("brain.nii", True),
        ("brain.NII.GZ", True),
        ("a.gz", False),
        ("a.txt", False),
        ("noext", False),
        ("a.jpg.txt", False),
        (".DS_Store", False),
    ],
)
def test_is_image_file(name: str, expected: bool) -> None:
    assert is_image_file(name) is expected


def test_image_extensions_are_lower_case_suffixes() -> None:
    assert ".nii.gz" in IMAGE_EXTENSIONS
    assert all(ext == ext.lower() and ext.startswith(".") for ext in IMAGE_EXTENSIONS)
    assert DEFAULT_MAX_PIXELS == 64_000_000


# --------------------------------------------------------------------------- 8-bit Pillow modes


def test_png_rgb_exact(tmp_path) -> None:
    img = noise_image((5, 7), seed=1)
    out = read_image(write_image(tmp_path / "a.png", img))
    assert_rgb_uint8(out, 5, 7)
    np.testing.assert_array_equal(out, img)


def test_png_greyscale_replicated(tmp_path) -> None:
    grey = noise_image((6, 4), seed=2, channels=1)
    path = write_image(tmp_path / "g.png", grey)
    assert Image.open(path).mode == "L"
    out = read_image(path)
    assert_rgb_uint8(out, 6, 4)
    np.testing.assert_array_equal(assert_grey(out), grey)


def test_png_rgba_composited_on_black(tmp_path) -> None:
    rgba = np.array([[[200, 100, 50, 128], [10, 20, 30, 255], [255, 255, 255, 0]]], dtype=np.uint8)
    out = read_image(write_image(tmp_path / "a.png", rgba))
    assert_rgb_uint8(out, 1, 3)
    # round(c * a / 255): 200*128/255 = 100.4 -> 100, 100*128/255 = 50.2 -> 50,
    # 50*128/255 = 25.1 -> 25
    np.testing.assert_array_equal(out[0], [[100, 50, 25], [10, 20, 30], [0, 0, 0]])


def test_png_la_composited_on_black(tmp_path) -> None:
    la = Image.new("LA", (2, 1))
    la.putdata([(200, 255), (200, 51)])
    la.save(tmp_path / "la.png")
    out = read_image(tmp_path / "la.png")
    np.testing.assert_array_equal(assert_grey(out)[0], [200, 40])  # 200 * 51 / 255 = 40


def test_png_palette(tmp_path) -> None:
    img = np.zeros((2, 2, 3), dtype=np.uint8)
    img[0, 0] = (255, 0, 0)
    img[1, 1] = (0, 0, 255)
    path = tmp_path / "p.png"
    Image.fromarray(img).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(path)
    assert Image.open(path).mode == "P"
    np.testing.assert_array_equal(read_image(path), img)


def test_png_palette_with_transparency_composited(tmp_path) -> None:
    pal = Image.new("P", (2, 1))
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 6))
    pal.putdata([0, 1])
    path = tmp_path / "pt.png"
    pal.save(path, transparency=1)  # palette index 1 (green) is fully transparent
    out = read_image(path)
    np.testing.assert_array_equal(out[0], [[255, 0, 0], [0, 0, 0]])


def test_png_one_bit(tmp_path) -> None:
    bits = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    path = write_image(tmp_path / "b.png", bits, mode="1")
    assert Image.open(path).mode == "1"
    np.testing.assert_array_equal(assert_grey(read_image(path)), bits)


def test_jpeg_rgb_and_greyscale(tmp_path) -> None:
    colour = np.full((8, 8, 3), (180, 90, 30), dtype=np.uint8)
    out = read_image(write_image(tmp_path / "c.jpg", colour, quality=95))
    assert_rgb_uint8(out, 8, 8)
    assert (
        np.abs(out.astype(int) - colour).max() <= 4
    )  # JPEG is lossy but a flat block is near exact
    grey = np.full((8, 8), 77, dtype=np.uint8)
    out = read_image(write_image(tmp_path / "g.jpeg", grey, quality=95))
    assert abs(int(assert_grey(out).mean()) - 77) <= 2


def test_bmp_exact(tmp_path) -> None:
    img = noise_image((3, 5), seed=3)
    np.testing.assert_array_equal(read_image(write_image(tmp_path / "a.bmp", img)), img)


def test_tiff_8bit_and_cmyk(tmp_path) -> None:
    grey = noise_image((4, 4), seed=4, channels=1)
    np.testing.assert_array_equal(
        assert_grey(read_image(write_image(tmp_path / "g.tif", grey))), grey
    )
    cmyk = Image.new("CMYK", (2, 2), (0, 0, 0, 0))  # no ink = white
    cmyk.save(tmp_path / "c.tiff")
    np.testing.assert_array_equal(read_image(tmp_path / "c.tiff"), np.full((2, 2, 3), 255))


def test_wrong_extension_reads_by_content(tmp_path) -> None:
    """Decision: content decides (Pillow sniffs magic bytes); a PNG named .jpg reads losslessly."""
    img = noise_image((4, 4), seed=5)
    path = write_image(tmp_path / "really_a_png.jpg", img, format="PNG")
    np.testing.assert_array_equal(read_image(path), img)
    assert read_image_info(path).format == "PNG"


# --------------------------------------------------------------------------- high bit depth


@pytest.mark.parametrize(
    ("suffix", "mode"), [(".png", "I;16"), (".tif", "I;16"), (".tif", "I;16B")]
)
def test_16bit_ramp_maps_monotonically_to_full_range(tmp_path, suffix: str, mode: str) -> None:
    ramp = ramp16(16, 16)
    path = write_image(tmp_path / f"r{suffix}", ramp, mode=mode)
    assert Image.open(path).mode == mode
    grey = assert_grey(read_image(path)).ravel()
    assert grey.min() == 0 and grey.max() == 255
    assert np.all(np.diff(grey.astype(int)) >= 0)
    assert len(np.unique(grey)) > 200  # contrast kept, not truncated to the high byte


def test_16bit_robust_to_a_hot_pixel(tmp_path) -> None:
    """One saturated voxel must not squash the tissue range (why percentiles, not min/max)."""
    img = ramp16(20, 20, low=1000, high=2000)
    img[0, 0] = 65535
    grey = assert_grey(read_image(write_image(tmp_path / "hot.png", img, mode="I;16")))
    assert grey[0, 0] == 255
    tissue = grey.ravel()[1:]
    assert tissue.max() - tissue.min() > 240
    # With true min-max scaling the tissue would span only ~4 grey levels.
    assert len(np.unique(tissue)) > 200


@pytest.mark.parametrize("dtype", [np.int32, np.float32])
def test_32bit_int_and_float_tiff(tmp_path, dtype) -> None:
    values = (ramp16(8, 8).astype(np.float64) - 30000).astype(dtype)
    path = tmp_path / "v.tif"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == ("I" if dtype == np.int32 else "F")
    grey = assert_grey(read_image(path)).ravel()
    assert grey.min() == 0 and grey.max() == 255 and np.all(np.diff(grey.astype(int)) >= 0)


def test_robust_rescale_edge_cases() -> None:
    np.testing.assert_array_equal(robust_rescale(np.full((3, 3), 7.0)), np.zeros((3, 3)))
    with_nan = np.array([[0.0, np.nan], [np.inf, 10.0]])
    out = robust_rescale(with_nan)
    assert out.dtype == np.uint8 and out[0, 1] == 0 and out[1, 0] == 0 and out[1, 1] == 255


# --------------------------------------------------------------------------- DICOM


def _window_fixture(tmp_path, photometric="MONOCHROME2", name="w.dcm"):
    # stored 0, 450, 500, 600 -> modality (x2 - 1000): -1000, -100, 0, 200
    stored = np.array([[0, 450], [500, 600]], dtype=np.uint16)
    return write_dicom(
        tmp_path / name,
        stored,
        photometric=photometric,
        slope=2.0,
        intercept=-1000.0,
        window=(0.0, 401.0),
    )


def test_dicom_rescale_and_file_window(tmp_path) -> None:
    out = read_image(_window_fixture(tmp_path))
    assert_rgb_uint8(out, 2, 2)
    # LINEAR window c=0, w=401: y = ((x + 0.5) / 400 + 0.5) * 255, clipped.
    # -1000 -> 0; -100 -> 64.07 -> 64; 0 -> 127.8 -> 128; 200 (> 199.5) -> 255.
    np.testing.assert_array_equal(assert_grey(out), [[0, 64], [128, 255]])


def test_dicom_explicit_window_overrides_file(tmp_path) -> None:
    out = read_image(_window_fixture(tmp_path), window=(-500.0, 1001.0))
    # y = ((x + 500.5) / 1000 + 0.5) * 255: -1000 -> 0 (clipped), -100 -> 229.6 -> 230,
    # 0 and 200 -> 255 (clipped)
    np.testing.assert_array_equal(assert_grey(out), [[0, 230], [255, 255]])


def test_dicom_monochrome1_is_inverted(tmp_path) -> None:
    mono2 = read_image(_window_fixture(tmp_path))
    mono1 = read_image(_window_fixture(tmp_path, photometric="MONOCHROME1", name="m1.dcm"))
    np.testing.assert_array_equal(mono1, 255 - mono2)
    assert assert_grey(mono1)[0, 0] == 255  # lowest value is white in MONOCHROME1


def test_dicom_without_window_uses_robust_minmax(tmp_path) -> None:
    path = write_dicom(tmp_path / "r.dcm", ramp16(16, 16, high=4095))
    grey = assert_grey(read_image(path)).ravel()
    assert grey.min() == 0 and grey.max() == 255 and np.all(np.diff(grey.astype(int)) >= 0)


def test_dicom_signed_pixels(tmp_path) -> None:
    stored = np.array([[-1000, 0], [500, 1000]], dtype=np.int16)
    grey = assert_grey(read_image(write_dicom(tmp_path / "s.dcm", stored, window=(0.0, 1001.0))))
    np.testing.assert_array_equal(grey, [[0, 128], [255, 255]])


def test_dicom_rgb(tmp_path) -> None:
    rgb = noise_image((3, 4), seed=6)
    np.testing.assert_array_equal(read_image(write_dicom(tmp_path / "c.dcm", rgb)), rgb)


def test_dicom_multiframe_gives_middle_frame(tmp_path) -> None:
    frames = np.stack([np.full((3, 4), v, dtype=np.uint16) for v in (0, 100, 200)])
    frames[:, 0, 0] = 1000  # one bright pixel per frame so no frame is constant
    out = read_image(
        write_dicom(tmp_path / "mf.dcm", frames, multiframe=True, window=(500.0, 1001.0))
    )
    assert_rgb_uint8(out, 3, 4)
    # middle frame (value 100): ((100 - 499.5) / 1000 + 0.5) * 255 = 25.6 -> 26
    assert assert_grey(out)[1, 1] == 26


def test_exif_orientation_applied(tmp_path) -> None:
    img = np.zeros((2, 4, 3), dtype=np.uint8)
    img[0, 0] = 255  # top-left marker
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs a 90 degree clockwise turn
    path = tmp_path / "rot.png"
    Image.fromarray(img).save(path, exif=exif)
    out = read_image(path)
    assert out.shape == (4, 2, 3)
    np.testing.assert_array_equal(out, np.rot90(img, k=-1))


def test_dicom_without_preamble_needs_dicom_suffix(tmp_path) -> None:
    raw = write_dicom(tmp_path / "nopre.dcm", ramp16(4, 4), preamble=False)
    assert raw.read_bytes()[128:132] != b"DICM"
    assert read_image(raw).shape == (4, 4, 3)
    renamed = tmp_path / "nopre.bin"
    renamed.write_bytes(raw.read_bytes())
    with pytest.raises(ImageReadError, match="nopre.bin"):
        read_image(renamed)


def test_dicom_detected_by_content_without_extension(tmp_path) -> None:
    path = write_dicom(tmp_path / "IM0001", ramp16(4, 4))
    assert read_image(path).shape == (4, 4, 3)
    assert read_image_info(path).format == "DICOM"


def test_dicom_without_pixel_data(tmp_path) -> None:
    path = write_dicom(tmp_path / "report.dcm", ramp16(4, 4), with_pixels=False)
    with pytest.raises(ImageReadError, match=r"report\.dcm.*no pixel data"):
        read_image(path)


def test_dicom_truncated_pixel_data(tmp_path) -> None:
    path = write_dicom(tmp_path / "t.dcm", ramp16(16, 16))
    path.write_bytes(path.read_bytes()[:-300])
    with pytest.raises(ImageReadError, match=r"t\.dcm.*truncated or corrupt"):
        read_image(path)


def test_dicom_pixel_guard(tmp_path) -> None:
    path = write_dicom(tmp_path / "big.dcm", ramp16(8, 8))
    with pytest.raises(ImageReadError, match="decompression bomb"):
        read_image(path, max_pixels=63)
    assert read_image(path, max_pixels=64).shape == (8, 8, 3)


def test_apply_window_functions() -> None:
    x = np.array([-100.0, 0.0, 100.0])
    np.testing.assert_array_equal(apply_window(x, 0.0, 200.0, function="SIGMOID")[1], 128)
    np.testing.assert_array_equal(
        apply_window(x, 0.0, 200.0, function="LINEAR_EXACT"), [0, 128, 255]
    )
    with pytest.raises(ValueError, match="width"):
        apply_window(x, 0.0, 0.0)


# --------------------------------------------------------------------------- NIfTI


def _volume(nx: int = 6, ny: int = 5, nz: int = 7) -> np.ndarray:
    """Slice k holds a ramp plus one bright voxel at (k % nx, 0): the voxel identifies the slice."""
    vol = np.zeros((nx, ny, nz), dtype=np.float32)
    for k in range(nz):
        vol[:, :, k] = np.arange(nx * ny, dtype=np.float32).reshape(nx, ny)
        vol[k % nx, 0, k] = 1000.0
    return vol


def _expected_slice(plane: np.ndarray) -> np.ndarray:
    return robust_rescale(np.rot90(plane))


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_3d_middle_slice(tmp_path, suffix: str) -> None:
    vol = _volume()
    out = read_image(write_nifti(tmp_path / f"v{suffix}", vol))
    assert_rgb_uint8(out, 5, 6)  # rot90: (nx, ny) -> (ny rows, nx columns)
    np.testing.assert_array_equal(assert_grey(out), _expected_slice(vol[:, :, 3]))


def test_nifti_slice_index_and_bounds(tmp_path) -> None:
    vol = _volume()
    path = write_nifti(tmp_path / "v.nii.gz", vol)
    np.testing.assert_array_equal(
        assert_grey(read_image(path, slice_index=1)), _expected_slice(vol[:, :, 1])
    )
    assert not np.array_equal(read_image(path, slice_index=1), read_image(path))
    with pytest.raises(ImageReadError, match=r"v\.nii\.gz.*slice_index"):
        read_image(path, slice_index=7)


def test_nifti_2d_and_4d(tmp_path) -> None:
    plane = np.arange(12, dtype=np.int16).reshape(4, 3)
    np.testing.assert_array_equal(
        assert_grey(read_image(write_nifti(tmp_path / "p.nii", plane))),
        _expected_slice(plane.astype(float)),
    )
    vol4 = np.stack([_volume(), -_volume()], axis=-1)
    out = read_image(write_nifti(tmp_path / "f.nii.gz", vol4))
    np.testing.assert_array_equal(assert_grey(out), _expected_slice(_volume()[:, :, 3]))


def test_nifti_info(tmp_path) -> None:
    info = read_image_info(write_nifti(tmp_path / "v.nii.gz", _volume()))
    assert (info.width, info.height, info.mode, info.format, info.bit_depth) == (
        6,
        5,
        "float32",
        "NIfTI",
        32,
    )


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_truncated_voxels(tmp_path, suffix: str) -> None:
    noise = np.random.default_rng(0).normal(size=(32, 32, 8)).astype(np.float32)
    data = write_nifti(tmp_path / f"full{suffix}", noise).read_bytes()
    broken = tmp_path / f"broken{suffix}"
    broken.write_bytes(data[: len(data) // 2])  # header intact, voxels cut off
    with pytest.raises(ImageReadError, match=r"broken\.nii.*truncated or corrupt"):
        read_image(broken)


def test_nifti_not_a_nifti(tmp_path) -> None:
    path = tmp_path / "fake.nii"
    path.write_bytes(b"this is not a nifti header" * 20)
    with pytest.raises(ImageReadError, match=r"fake\.nii"):
        read_image(path)


# --------------------------------------------------------------------------- bad input


def test_missing_empty_and_directory(tmp_path) -> None:
    with pytest.raises(ImageReadError, match=r"nope\.png.*does not exist"):
        read_image(tmp_path / "nope.png")
    empty = tmp_path / "empty.jpg"
    empty.touch()
    with pytest.raises(ImageReadError, match=r"empty\.jpg.*empty \(0 bytes\)"):
        read_image(empty)
    with pytest.raises(ImageReadError, match="not a regular file"):
        read_image(tmp_path)


def test_corrupt_bytes(tmp_path) -> None:
    path = tmp_path / "junk.png"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    with pytest.raises(ImageReadError, match=r"junk\.png.*not a recognised image"):
        read_image(path)
    with pytest.raises(ImageReadError, match=r"junk\.png"):
        read_image_info(path)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_truncated_file(tmp_path, suffix: str) -> None:
    path = write_image(tmp_path / f"t{suffix}", noise_image(64, seed=7))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=rf"t\{suffix}.*(truncated|corrupt)"):
        read_image(path)


def test_pixel_guard_on_small_png(tmp_path) -> None:
    path = write_image(tmp_path / "s.png", noise_image(8, seed=8))
    with pytest.raises(ImageReadError, match=r"s\.png.*8x8 = 64 pixels.*max_pixels"):
        read_image(path, max_pixels=63)
    assert read_image(path, max_pixels=64).shape == (8, 8, 3)


def test_header_only_bomb_rejected_before_decoding(tmp_path) -> None:
    """The header claims 9000 x 9000 but holds no pixels: being rejected *as too large* (not as
    truncated) proves the guard ran on the header, before any decoding."""
    path = write_png_header_only(tmp_path / "claims_big.png", 9000, 9000)
    with pytest.raises(
        ImageReadError, match=r"claims_big\.png.*81,000,000 pixels.*above the limit"
    ):
        read_image(path)
    small = write_png_header_only(tmp_path / "claims_small.png", 100, 100)
    with pytest.raises(ImageReadError, match="above the limit of 9,999"):
        read_image(small, max_pixels=9_999)
    with pytest.raises(ImageReadError, match="truncated or corrupt"):
        read_image(small)  # under the limit it is decoded, and the missing data is found
    huge = write_png_header_only(tmp_path / "claims_huge.png", 100_000, 100_000)
    with pytest.raises(ImageReadError, match=r"claims_huge\.png.*decompression bomb"):
        read_image(huge)  # Pillow's own limit trips first at open: still our error type


def test_real_one_bit_png_bomb(tmp_path) -> None:
    """A valid 10000 x 10000 PNG of ~12 kB: rejected fast, without allocating 300 MB."""
    path = write_png_bomb(tmp_path / "bomb.png", 10_000, 10_000)
    assert path.stat().st_size < 100_000
    start = time.perf_counter()
    with (
        pytest.warns(Image.DecompressionBombWarning),
        pytest.raises(ImageReadError, match=r"bomb\.png.*10000x10000"),
    ):
        read_image(path)
    assert time.perf_counter() - start < 2.0
    with pytest.warns(Image.DecompressionBombWarning):
        info = read_image_info(path)  # header-only: works and reports the claimed size
    assert (info.width, info.height, info.mode, info.bit_depth) == (10_000, 10_000, "1", 1)


def test_pillow_bomb_error_becomes_image_read_error(tmp_path) -> None:
    """Above 2x Pillow's own limit Pillow raises at open; we still give an ImageReadError."""
    side = 14_000  # 196 M pixels > 2 * Image.MAX_IMAGE_PIXELS
    assert side * side > 2 * Image.MAX_IMAGE_PIXELS
    path = write_png_bomb(tmp_path / "huge.png", side, side)
    with pytest.raises(ImageReadError, match=r"huge\.png.*decompression bomb"):
        read_image(path, max_pixels=None)


# --------------------------------------------------------------------------- header info


def test_read_image_info_pillow_formats(tmp_path) -> None:
    rgb = write_image(tmp_path / "a.jpg", noise_image((6, 9), seed=9))
    info = read_image_info(rgb)
    assert (info.width, info.height, info.mode, info.format, info.bit_depth) == (
        9,
        6,
        "RGB",
        "JPEG",
        8,
    )
    assert info.path == rgb
    deep = read_image_info(write_image(tmp_path / "d.png", ramp16(3, 5), mode="I;16"))
    assert (deep.width, deep.height, deep.mode, deep.bit_depth) == (5, 3, "I;16", 16)


def test_read_image_info_dicom(tmp_path) -> None:
    info = read_image_info(write_dicom(tmp_path / "a.dcm", ramp16(3, 5), photometric="MONOCHROME1"))
    assert (info.width, info.height, info.mode, info.format, info.bit_depth) == (
        5,
        3,
        "MONOCHROME1",
        "DICOM",
        16,
    )
