"""Localisation and faithfulness metrics, overlays, and the randomisation sanity check."""

from __future__ import annotations

import numpy as np
import pytest

from explain_models import REGION, SIZE, region_image, region_mask, region_model, trained_small_cnn
from neuropathology.explain import ExplainError, grad_cam, normalize_maps, saliency
from neuropathology.explain.metrics import (
    deletion_insertion,
    energy_inside,
    iou_dice,
    localisation,
    pointing_game,
    randomization_check,
    road,
    road_impute,
)
from neuropathology.explain.overlay import map_to_image, render_overlay, save_image


def test_localisation_scores_on_known_maps():
    mask = np.zeros((10, 10), bool)
    mask[2:6, 2:6] = True  # 16 pixels
    heat = np.zeros((10, 10))
    heat[4:8, 4:8] = 1.0  # 16 pixels, 4 of them inside the mask
    heat[3, 3] = 0.2
    assert pointing_game(heat, mask)  # argmax (4, 4) is inside
    iou, dice = iou_dice(heat, mask, threshold=0.5)
    assert iou == pytest.approx(4 / 28) and dice == pytest.approx(8 / 32)
    assert energy_inside(heat, mask) == pytest.approx(4.2 / 16.2)
    far = np.zeros((10, 10))
    far[9, 9] = 1.0
    assert not pointing_game(far, mask)
    assert not pointing_game(far, mask, tolerance=5.5)  # (9, 9) is 4 * sqrt(2) from (5, 5)
    assert pointing_game(far, mask, tolerance=5.7)
    assert localisation(far, mask)["energy"] == 0.0
    assert energy_inside(np.zeros((10, 10)), mask) == 0.0
    with pytest.raises(ExplainError, match="same shape"):
        iou_dice(heat, mask[:5])


def test_gradcam_localises_the_region_of_the_hand_built_model():
    heat = grad_cam(region_model(), region_image()[None], 1)[0]
    scores = localisation(heat, region_mask() > 0)
    assert scores["pointing"] == 1.0 and scores["energy"] > 0.9
    # the input brightness, a map that ignores the model, points at the distractor instead
    brightness = normalize_maps(region_image()[None].mean(axis=-1))[0]
    assert localisation(brightness, region_mask() > 0)["pointing"] == 0.0


def test_deletion_and_insertion_rank_a_faithful_map_above_its_inverse():
    model, x = region_model(), region_image()
    heat = grad_cam(model, x[None], 1)[0]
    good = deletion_insertion(model, x, heat, 1, steps=16)
    bad = deletion_insertion(model, x, 1.0 - heat, 1, steps=16)
    assert good.deletion.shape == good.insertion.shape == (17,)
    assert good.deletion_auc < bad.deletion_auc
    assert good.insertion_auc > bad.insertion_auc
    assert good.deletion[0] == pytest.approx(good.insertion[-1])  # both ends = the full image
    with pytest.raises(ExplainError, match="map"):
        deletion_insertion(model, x, heat[:4], 1)


def test_road_imputation_and_morf_lerf_gap():
    flat = np.full((12, 12, 3), 0.5, np.float32)
    removed = np.zeros((12, 12), bool)
    removed[3:9, 3:9] = True
    filled = road_impute(flat, removed, noise=0.0)
    np.testing.assert_allclose(filled, flat, atol=1e-5)  # a constant image stays constant
    ramp = np.repeat(np.linspace(0, 1, 12, dtype=np.float32)[None, :, None], 12, 0)
    ramp = np.repeat(ramp, 3, -1)
    imputed = road_impute(ramp, removed, noise=0.0)
    np.testing.assert_allclose(imputed, ramp, atol=1e-5)  # linear ramps are reproduced
    noisy = road_impute(ramp, removed, noise=0.05, seed=1)
    assert not np.allclose(noisy[removed], ramp[removed])
    np.testing.assert_array_equal(noisy[~removed], ramp[~removed])
    model, x = region_model(), region_image()
    scores = road(model, x, grad_cam(model, x[None], 1)[0], 1)
    assert scores["gap"] > 0.1  # removing the relevant pixels hurts more
    assert len(scores["morf"]) == len(scores["lerf"]) == len(scores["fractions"])


def test_randomisation_check_separates_trained_from_randomised_weights():
    model, x, _, _ = trained_small_cnn()

    def gradcam(m, xs, classes):
        return grad_cam(m, xs, classes)

    check = randomization_check(model, x[:8], gradcam, seed=0)
    assert not check.flagged, check.spearman
    assert check.mean < 0.5
    # comparing the trained model with itself is exactly what the check must flag
    same = randomization_check(model, x[:8], gradcam, randomized=model)
    assert same.flagged and same.mean == pytest.approx(1.0)

    def edges(m, xs, classes):  # ignores the model entirely: an "explanation" of the image
        return normalize_maps(np.abs(np.gradient(np.asarray(xs).mean(-1), axis=2)))

    assert randomization_check(model, x[:8], edges, seed=0).flagged


def test_trained_model_gradcam_puts_more_energy_on_tumours_than_a_uniform_map():
    """Localisation on synthetic tumours: the trained model's Grad-CAM energy inside the mask is
    above the mask's area fraction (what a uniform map gets)."""
    model, x, labels, masks = trained_small_cnn()
    tumour = [i for i in range(len(x)) if masks[i].any()]
    maps = grad_cam(model, x[tumour], labels[tumour])
    energy = np.mean([energy_inside(m, masks[i]) for m, i in zip(maps, tumour, strict=True)])
    area = np.mean([masks[i].mean() for i in tumour])
    assert maps.shape == (len(tumour), x.shape[1], x.shape[2])
    assert energy > area
    assert saliency(model, x[:2]).shape == (2, x.shape[1], x.shape[2])


def test_overlay_is_drawn_at_the_original_resolution(tmp_path):
    image = np.full((50, 80), 100, np.uint8)
    heat = np.zeros((SIZE, SIZE), np.float32)
    heat[REGION] = 1.0
    out = render_overlay(image, heat, opacity=0.5, threshold=0.5, contour_color=(0, 255, 0))
    assert out.shape == (50, 80, 3) and out.dtype == np.uint8
    assert (np.all(out == (0, 255, 0), axis=-1)).sum() > 0  # a contour was drawn
    plain = render_overlay(image, heat, opacity=0.0, threshold=None)
    np.testing.assert_array_equal(plain, np.repeat(image[..., None], 3, -1))
    untinted = render_overlay(image, heat, opacity=1.0, threshold=None, min_value=0.5)
    assert np.all(untinted[45, 5] == 100) and not np.all(untinted[15, 60] == 100)
    save_image(tmp_path / "o.png", out)
    assert (tmp_path / "o.png").stat().st_size > 0
    with pytest.raises(ExplainError, match="colormap"):
        render_overlay(image, heat, colormap="not-a-map")
    with pytest.raises(ExplainError, match=r"\.png"):
        save_image(tmp_path / "o.xyz", out)


def test_map_to_image_undoes_square_padding():
    # a 40 x 80 image padded into 32 x 32: content rows 8..24, black bars above and below
    heat = np.zeros((32, 32), np.float32)
    heat[8:24] = 1.0
    full = map_to_image(heat, (40, 80), pad_to_square=True)
    assert full.shape == (40, 80)
    np.testing.assert_allclose(full, 1.0)
    stretched = map_to_image(heat, (40, 80), pad_to_square=False)
    assert stretched.min() == 0.0
