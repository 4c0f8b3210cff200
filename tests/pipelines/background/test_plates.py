"""Background plates as trained on: alpha 0 on the inpainted pixels, crops away from large holes, and
plates still showing a character dropped (with the count in the purity report)."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from animation_lora.background.plates import PlateCrop, drop_leaking, hole_free_crop, masked_plate
from animation_lora.background.purity import PurityParams
from animation_lora.lora_dataset import build_lora_dataset
from animation_lora.pipelines.background.nodes import score_purity

CROP = PlateCrop()
PARAMS = {"target_size": 3, "resolution": 64}


def test_a_plate_is_cropped_away_from_a_large_hole_at_its_side():
    hole = np.zeros((90, 160), bool)
    hole[20:80, 120:150] = True  # a character-sized inpainted area near the right edge
    x0, y0, x1, y1 = hole_free_crop(hole, CROP)
    assert x1 <= 125 and (x1 - x0) * (y1 - y0) >= 0.5 * 90 * 160  # left of the hole (grid step 5 px)
    assert hole[y0:y1, x0:x1].mean() <= CROP.max_hole
    assert (x0, y0, y1) == (0, 0, 90) and x1 >= 115  # the largest such crop: all rows, up to the hole


def test_no_crop_when_the_hole_is_small_central_or_cropping_is_off():
    small = np.zeros((90, 160), bool)
    small[40:43, 40:43] = True
    assert hole_free_crop(small, CROP) is None  # within max_hole: the mask alone handles it
    central = np.zeros((100, 100), bool)
    central[30:70, 30:70] = True  # every hole-free crop keeps < 50% of the plate
    assert hole_free_crop(central, CROP) is None
    side = np.zeros((90, 160), bool)
    side[:, 120:] = True
    assert hole_free_crop(side, PlateCrop(enabled=False)) is None


def test_masked_plate_alpha_is_zero_exactly_on_the_invented_pixels():
    rng = np.random.default_rng(0)
    plate = rng.integers(0, 255, (90, 160, 3), dtype=np.uint8)
    hole = np.zeros((90, 160), bool)
    hole[40:50, 60:70] = True
    rgba = masked_plate(plate, hole, CROP)  # 100 px: below max_hole, no crop
    assert rgba.shape == (90, 160, 4) and np.array_equal(rgba[..., :3], plate)
    assert np.array_equal(rgba[..., 3] == 0, hole) and set(np.unique(rgba[..., 3])) == {0, 255}
    side = np.zeros((90, 160), bool)
    side[10:80, 130:160] = True
    cropped = masked_plate(plate, side, CROP)
    assert cropped.shape[1] <= 130 and cropped.shape[0] == 90 and (cropped[..., 3] == 255).all()
    assert np.array_equal(cropped[..., :3], plate[:, : cropped.shape[1]])
    with pytest.raises(ValueError, match="Hole mask is 10x5 but its plate is 160x90"):
        masked_plate(plate, side[:5, :10], CROP)


def _fake_find(image):
    """'A character' wherever the plate (RGBA, as the LoRA sees it) has a pure-white 30x30 block (a known
    answer)."""
    white = (image[..., :3] == 255).all(axis=2)
    return [SimpleNamespace(mask=white)] if white.sum() >= 900 else []


def _sets():
    images = {f"f{k:06d}": np.full((60, 80, 4), 90, np.uint8) for k in range(4)}
    images["f000001"][10:40, 10:40, :3] = 255  # leaks
    captions = {k: "scene, background" for k in images}

    def ds(name, ids):
        return build_lora_dataset(name, name, {i: images[i] for i in ids}, {i: captions[i] for i in ids},
                                  {i: 1.0 for i in ids}, None, PARAMS)

    return ds


def test_leaking_plates_are_dropped_and_counted():
    ds = _sets()
    sets = {"town": ds("town", ["f000000", "f000001", "f000002"]), "beach": ds("beach", ["f000003"])}
    assert sets["town"].toml["datasets"][0]["subsets"][0]["alpha_mask"] is True  # RGBA: kohya's alpha_mask
    out, report = drop_leaking("town", sets, _fake_find)
    assert sorted(out["town"].images) == ["f000000", "f000002"] and sorted(out) == ["beach", "town"]
    assert sorted(out["town"].captions) == ["f000000", "f000002"]
    row = report.set_index("frame_id").loc["f000001"]
    assert row.dropped and row.residue_pixels == 900 and row.reason.startswith("character found: 1")
    assert report.dropped.sum() == 1 and len(report) == 4
    dropped = out["town"].report.set_index("id").dropped
    assert dropped["f000001"].startswith("character found") and dropped["f000000"] == ""
    character = build_lora_dataset("c", "c", {"f000000_0": np.zeros((8, 8, 3), np.uint8)}, {"f000000_0": "c"},
                                   {"f000000_0": 1.0}, None, PARAMS)
    scenes = pd.DataFrame({"frame_id": ["f000000"], "cluster": ["town"]})
    m = score_purity(report, character, scenes, PurityParams(min_instance_pixels=400, max_leakage=None))
    assert m["background_dropped_for_leakage"] == 1 and m["background_images"] == 3
    assert m["background_leakage_rate"] == 0.0 and m["background_leakage_rate_before_drop"] == 0.25
    assert m["background_leakage_mean_area"] == pytest.approx(900 / 4800 / 4)
    with pytest.raises(ValueError, match="leak characters into 25% of the images checked"):
        score_purity(report, character, scenes, PurityParams(min_instance_pixels=400, max_leakage=0.0))


def test_a_scene_set_that_is_all_leaks_is_left_out_and_the_main_one_is_nothing_to_teach():
    ds = _sets()
    sets = {"town": ds("town", ["f000000", "f000002"]), "ears": ds("ears", ["f000001"])}
    out, _ = drop_leaking("town", sets, _fake_find)
    assert list(out) == ["town"]
    out, _ = drop_leaking("ears", sets, _fake_find)  # the run goes on without a background LoRA, saying why
    assert out["ears"].skipped.startswith("a character is still found in every one of the 1 plates of 'ears'")
    assert not out["ears"].images
