"""A static camera, a character walking past a rock on the floor, through the real embedded segmenter
(MediaPipe): the segmenter takes the rock with the character whenever they touch; the shot's motion takes it
out again (the rock never changes while the character moves), and the character keeps its own pixels."""

from dataclasses import replace

import cv2
import numpy as np
import pandas as pd

from animation_lora.demo.backgrounds import paint_location
from animation_lora.demo.character import paint_character
from animation_lora.demo.script import CAST
from animation_lora.demo.skeleton import build_skeleton, pose_for
from animation_lora.ids import frame_id
from animation_lora.layers.split import LayersParams
from animation_lora.metrics import iou
from animation_lora.pipelines.preprocessing.layer_nodes import segment_layers

W, H = 384, 216
LAYERS = LayersParams(min_instance_pixels=400, crop_margin=0.08, hole_margin=3)
SEGMENTER = {"backend": "mediapipe", "mediapipe": {}}


def walk_past_a_rock(frames: int = 8):
    """(frames, true character masks, rock mask): the demo's first character walks right across a room,
    its feet passing over a grey rock in the second half of the shot."""
    plate = paint_location("room", W, H, 0)[:, :W].astype(np.float32)
    with_rock = plate.copy()
    cv2.ellipse(with_rock, (200, 190), (26, 16), 0, 0, 360, (110, 100, 95), -1)
    rock = np.abs(with_rock - plate).sum(-1) > 0
    images, characters = [], []
    for k in range(frames):
        skeleton = build_skeleton(pose_for("walking", k / 12, 0.0, 1), 120 + 14 * k, 0.9 * H, 0.6 * H)
        (x0, y0, x1, y1), rgb, alpha = paint_character(CAST[0], skeleton, "neutral", 1, W, H)
        frame = with_rock.copy()
        frame[y0:y1, x0:x1] = frame[y0:y1, x0:x1] * (1 - alpha[..., None]) + rgb * alpha[..., None]
        character = np.zeros((H, W), bool)
        character[y0:y1, x0:x1] = alpha >= 0.5
        images.append(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
        characters.append(character)
    return images, characters, rock


def character_masks(images, layers):
    frames = {frame_id(i): im for i, im in enumerate(images)}
    index = pd.DataFrame({"frame_id": list(frames), "frame": range(len(frames)), "shot": 0, "kept": True})
    out = segment_layers(frames, index, layers, SEGMENTER)
    masks, instance_index = out["masks"], out["instance_index"]
    kept = instance_index[instance_index.kept]
    return [[masks[i] for i in kept[kept.frame_id == f].instance_id] for f in frames]


def test_a_rock_the_segmenter_takes_with_a_walking_character_is_cut_from_its_mask():
    images, characters, rock = walk_past_a_rock()
    untrimmed = character_masks(images, replace(LAYERS, trim_static_scenery=False))
    trimmed = character_masks(images, LAYERS)

    def rock_share(found, truth):  # of the rock's pixels the character does not cover
        mask = max(found, key=lambda m: (m & truth).sum())
        return (mask & rock & ~truth).sum() / (rock & ~truth).sum()

    before = [rock_share(f, c) for f, c in zip(untrimmed, characters)]
    after = [rock_share(f, c) for f, c in zip(trimmed, characters)]
    assert max(before) >= 0.5, before  # the case is real: MediaPipe takes the rock (measured 0.72-0.87)
    # measured: at most 0.097 (a rim by the feet), mean 0.029; character IoU 0.91-0.96
    assert max(after) <= 0.1 and np.mean(after) <= 0.05, after
    for found, truth in zip(trimmed, characters):
        assert max(iou(m, truth) for m in found) >= 0.9
