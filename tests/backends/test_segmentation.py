"""Segmentation backends and the shared mask post-processing, on hand-made masks and the tiny film."""

import av
import numpy as np
import pytest

from animation_lora.backends.segmentation import (
    GrabCutSegmenter,
    MediaPipeSegmenter,
    Sam2Segmenter,
    make_segmenter,
)
from animation_lora.layers.masks import clean_mask, hole_mask, split_instances
from animation_lora.metrics import iou


def disc(shape, cx, cy, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def test_iou_on_hand_made_masks():
    a = np.zeros((10, 10), bool)
    a[:, :5] = True  # 50 px
    b = np.zeros((10, 10), bool)
    b[:, 2:7] = True  # 50 px, 30 shared, union 70
    assert iou(a, b) == pytest.approx(30 / 70)
    assert iou(a, a) == 1.0 and iou(a, ~a) == 0.0 and iou(a & ~a, a & ~a) == 0.0


def test_clean_mask_fills_holes_and_drops_specks():
    m = disc((60, 60), 30, 30, 15)
    m[28:32, 28:32] = False  # a hole
    m[2:4, 2:4] = True  # a speck of 4 px
    out = clean_mask(m, min_area=10)
    assert out[30, 30] and not out[2, 2]
    assert out.sum() == disc((60, 60), 30, 30, 15).sum()


def test_hole_mask_grows_the_union_by_the_margin():
    a, b = disc((50, 80), 20, 25, 8), disc((50, 80), 60, 25, 8)
    hole = hole_mask([a, b], (50, 80), margin=3)
    assert hole[25, 20 + 8 + 3] and not hole[25, 20 + 8 + 5]
    assert (hole & (a | b)).sum() == (a | b).sum()
    assert not hole_mask([], (50, 80), 3).any()


def test_touching_characters_are_split_between_their_faces():
    two = disc((60, 100), 35, 30, 18) | disc((60, 100), 65, 30, 18)  # one blob
    parts = split_instances(two, faces=[(35, 20), (65, 20)], min_area=10)
    assert len(parts) == 2
    assert all(p.sum() > 0.4 * two.sum() for p in parts)
    assert len(split_instances(two, faces=[], min_area=10)) == 1


def frames_of(film, indices):
    with av.open(str(film)) as c:
        return [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i in indices]


def test_mediapipe_backend_finds_the_characters(tiny_film, tiny_truth):
    """At the tiny film's 320x180 (the demo's 512x288 scores 0.87, see docs/metrics.md)."""
    seg = MediaPipeSegmenter()
    picks = (0, 8, 14, 20, 26, 32)  # one frame of each shot; shots 2 and 5 have both characters
    scores = []
    for index, frame in zip(picks, frames_of(tiny_film, set(picks))):
        found = seg.segment(frame)
        truth = [tiny_truth.labels[index] == v for v in np.unique(tiny_truth.labels[index]) if v]
        assert len(found) == len(truth), f"frame {index}"
        scores += [max(iou(t, f.mask) for f in found) for t in truth]
    assert min(scores) > 0.3 and np.mean(scores) > 0.7  # every character found; single frames vary at 256 px


def test_grabcut_baseline_sees_what_moves_and_misses_what_stands(tiny_film, tiny_truth):
    """The no-weights baseline subtracts the shot's median: shot 2 has marco running and nina standing."""
    shot = list(range(12, 18))
    found = GrabCutSegmenter().segment_shot(frames_of(tiny_film, set(shot)))

    def mean_iou(character):
        return np.mean(
            [
                max((iou(tiny_truth.mask(i, character), f.mask) for f in fr), default=0.0)
                for i, fr in zip(shot, found)
            ]
        )

    assert mean_iou("marco") > 0.3
    assert mean_iou("nina") < 0.1


def test_sam2_needs_its_checkpoint():
    with pytest.raises(FileNotFoundError, match=r"segmentation\.sam2\.checkpoint.*/no/sam2\.pt"):
        make_segmenter({"backend": "sam2", "sam2": {"checkpoint": "/no/sam2.pt"}})
    with pytest.raises(
        ValueError, match="Unknown segmentation backend .sam3.; choose one of mediapipe, grabcut, sam2"
    ):
        make_segmenter({"backend": "sam3"})


def test_sam2_video_propagation_code_path_with_random_weights(tiny_film):
    """A randomly initialised sam2.1_hiera_t from the package's bundled config: checks prompting on the first
    frame with characters and propagation to every frame of the shot, not mask quality."""
    from sam2.build_sam import build_sam2_video_predictor

    predictor = build_sam2_video_predictor("configs/sam2.1/sam2.1_hiera_t.yaml", ckpt_path=None, device="cpu")
    prompter = MediaPipeSegmenter(min_area=0.0)  # keep every propagated mask, however random
    frames = frames_of(tiny_film, {12, 13, 14})  # shot 2: two characters
    out = Sam2Segmenter(predictor, prompter).segment_shot(frames)
    assert len(out) == 3
    n_prompts = len(prompter.segment(frames[0]))
    assert n_prompts >= 1
    for instances in out:  # every prompted object comes back on every frame of the shot
        assert len(instances) == n_prompts
        assert all(i.mask.shape == (180, 320) and i.mask.dtype == bool for i in instances)


def test_studio_backends_name_their_missing_checkpoint():
    from animation_lora.backends.captioning import make_captioner
    from animation_lora.backends.embedding import make_embedder

    with pytest.raises(FileNotFoundError, match=r"embedding\.clip\.checkpoint.*'/no/clip\.bin'"):
        make_embedder({"backend": "clip", "clip": {"checkpoint": "/no/clip.bin"}})
    with pytest.raises(FileNotFoundError, match=r"captioning\.qwen2_vl\.model_path.*'/no/qwen'"):
        make_captioner({"backend": "qwen2_vl", "qwen2_vl": {"model_path": "/no/qwen"}})


def test_sam2_takes_pointed_characters_as_prompts_code_path_with_random_weights(tiny_film):
    """A pointed character (`layers.pointed`): SAM2's image predictor answers the box and clicks on the
    pointed frame, and its mask, handed in on a later frame of the shot, prompts the video predictor, which
    carries it to every frame, the earlier ones too (random weights: the code path, not mask quality)."""
    from sam2.build_sam import build_sam2_video_predictor

    from animation_lora.layers.pointed import Pointing

    predictor = build_sam2_video_predictor("configs/sam2.1/sam2.1_hiera_t.yaml", ckpt_path=None, device="cpu")
    segmenter = Sam2Segmenter(predictor, MediaPipeSegmenter(min_area=0.0))
    frames = frames_of(tiny_film, {12, 13, 14})
    (mask,) = segmenter.prompt_masks([(frames[1], Pointing(frame=13, box=[10, 20, 120, 170],
                                                           inside=[[60, 90]], outside=[[5, 5]]))])
    assert mask.shape == (180, 320) and mask.dtype == bool
    animal = np.zeros((180, 320), bool)
    animal[100:170, 200:300] = True
    n_people = len(segmenter.prompter.segment(frames[0]))
    out = segmenter.segment_shot(frames, pointed=[[], [animal], [animal]])
    assert [len(found) for found in out] == [n_people + 1] * 3  # the pointed one reaches frame 0 too
