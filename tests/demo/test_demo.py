"""The demo film against its own ground truth: determinism, consistency, coverage, codec round-trip,
and that MediaPipe's pretrained models (the embedded backends) find the characters."""

import av
import cv2
import numpy as np
import pytest

from animation_lora.demo import ACTIONS, EXPRESSIONS, LOCATIONS, PEOPLE, make_film_spec, render_demo_film
from animation_lora.demo.backgrounds import paint_location
from animation_lora.demo.render import render_frame


def decode(film):
    with av.open(str(film)) as c:
        stream = c.streams.video[0]
        rate = float(stream.average_rate)
        return [f.to_ndarray(format="rgb24") for f in c.decode(stream)], rate


def test_same_seed_same_bytes_other_seed_differs(tiny_truth):
    spec = make_film_spec("tiny", seed=0)
    plates = {loc: paint_location(loc, spec.width, spec.height, 0) for loc in LOCATIONS}
    shot = spec.shots[2]
    _, labels, records, _ = render_frame(spec, shot, 3, plates)
    frame = sum(s.n_frames for s in spec.shots[:2]) + 3
    assert labels.tobytes() == tiny_truth.labels[frame].tobytes()
    stored = tiny_truth.instances[tiny_truth.instances.frame == frame].sort_values("instance")
    assert [r["joints"] for r in records] == [list(j) for j in stored.joints]
    other = make_film_spec("tiny", seed=1)
    assert other.shots != spec.shots


def test_video_round_trip(tiny_film, tiny_truth):
    frames, fps = decode(tiny_film)
    assert len(frames) == len(tiny_truth.frames) == 36
    assert fps == pytest.approx(12)
    assert frames[0].shape == (180, 320, 3)


def test_masks_and_plates_are_consistent(tiny_film, tiny_truth):
    """Off the characters the film is the clean plate up to codec error; on them it is not. Compared in
    luma: yuv420p halves the chroma resolution, which smears colour edges of the facades."""
    frames, _ = decode(tiny_film)
    luma = lambda rgb: cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.int16)  # noqa: E731
    for i, frame in enumerate(frames):
        diff = np.abs(luma(frame) - luma(tiny_truth.plate(i)))
        fg = tiny_truth.labels[i] > 0
        near = cv2.dilate(fg.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # the anti-aliased rim
        assert diff[~near].mean() <= 2.5 and np.percentile(diff[~near], 99) <= 10, f"frame {i} off the plate"
        assert (diff[fg] > 20).mean() > 0.6, f"frame {i}: characters should differ from the plate"


def test_coverage_of_locations_actions_expressions_and_cast(tiny_truth):
    inst, frames = tiny_truth.instances, tiny_truth.frames
    assert set(frames.location) == set(LOCATIONS)
    assert set(inst.action) == set(ACTIONS)
    assert {"happy", "surprised", "neutral"} <= set(inst.expression) <= set(EXPRESSIONS)
    assert set(inst.character) == {c.name for c in PEOPLE}  # the default films cast people only
    assert (inst.groupby("frame").size() == 2).any(), "some shots have two characters"
    # hard cuts: the location or camera jumps between shots
    assert frames.shot.nunique() == 6 and frames.first_of_shot.sum() == 6


def test_identity_is_stable_and_joints_lie_on_the_character(tiny_truth):
    inst = tiny_truth.instances
    for row in inst.itertuples():
        mask = tiny_truth.mask(row.frame, row.character)
        assert mask.sum() == row.area > 0
        joints = np.asarray(row.joints).reshape(17, 3)
        body = joints[5:]  # shoulders .. ankles
        ys, xs = body[:, 1].astype(int).clip(0, 179), body[:, 0].astype(int).clip(0, 319)
        near = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        assert near[ys, xs].mean() >= 0.9
        x0, y0, x1, y1 = row.face_box
        assert row.box[0] - 2 <= x0 < x1 <= row.box[2] + 2 and row.box[1] - 2 <= y0 < y1 <= row.box[3] + 2


def test_never_rendered_over_an_existing_film(tiny_film):
    with pytest.raises(FileExistsError):
        render_demo_film(tiny_film.parent, preset="tiny")


def test_embedded_mediapipe_models_find_the_characters(tiny_film, tiny_truth):
    """Humanoid enough: MediaPipe pose finds a person in most frames, face detection finds a face on
    every character crop, and selfie segmentation overlaps the true masks."""
    import mediapipe as mp

    frames, _ = decode(tiny_film)
    with (
        mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose,
        mp.solutions.face_detection.FaceDetection(model_selection=0) as faces,
        mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg,
    ):
        found = [pose.process(f).pose_landmarks is not None for f in frames]
        crops = []
        for row in tiny_truth.instances.itertuples():
            x0, y0, x1, y1 = row.box
            m = (x1 - x0) // 6
            crops.append(
                np.ascontiguousarray(frames[row.frame][max(0, y0 - m) : y1 + m, max(0, x0 - m) : x1 + m])
            )
        face_found = [faces.process(c).detections is not None for c in crops]
        ious = []
        for i, f in enumerate(frames):
            s, g = seg.process(f).segmentation_mask > 0.5, tiny_truth.labels[i] > 0
            ious.append((s & g).sum() / (s | g).sum())
    assert np.mean(found) >= 0.8
    assert np.mean(face_found) >= 0.9
    assert np.mean(ious) >= 0.6
