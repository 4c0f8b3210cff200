"""Tracks through a shot, and detections that are scenery, on a synthetic static-camera shot: a character
walks past a static prop (a rock) that the segmenter picks up in one frame only."""

import numpy as np
import pytest

from animation_lora.layers.tracks import link_tracks, static_strays, trim_scenery
from animation_lora.metrics import iou

H, W = 60, 100


def disc(cx, cy, r):
    yy, xx = np.mgrid[:H, :W]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2


def shot(n=6, character_speed=6):
    """Frames of a static camera: a textured wall, a grey rock at x=80, a red character moving right."""
    rng = np.random.default_rng(0)
    wall = rng.integers(40, 80, (H, W, 3)).astype(np.uint8)
    rock = disc(80, 45, 6)
    wall[rock] = 128
    frames, characters = [], []
    for k in range(n):
        im = wall.copy()
        c = disc(15 + character_speed * k, 30, 8)
        im[c] = (220, 40, 40)
        frames.append(im)
        characters.append(c)
    return frames, characters, rock


def test_a_moving_character_is_one_track_and_a_one_frame_static_prop_is_scenery():
    frames, characters, rock = shot()
    masks = [[c] for c in characters]
    masks[3] = [characters[3], rock]  # the segmenter mistakes the rock for a character once
    tracks = link_tracks(masks)
    assert len({t[0] for t in tracks}) == 1  # the character: one track through the shot
    assert tracks[3][1] not in {t[0] for t in tracks}
    assert static_strays(frames, masks, tracks) == {(3, 1)}


def test_a_character_standing_still_is_kept():
    frames, characters, rock = shot(character_speed=0)
    masks = [[c] for c in characters]
    tracks = link_tracks(masks)
    assert len({t[0] for t in tracks}) == 1 and static_strays(frames, masks, tracks) == set()


def test_a_character_found_once_that_moves_is_kept():
    frames, characters, _ = shot()
    masks = [[] for _ in characters]
    masks[2] = [characters[2]]  # found in one frame only, but its pixels change: not scenery
    assert static_strays(frames, masks, link_tracks(masks)) == set()


def test_short_shots_drop_nothing():
    frames, characters, rock = shot(n=2)
    masks = [[characters[0], rock], [characters[1]]]
    assert static_strays(frames, masks, link_tracks(masks)) == set()


@pytest.mark.parametrize("speed", [6, 12])  # at 12 px/frame the character ends up touching the rock
def test_a_static_prop_stuck_to_a_moving_character_is_cut_from_its_mask(speed):
    frames, characters, rock = shot(character_speed=speed)
    masks = [[c | rock] for c in characters]  # the segmenter takes the rock with the character every time
    trimmed = trim_scenery(frames, masks, link_tracks(masks))
    for c, (m,) in zip(characters, trimmed):
        assert not (m & rock & ~c).any() and iou(m, c) >= 0.95


def test_a_character_standing_still_keeps_its_whole_mask():
    frames, characters, rock = shot(character_speed=0)
    masks = [[c] for c in characters]
    trimmed = trim_scenery(frames, masks, link_tracks(masks))
    assert all((t[0] == m[0]).all() for t, m in zip(trimmed, masks))
