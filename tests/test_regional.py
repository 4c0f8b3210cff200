"""The `regional` strategy (issue 24, part 3): each region's LoRAs and words act in it, checked against the
single-region images they must equal; the layout (box, skeleton, mask) and the prompt split."""

import numpy as np
import pytest
from PIL import Image

from animation_lora.composition import Composer, Request
from animation_lora.composition.parameters import Regional
from animation_lora.composition.regions import make_regions, region_mask, skeleton_box, without_phrases
from animation_lora.params import parse

from .test_composition import SETTINGS, TOL, base, loras  # noqa: F401  (fixtures)

TRIGGERS = {"character": "marco", "background": "scene_0"}
WEIGHTS = {"character": 1.0, "background": 0.8}


def layout(**values) -> Regional:
    return parse(Regional, {"inside": ["character"], "box": [0.25, 0.0, 0.75, 1.0], "feather": 0.0, **values},
                 "composition.regional")


def regional(base, loras, box, prompt="marco, full body, scene_0"):  # noqa: F811
    regions = make_regions(layout(box=box), list(loras), TRIGGERS, 64, 64)
    return Composer(base, loras, regions=regions).generate("regional", Request(prompt, WEIGHTS), SETTINGS, 0)


def test_the_prompt_splits_by_trigger_phrase():
    regions = make_regions(layout(), ["character", "background"], TRIGGERS, 64, 64)
    inside, outside = regions.prompts("marco, full body, running pose, scene_0", ["character", "background"])
    assert (inside, outside) == ("marco, full body, running pose", "full body, running pose, scene_0")
    assert without_phrases("town at dusk, beach house", ["town at dusk", "town"]) == "beach house"
    assert without_phrases("marcos and marco", ["marco"]) == "marcos and"


def test_a_region_covering_the_picture_is_its_loras_alone(base, loras):  # noqa: F811
    composer = Composer(base, loras)
    everywhere = regional(base, loras, [0, 0, 1, 1])
    inside_alone = composer.generate("solo", Request("marco, full body", {"character": 1.0}), SETTINGS, 0)
    assert np.abs(everywhere - inside_alone).max() < TOL
    nowhere = regional(base, loras, [0, 0, 0, 0])
    outside_alone = composer.generate("solo", Request("full body, scene_0", {"background": 0.8}), SETTINGS, 0)
    assert np.abs(nowhere - outside_alone).max() < TOL
    between = regional(base, loras, [0.25, 0, 0.75, 1])
    assert np.abs(between - inside_alone).max() > 1e-3 and np.abs(between - outside_alone).max() > 1e-3


def test_the_region_from_a_box_a_skeleton_and_a_mask(tmp_path):
    box = region_mask(layout(box=[0.25, 0.5, 0.75, 1.0]), 8, 8)
    assert box.sum() == 4 * 4 and box[4:, 2:6].all()
    skeleton = np.zeros((100, 100), np.uint8)
    skeleton[20:81, 40] = 255  # a spine
    skeleton[30, 30:51] = 255  # shoulders
    assert skeleton_box(skeleton > 0, 0.1) == pytest.approx([0.2, 0.1, 0.61, 0.91])
    Image.fromarray(skeleton).save(tmp_path / "pose.png")
    from_skeleton = region_mask(layout(skeleton=str(tmp_path / "pose.png"), pad=0.1), 100, 100)
    assert from_skeleton[10:91, 20:61].all() and from_skeleton.sum() == 81 * 41
    disc = np.zeros((64, 64), np.uint8)
    disc[np.hypot(*np.mgrid[:64, :64] - 32) < 16] = 255
    Image.fromarray(disc).save(tmp_path / "mask.png")
    from_mask = region_mask(layout(mask=str(tmp_path / "mask.png")), 32, 32)
    assert from_mask[16, 16] == 1 and from_mask[0, 0] == 0
    soft = region_mask(layout(feather=0.1), 64, 64)
    assert 0 < soft[32, 16] < 1  # the box's edge is feathered


def test_bad_layouts_name_the_parameter(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"composition\.regional\.mask.*no such file"):
        region_mask(layout(mask=str(tmp_path / "missing.png")), 64, 64)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "black.png")
    with pytest.raises(ValueError, match=r"composition\.regional\.skeleton.*shows no region"):
        region_mask(layout(skeleton=str(tmp_path / "black.png")), 64, 64)
    with pytest.raises(ValueError, match=r"composition\.regional\.inside.*\['pose'\]"):
        make_regions(layout(inside=["pose"]), ["character"], TRIGGERS, 64, 64)
    make_regions(layout(inside=["character", "pose"]), ["character"], TRIGGERS, 64, 64, absent=["pose"])
