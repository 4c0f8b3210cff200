"""The `creature` demo film (issue 21): bruno, a four-legged animal, with ground truth a person model knows
nothing about — his masks in the label maps, no human joints, no face; rocks in the plates he walks past."""

import numpy as np
import pytest

from animation_lora.demo.backgrounds import paint_location
from animation_lora.demo.ground_truth import GroundTruth
from animation_lora.demo.render import render_demo_film, with_rocks


@pytest.fixture(scope="module")
def creature_film(tmp_path_factory):
    folder = tmp_path_factory.mktemp("creature")
    render_demo_film(folder, preset="creature")
    return GroundTruth(folder / "ground_truth")


def test_bruno_is_in_the_ground_truth_as_a_character_without_joints_or_face(creature_film):
    gt = creature_film
    assert gt.meta["label_of"] == {"marco": 1, "nina": 2, "bruno": 3}
    bruno = gt.instances[gt.instances.character == "bruno"]
    assert len(bruno) == len(gt.frames)  # in every shot of this film
    assert all(np.asarray(j).reshape(17, 3)[:, 2].max() == 0 for j in bruno.joints)  # no visible human joint
    assert all(np.asarray(b).max() == 0 for b in bruno.face_box) and set(bruno.expression) == {"none"}
    for row in bruno.itertuples():  # his label covers what stays visible of him, a large animal
        assert row.area == (gt.labels[row.frame] == 3).sum() > 0.04 * gt.labels[row.frame].size
    spec = gt.meta["spec"]
    assert {s["camera_speed"] for s in spec["shots"]} == {0.0, 0.08} and spec["props"] is True


def test_the_rocks_are_scenery_in_the_plates(creature_film):
    gt = creature_film
    w, h = gt.size
    for location, plate in gt._plates.items():
        bare = paint_location(location, w, h, 0)
        assert np.array_equal(plate, with_rocks(bare, w, h))  # the truth's plate is the one filmed
        changed = (plate != bare).any(axis=2)
        assert changed.sum() > 0.01 * changed.size and not changed[: int(0.6 * h)].any()  # on the ground
