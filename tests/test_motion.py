"""Class-agnostic proposals (`layers.motion`, issue 21): on a synthetic shot with a known camera pan, a
moving square is found where it is and a still one (scenery) never is."""

import numpy as np

from animation_lora.layers.motion import MotionParams, add_moving, moving_masks


def panned_shot(n: int = 12, pan: int = 3):
    rng = np.random.default_rng(0)
    world = rng.integers(60, 200, (40, 140, 3)).repeat(4, 0).repeat(4, 1).astype(np.uint8)  # 160 x 560
    world[100:130, 300:330] = (90, 90, 90)  # a rock: scenery
    frames, truth = [], []
    for k in range(n):
        x = 20 + 12 * k  # the character walks right in the frame while the camera pans right
        frame = world[:, pan * k : pan * k + 240].copy()
        frame[60:100, x : x + 30] = (230, 40, 40)
        mask = np.zeros(frame.shape[:2], bool)
        mask[60:100, x : x + 30] = True
        frames.append(frame)
        truth.append(mask)
    return frames, truth


def test_a_moving_character_is_found_under_a_panning_camera_and_scenery_is_not():
    frames, truth = panned_shot()
    found = moving_masks(frames, MotionParams(), min_area=100)
    ious = [(f & t).sum() / (f | t).sum() for f, t in zip(found, truth)]
    assert min(ious) > 0.85, ious
    rock = [np.zeros((160, 240), bool) for _ in frames]
    for k, r in enumerate(rock):
        r[100:130, max(0, 300 - 3 * k) : max(0, 330 - 3 * k)] = True
    assert all((f & r).sum() == 0 for f, r in zip(found, rock))


def test_a_short_shot_proposes_nothing():
    frames, _ = panned_shot(n=3)
    assert not any(m.any() for m in moving_masks(frames, MotionParams(min_frames=4), 100))


def test_the_person_model_wins_its_pixels_and_a_separate_mover_is_added():
    person = np.zeros((50, 100), bool)
    person[10:40, 10:30] = True
    moving = np.zeros_like(person)
    moving[12:38, 12:32] = True  # the person, a little off
    moving[10:40, 60:90] = True  # an animal
    out = add_moving([person], moving, min_area=50)
    assert len(out) == 2 and out[0] is person
    assert out[1][10:40, 60:90].all() and out[1].sum() == 30 * 30
