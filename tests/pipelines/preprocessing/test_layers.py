"""Layer nodes on frames with known content: plates with and without characters."""

from dataclasses import replace

import av
import pandas as pd

from animation_lora.evaluation.segmentation import score_segmentation
from animation_lora.layers.split import LayersParams
from animation_lora.pipelines.preprocessing.layer_nodes import segment_layers

LAYERS = LayersParams(min_instance_pixels=400, crop_margin=0.08, hole_margin=3)
BACKEND = {"backend": "mediapipe", "mediapipe": {}}


def test_layers_of_real_and_empty_frames(tiny_film, tiny_truth):
    with av.open(str(tiny_film)) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    frames = {"f000000": decoded[0], "f000014": decoded[14], "f000001": tiny_truth.plate(1).copy()}
    index = pd.DataFrame({"frame_id": list(frames), "frame": [0, 14, 1], "shot": [0, 2, 0], "kept": True})
    out = segment_layers(frames, index, LAYERS, BACKEND)
    instances, masks, layers, holes, inst_index, layer_index = (
        out[k] for k in ("instances", "masks", "layers", "holes", "instance_index", "layer_index"))
    counts = dict(zip(layer_index.frame_id, layer_index.instances))
    assert counts == {"f000000": 1, "f000001": 0, "f000014": 2}  # the bare plate is background-only
    assert bool(layer_index.set_index("frame_id").background_only["f000001"])
    for rgba in instances.values():
        assert rgba.shape[2] == 4 and rgba[..., 3].max() == 255 and rgba[..., 3].min() == 0
    hole = holes["f000000"]
    assert hole.sum() > masks["f000000_0"].sum()  # grown by the margin
    assert (layers["f000000"][hole] == 0).all() and (layers["f000000"][~hole] == decoded[0][~hole]).all()
    metrics, truth = score_segmentation(masks, inst_index, layer_index, tiny_truth)
    # frame 1 was swapped for its bare plate, so its true marco counts as missed
    assert metrics["instances_true"] == 4 and metrics["detection_recall"] == 0.75
    assert set(truth.identity) == {"marco", "nina"}


def test_an_instance_below_the_size_limit_is_dropped_with_its_reason(tiny_film):
    with av.open(str(tiny_film)) as c:
        frame = next(iter(c.decode(video=0))).to_ndarray(format="rgb24")
    index = pd.DataFrame({"frame_id": ["f000000"], "frame": [0], "shot": [0], "kept": [True]})
    out = segment_layers({"f000000": frame}, index, replace(LAYERS, min_instance_pixels=10**6), BACKEND)
    instances, holes, inst_index, layer_index = (out[k] for k in ("instances", "holes", "instance_index",
                                                                  "layer_index"))
    assert instances == {} and not holes["f000000"].any()
    assert inst_index.reason.iloc[0].startswith("too small") and not inst_index.kept.iloc[0]
    assert bool(layer_index.background_only.iloc[0])


def test_no_ground_truth_means_no_scores():
    metrics, truth = score_segmentation({}, pd.DataFrame(), pd.DataFrame(), None)
    assert metrics == {"ground_truth": False} and truth.empty


def test_framing_tags_follow_the_face_share_of_the_instance():
    from animation_lora.faces.crops import framing

    faces = pd.DataFrame({"instance_id": ["a", "b", "c", "d"], "has_face": [True, True, True, False],
                          "fy0": [0, 0, 0, 0], "fy1": [60, 30, 10, 50]})
    boxes = pd.DataFrame({"instance_id": ["a", "b", "c", "d"], "y0": [0] * 4, "y1": [100] * 4})
    assert framing(faces, boxes) == {"a": "close-up", "b": "upper body", "c": "full body"}


def test_a_pointed_character_the_person_models_miss_is_an_instance_in_every_frame():
    """A striped orange 'robot' (no person model knows it) moving over a grey tiled floor: a box on frame 0
    teaches its look; segment_layers finds it in every frame of the shot as a pointed instance (score 1)."""
    import numpy as np

    from animation_lora.metrics import iou

    rng = np.random.default_rng(0)
    floor = (90 + 40 * ((np.indices((180, 320)).sum(0) // 20) % 2))[..., None].repeat(3, 2).astype(np.uint8)
    frames, truth = {}, {}
    for k in range(4):
        image = np.clip(floor + rng.integers(-8, 8, floor.shape), 0, 255).astype(np.uint8)
        mask = np.zeros((180, 320), bool)
        mask[60:150, 40 + 30 * k:120 + 30 * k] = True
        image[mask] = (230, 120, 30)
        image[mask & (np.indices((180, 320))[0] % 12 < 4)] = (250, 240, 200)  # its stripes
        frames[f"f{k:06d}"], truth[f"f{k:06d}"] = image, mask
    index = pd.DataFrame({"frame_id": list(frames), "frame": range(4), "shot": 0, "kept": True})
    pointed = {"characters": [{"name": "robot", "frame": 0, "box": [34, 54, 126, 156]}]}
    out = segment_layers(frames, index, LAYERS, BACKEND, None, pointed)
    rows = out["instance_index"]
    assert len(rows) == 4 and set(rows.score) == {1.0} and rows.kept.all()
    for row in rows.itertuples():
        assert iou(out["masks"][row.instance_id], truth[row.frame_id]) > 0.9
    assert not segment_layers(frames, index, LAYERS, BACKEND)["instance_index"].kept.any()  # unpointed: none
