"""Background nodes on crafted plates with a known answer."""

from dataclasses import replace

import cv2
import numpy as np
import pandas as pd
import pytest

from animation_lora.background.plates import LayerChecks
from animation_lora.background.temporal_fill import TemporalFillParams, camera_path
from animation_lora.params import parse
from animation_lora.pipelines.background.nodes import check_layers, inpaint_plates, temporal_fill

FILL = TemporalFillParams(enabled=True, max_neighbours=12, min_views=1, edge_margin=2, min_visible_share=0.5,
                          max_step=0.05)


def panning_shot(n=6, w=160, h=90, pan=3, square=20, speed=12, still=False):
    """A textured plate seen through a camera panning `pan` px per frame, with a square 'character'
    walking `speed` px per frame across it (or standing still)."""
    rng = np.random.default_rng(0)
    blocks = rng.integers(20, 235, (h // 6, (w + n * pan) // 6 + 1, 3)).astype(np.uint8)
    plate = np.kron(blocks, np.ones((6, 6, 1), np.uint8))[:h]
    frames, holes, truths = {}, {}, {}
    for k in range(n):
        cam = k * pan
        truth = plate[:, cam : cam + w].copy()
        x = 20 + (0 if still else k * speed) - cam  # the square moves in the world; the camera pans
        hole = np.zeros((h, w), bool)
        hole[30 : 30 + square, max(0, x) : x + square] = True
        layer = truth.copy()
        layer[hole] = 0
        fid = f"f{k:06d}"
        frames[fid], holes[fid], truths[fid] = layer, hole, truth
    plates = pd.DataFrame(
        {"frame_id": list(frames), "usable": True, "shot": 0, "hole_fraction": 0.1, "reason": ""}
    )
    return frames, holes, truths, plates


def test_camera_path_recovers_the_pan():
    frames, holes, _, _ = panning_shot()
    path = camera_path(list(frames.values()), list(holes.values()), 0.05)
    assert np.allclose(path[:, 0], [0, 3, 6, 9, 12, 15], atol=0.5) and np.allclose(path[:, 1], 0, atol=0.5)


def test_hidden_pixels_seen_in_other_frames_are_filled_exactly():
    frames, holes, truths, plates = panning_shot()
    filled, left, report = temporal_fill(frames, holes, plates, FILL)
    for fid in frames:
        done = holes[fid] & ~left[fid]
        assert done.sum() > 0.9 * holes[fid].sum()
        assert np.array_equal(filled[fid][done], truths[fid][done])
    assert (report.filled_temporally > 0).all()


def test_a_character_that_stands_still_leaves_its_hole_to_inpainting():
    frames, holes, _, plates = panning_shot(still=True)
    filled, left, report = temporal_fill(frames, holes, plates, FILL)
    assert all(np.array_equal(left[f], holes[f]) for f in frames)
    disabled, _, _ = temporal_fill(frames, holes, plates, replace(FILL, enabled=False))
    assert all(np.array_equal(disabled[f], frames[f]) for f in frames)


def test_layer_checks():
    layer, hole = np.zeros((10, 20, 3), np.uint8), np.zeros((10, 20), np.uint8)
    index = pd.DataFrame({"frame_id": ["f000001", "f000002"], "shot": [0, 0]})
    plates = check_layers(
        {"f000001": layer, "f000002": layer},
        {"f000001": hole, "f000002": hole + 255},
        index,
        LayerChecks(max_hole_fraction=0.98),
    )
    assert list(plates.usable) == [True, False] and plates.reason.iloc[1] == "hole covers 100% of the plate"
    with pytest.raises(ValueError, match=r"frame 'f000002' is 10x5 but its background layer is 20x10"):
        check_layers({"f000002": layer}, {"f000002": hole[:5, :10]}, index,
                     LayerChecks(max_hole_fraction=0.98))
    with pytest.raises(ValueError, match="'f000003' has no hole mask"):
        check_layers({"f000003": layer}, {}, index, LayerChecks(max_hole_fraction=0.98))
    with pytest.raises(
        ValueError, match=r"`background.checks.max_hole_fractoin`: unknown key; known keys: max_hole"
    ):
        parse(LayerChecks, {"max_hole_fractoin": 0.98}, "background.checks")


def test_an_unreadable_plate_is_a_report_row_not_a_crash(tmp_path):
    broken = tmp_path / "f000002.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    from animation_lora.datasets.image_folder import read_png

    layer, hole = np.full((10, 20, 3), 90, np.uint8), np.zeros((10, 20), bool)
    hole[2:5, 2:5] = True
    index = pd.DataFrame({"frame_id": ["f000001", "f000002"], "shot": [0, 0]})
    plates = check_layers(
        {"f000001": layer, "f000002": lambda: read_png(broken)},
        {"f000001": hole, "f000002": hole},
        index,
        LayerChecks(max_hole_fraction=0.98),
    )
    bad = plates.set_index("frame_id").loc["f000002"]
    assert not bad.usable and "UnidentifiedImageError" in bad.reason and "f000002.png" in bad.reason
    plates_out, report = inpaint_plates(
        {"f000001": layer}, {"f000001": lambda: read_png(broken)}, {"backend": "opencv", "opencv": {}}
    )
    assert plates_out == {} and report.frame_id.tolist() == ["f000001"] and "f000002.png" in report.reason[0]


def test_purity_drops_a_plate_with_a_character_and_can_fail_the_run(tiny_film, tiny_truth):
    import av

    from animation_lora.backends.segmentation import characters_in, make_segmenter
    from animation_lora.background.plates import drop_leaking
    from animation_lora.background.purity import PurityParams
    from animation_lora.lora_dataset import TrainingSet
    from animation_lora.pipelines.background.nodes import score_purity

    with av.open(str(tiny_film)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    images = {"f000000": frames[0], "f000001": tiny_truth.plate(1)}  # a frame with characters; a true plate
    background = TrainingSet("scene_0", "scene_0", images, {k: "scene_0" for k in images}, {},
                             pd.DataFrame({"id": list(images), "selected": True}))
    character = TrainingSet("character_0", "character_0", {"f000000_0": None, "f000014_0": None}, {}, {})
    scenes = pd.DataFrame({"frame_id": ["f000000", "f000014"], "cluster": ["scene_0", "scene_1"]})
    segmenter = make_segmenter({"backend": "mediapipe", "mediapipe": {}})
    find = lambda im: characters_in(segmenter, im, 400)  # noqa: E731
    kept, report = drop_leaking("scene_0", {"scene_0": background}, find)
    assert list(kept["scene_0"].images) == ["f000001"] and report.dropped.tolist() == [True, False]
    m = score_purity(report, character, scenes, PurityParams(min_instance_pixels=400, max_leakage=None))
    assert m["background_leakage_rate_before_drop"] == 0.5 and m["background_leakage_mean_area"] > 0
    assert m["background_leakage_rate"] == 0.0 and m["background_dropped_for_leakage"] == 1
    assert m["character_scenes"] == 2
    with pytest.raises(ValueError, match="leak characters into 50% of the images checked"):
        score_purity(report, character, scenes, PurityParams(min_instance_pixels=400, max_leakage=0.0))


def test_a_character_counts_as_residue_only_on_the_pixels_the_lora_learns(tiny_film, tiny_truth):
    """The masked loss never teaches a plate's invented (inpainted) pixels, so a character the segmenter
    sees there is no residue; the same character on real pixels is."""
    import av

    from animation_lora.backends.segmentation import characters_in, make_segmenter

    with av.open(str(tiny_film)) as c:
        frame = next(f.to_ndarray(format="rgb24") for f in c.decode(video=0))
    truth = tiny_truth.labels[0] > 0
    segmenter = make_segmenter({"backend": "mediapipe", "mediapipe": {}})
    assert characters_in(segmenter, frame, 400)  # the characters are on real pixels: residue
    hidden = cv2.dilate(truth.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    assert characters_in(segmenter, frame, 400, invented=hidden) == []
    rgba = np.dstack([frame, np.where(hidden, 0, 255).astype(np.uint8)])  # a plate as the LoRA sees it
    assert characters_in(segmenter, rgba, 400) == []
