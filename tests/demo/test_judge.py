"""The world probe (issue 24, part 1): trained on world pictures only, it must see in a held-out world
picture what its caption names, and in a picture of nothing neither a place nor a figure — else it cannot
judge what the base draws."""

import numpy as np
import pytest

from animation_lora.demo.world import world_sample
from animation_lora.pretrain.judge import CAPTIONS_FROM, judge, world_labels, world_probe
from animation_lora.probes.pictures import noise_picture


def test_labels_say_what_the_caption_says():
    for i in range(200):
        sample = world_sample(0, CAPTIONS_FROM + i, 64)
        labels = world_labels(sample)
        assert labels["framing"] == sample.framing and sample.framing in sample.caption
        assert labels["place"] in sample.caption  # town, beach, room, park
        assert (labels["figure"] == "yes") == sample.caption.startswith("character")
        if "action" in labels:
            assert f"{labels['action']} pose" in sample.caption and sample.framing == "full body"


@pytest.fixture(scope="module")
def probes():
    return world_probe(pictures=600, noise=120)


@pytest.mark.slow
def test_sees_in_held_out_world_pictures_what_their_captions_name(probes):
    asked = [world_sample(0, CAPTIONS_FROM + i, 64) for i in range(64)]
    scores, _ = judge(probes, asked, [s.image for s in asked])
    assert scores["place"]["recognised"] >= 0.8
    assert scores["framing"]["recognised"] >= 0.9
    assert scores["figure_when_asked"] >= 0.95
    assert scores["action"]["recognised"] > 0.4  # chance 0.2; walking mid-stride looks like standing


@pytest.mark.slow
def test_sees_nothing_in_pictures_of_nothing(probes):
    asked = [world_sample(0, CAPTIONS_FROM + i, 64) for i in range(64)]
    rng = np.random.default_rng(7)
    scores, _ = judge(probes, asked, [noise_picture(rng, (64, 64)) for _ in asked])
    assert scores["figure_when_asked"] <= 0.1
    assert scores["place"]["recognised"] <= 0.1 and scores["framing"]["recognised"] <= 0.15
