"""The concept probes: held-out accuracy on the tiny demo film's ground truth, never trained on generated
images, the judge of composition scores on pictures whose labels are known, and the studio path (labelled
reference crops, or "not available")."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from animation_lora.backends.embedding import make_embedder
from animation_lora.composition.parameters import Composition
from animation_lora.composition.scoring import score_table
from animation_lora.datasets import Film, ProbeFileDataset
from animation_lora.params import parse
from animation_lora.pipelines.composition import nodes
from animation_lora.pipelines.composition.pipeline import create_pipeline
from animation_lora.probes import ProbeParams, demo_examples, reference_examples, train_probes, world_examples
from animation_lora.probes.scoring import (
    ProbeScorer,
    chance_reference,
    concept_targets,
    named_label,
)
from tests.conftest import PROJECT_ROOT

SIZE = (64, 64)
CONF = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_composition.yml").read_text())
COMPOSITION = parse(Composition, CONF["composition"], "composition")  # as the parameters hook hands it
EMBEDDING = CONF["probes"]["embedding"]  # MobileNetV2 at 128 px


@pytest.fixture(scope="module")
def embed():
    return make_embedder(EMBEDDING)


@pytest.fixture(scope="module")
def demo(tiny_film, tiny_truth, embed):
    """Pictures of the tiny film (every frame) and the probes trained on its first 3/4 of each shot."""
    params = ProbeParams(frame_stride=1)
    frames = ((f.index, f.image) for f in Film(tiny_film, 12).frames())
    examples = demo_examples(tiny_truth, frames, params, SIZE)
    return examples, train_probes(examples, embed, EMBEDDING, SIZE, params)


def test_probes_reach_their_bars_on_held_out_frames_of_the_demo_film(demo):
    _, probes = demo
    accuracy = {c: m["held_out_accuracy"] for c, m in probes.metrics.items()}
    # measured on the tiny film (held out: the last quarter of each shot): character 1.0 (40 pictures),
    # location 1.0 (34), action 0.75 (12 of 16), expression 0.958 (24); on the default film (stride 2):
    # 0.975, 1.0, 0.906, 0.958. Action's floor leaves one picture of margin (0.6875 = 11 of 16).
    assert accuracy["character"] >= 0.9 and accuracy["location"] >= 0.9, accuracy
    assert accuracy["action"] >= 0.68 and accuracy["expression"] >= 0.8, accuracy
    assert probes.chance() == {"character": 0.5, "location": 1 / 3, "action": 0.25, "expression": 0.25}
    assert all(m["held_out"] > 0 and m["train"] > m["held_out"] for m in probes.metrics.values())


def test_the_world_teaches_other_so_nobody_in_particular_is_not_the_films_character(tiny_film, tiny_truth,
                                                                                   embed):
    """With the pretraining world as `other`, pictures of other characters and places (the base's subject
    matter) are not forced onto the film's labels, and the film's own held-out pictures still are theirs."""
    from animation_lora.demo.world import world_sample

    params = ProbeParams(frame_stride=1, world_others=200)
    frames = ((f.index, f.image) for f in Film(tiny_film, 12).frames())
    examples = demo_examples(tiny_truth, frames, params, SIZE) + world_examples(params, SIZE)
    probes = train_probes(examples, embed, EMBEDDING, SIZE, params)
    assert probes.probes["character"].classes == ["marco", "nina", "other"]
    assert probes.probes["location"].classes == ["beach", "other", "room", "seaside_town"]
    # the world's actions are the film's four: its plates, close-ups and upper bodies show none of them
    assert probes.probes["action"].classes == ["jumping", "other", "running", "standing", "walking"]
    fresh = [world_sample(7, i, 64) for i in range(60)]  # another seed: pictures no probe saw
    said = probes.predict([s.image for s in fresh], embed)
    people = [p["character"][0] for s, p in zip(fresh, said, strict=True) if s.character is not None]
    places = [p["location"][0] for s, p in zip(fresh, said, strict=True) if s.framing != "close-up"]
    assert np.mean(np.array(people) == "other") >= 0.8 and np.mean(np.array(places) == "other") >= 0.8
    accuracy = {c: m["held_out_accuracy"] for c, m in probes.metrics.items()}
    assert accuracy["character"] >= 0.9 and accuracy["location"] >= 0.9, accuracy


def test_the_probes_never_see_generated_images():
    pipeline = create_pipeline()
    trained = pipeline.to_outputs("concept_probes")
    assert [n.name for n in trained.nodes] == ["train_concept_probes_node"]
    assert trained.inputs() == {"film", "demo_ground_truth", "params:probes", "params:composition",
                                "params:embedding"}
    generated = {o for n in pipeline.nodes if n.name in ("generate_compositions_node", "tune_weights_node")
                 for o in n.outputs}
    assert not generated & (trained.inputs() | trained.all_outputs())


def _known_pictures(examples, probes, embed, n=4):
    """Held-out body crops the probes label correctly on every concept: pictures whose labels we know."""
    body = [e for e in examples if e.framing == "body" and e.held_out]
    said = probes.predict([e.image for e in body], embed)
    right = [e for e, s in zip(body, said) if all(s[c][0] == e.labels[c] for c in e.labels)]
    assert len(right) >= n
    return right[:n]


def test_composition_recall_and_all_present_on_pictures_with_known_labels(demo, embed):
    examples, probes = demo
    pictures = _known_pictures(examples, probes, embed)
    images = {f"i{k}": e.image for k, e in enumerate(pictures)}
    table = pd.DataFrame([dict(image_id=f"i{k}", prompt="p", strategy="merge", weights="{}", seconds=0.1,
                               requested=json.dumps({"character": 1.0, "background": 0.8, "pose": 0.0}))
                          for k in range(len(pictures))])

    def targets(labels):
        return {slot: {"concept": c, "label": labels[c]} for slot, c in
                (("character", "character"), ("background", "location"), ("pose", "action"))}

    # each picture asks for its own labels: every requested slot present; pose is not requested
    per_image = [ProbeScorer(probes, embed, targets(e.labels))(e.image, json.loads(table.requested[0]))
                 for e in pictures]
    assert all(s["character_present"] == 1.0 and s["background_present"] == 1.0 for s in per_image)
    assert all(s["all_present"] == 1.0 and s["composition_score"] == 1.0 for s in per_image)
    assert all(np.isnan(s["pose_present"]) for s in per_image)

    # one request for all: the other character is asked for -> its recall 0, the background's still 1
    first = pictures[0].labels
    same_place = [k for k, e in enumerate(pictures) if e.labels["location"] == first["location"]]
    other = next(c for c in probes.probes["character"].classes if c != first["character"])
    wrong = targets({**first, "character": other})
    scores, metrics = score_table(ProbeScorer(probes, embed, wrong),
                                  {f"i{k}": images[f"i{k}"] for k in same_place},
                                  table[table.image_id.isin([f"i{k}" for k in same_place])])
    merge = metrics["per_strategy"]["merge"]
    truly = np.mean([pictures[k].labels["character"] == other for k in same_place])
    assert merge["character_present"] == pytest.approx(truly) and merge["background_present"] == 1.0
    assert merge["all_present"] == pytest.approx(truly) and merge["pose_present"] is None
    assert chance_reference(probes, wrong)["all_present"] == pytest.approx(0.5 / 3 / 4)


def test_a_slot_asks_for_the_label_its_trigger_names_else_the_majority_on_its_dataset(demo, embed):
    examples, probes = demo
    actions = probes.probes["action"].classes
    assert named_label("running pose, full body, facing left", actions) == "running"
    assert named_label("character_0", probes.probes["character"].classes) is None
    marco = [e.image for e in examples if e.framing == "cutout" and e.labels["character"] == "marco"][:8]
    targets = concept_targets(probes, {"character": marco, "pose": marco, "twin": marco},
                              {"character": "character_0", "pose": "running pose"}, embed)
    assert set(targets) == {"character", "pose"}  # an extra LoRA has no probe
    assert targets["character"]["label"] == "marco" and targets["character"]["named_by"] == "majority"
    assert targets["character"]["agreement"] >= 0.75
    pose = targets["pose"]
    assert (pose["concept"], pose["label"], pose["named_by"]) == ("action", "running", "trigger")


def test_probes_round_trip_through_their_safetensors_dataset(demo, embed, tmp_path):
    examples, probes = demo
    dataset = ProbeFileDataset(str(tmp_path / "probes.safetensors"))
    dataset.save(probes)
    loaded = dataset.load()
    images = [e.image for e in examples[:6]]
    assert loaded.predict(images, embed) == probes.predict(images, embed)
    assert loaded.metrics == json.loads(json.dumps(probes.metrics)) and loaded.size == SIZE


def _square(colour, rng):
    return np.clip(np.array(colour) + rng.normal(0, 20, (40, 40, 3)), 0, 255).astype(np.uint8)


def test_a_studio_film_uses_labelled_reference_crops(tmp_path, embed):
    rng = np.random.default_rng(0)
    colours = {("character", "roxanne"): (200, 40, 40), ("character", "megamind"): (40, 40, 200),
               ("background", "restaurant"): (40, 160, 40), ("background", "street"): (200, 200, 40)}
    for (concept, label), colour in colours.items():
        (tmp_path / concept / label).mkdir(parents=True)
        for k in range(8):
            Image.fromarray(_square(colour, rng)).save(tmp_path / concept / label / f"{k}.png")
    examples = reference_examples(tmp_path, ProbeParams(), SIZE)
    assert len(examples) == 32 and sum(e.held_out for e in examples) == 8  # 2 of 8 per label
    assert {tuple(e.labels.items())[0] for e in examples} == {("character", "roxanne"),
        ("character", "megamind"), ("location", "restaurant"), ("location", "street")}
    probes, metrics = nodes.train_concept_probes(
        None, None, ProbeParams(reference_crops=str(tmp_path)), COMPOSITION, EMBEDDING)
    assert metrics["probes"]["character"]["held_out_accuracy"] == 1.0
    assert metrics["probes"]["location"]["held_out_accuracy"] == 1.0
    assert metrics["probes"]["action"].startswith("not available")  # no action folder
    assert set(probes.probes) == {"character", "location"} and probes.size == SIZE


@pytest.mark.parametrize("folder", [None, "missing"])
def test_without_reference_crops_a_studio_film_says_no_probe_was_available(tmp_path, folder):
    where = str(tmp_path / folder) if folder else None
    probes, metrics = nodes.train_concept_probes(None, None, ProbeParams(reference_crops=where), COMPOSITION,
                                                 EMBEDDING)
    assert not probes.available and metrics == {"probes": probes.reason}
    assert probes.reason.startswith("not available: this film has no demo ground truth")
    assert nodes.probe_targets(probes, None, COMPOSITION) == {}
    judge = nodes._judge(probes, {}, metrics)
    assert judge == {"judge": "centroids", "probes": probes.reason}


def test_the_report_says_no_probe_was_available_instead_of_zeros():
    from animation_lora.composition.lora_set import LoraSet
    from animation_lora.composition.report import render_report
    from animation_lora.lora_format import LoraFile

    reason = "not available: this film has no demo ground truth and `probes.reference_crops` is null"
    scores = pd.DataFrame([dict(image_id="a", prompt="p", strategy="merge", seed=0, weights="{}", seconds=0.1,
                                composition_score=1.0, character_present=True)])
    metrics = {"per_strategy": {"merge": {"composition_score": 1.0, "character_present": 1.0}},
               "judge": "centroids", "probes": reason}
    tuned = {"prompt": "p", "default_weights": {}, "best_weights": {}, "default_score": 0.0,
             "best_score": 0.0, "trials": 1}
    one = {"character": "c"}
    lora_set = LoraSet({"character": LoraFile({}, {})}, one, {"character": 1.0}, one)
    html = render_report({"a": np.zeros((8, 8, 3), np.uint8)}, scores, metrics, tuned, lora_set)
    assert f"Probes: {reason.replace('`', '&#96;')}" in html or f"Probes: {reason}" in html
    assert "held-out accuracy" not in html and "pose present" not in html


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_every_shot_holds_a_frame_out_whatever_the_stride(tiny_truth, stride):
    width, height = tiny_truth.size
    frames = ((i, np.zeros((height, width, 3), np.uint8)) for i in tiny_truth.frames.index)
    examples = demo_examples(tiny_truth, frames, ProbeParams(frame_stride=stride), SIZE)
    crops = [e for e in examples if e.framing == "frame"]  # three per frame used
    shots = tiny_truth.frames.shot.nunique()  # 6 shots of 6 frames: 6, 3 or 2 frames used, the last held out
    assert len(crops) == 3 * shots * len(range(0, 6, stride))
    assert sum(e.held_out for e in crops) == 3 * shots


def test_every_probe_says_no_to_pictures_that_do_not_show_its_concept(tiny_film, tiny_truth, embed):
    """The judge can say no (issue 24, part 4). On pictures that show none of the film's labels of a concept —
    pictures of the pretraining world from a seed no probe saw (other characters, other places; for action
    and expression: plates, and close-ups and upper bodies for action), noise and blobs, and what the demo
    base draws for world captions — each probe names one of the film's labels at most 10 % of the time, and
    the film's held-out pictures are still theirs."""
    import torch

    from animation_lora.backends.diffusion import make_base_model
    from animation_lora.demo.world import world_sample
    from animation_lora.probes.pictures import noise_examples, noise_picture

    params = ProbeParams(frame_stride=1, world_others=200, noise_others=100)
    frames = ((f.index, f.image) for f in Film(tiny_film, 12).frames())
    examples = demo_examples(tiny_truth, frames, params, SIZE)
    probes = train_probes(examples + world_examples(params, SIZE) + noise_examples(params, SIZE), embed,
                          EMBEDDING, SIZE, params)
    fresh = [world_sample(7, i, 64) for i in range(80)]
    rng = np.random.default_rng(99)
    noise = [noise_picture(rng, SIZE) for _ in range(40)]
    base = make_base_model({"backend": "demo", "demo": {"device": "cpu"}})
    pipe = base.pipeline()
    pipe.set_progress_bar_config(disable=True)

    def drawn(samples):  # what the base draws for the world's captions (it knows none of the film's labels)
        return [(pipe(s.caption, num_inference_steps=10, height=64, width=64, output_type="np",
                      generator=torch.Generator().manual_seed(k)).images[0] * 255).astype(np.uint8)
                for k, s in enumerate(samples)]

    plates = [s for s in fresh if s.framing == "background"]
    no_action = [s for s in fresh if s.framing in ("upper body", "close-up", "background")]
    drawn_any, drawn_plates = drawn(fresh[:12]), drawn(plates[:6])
    shows_none = {
        "character": [s.image for s in fresh] + noise + drawn_any,
        "location": [s.image for s in fresh if s.framing != "close-up"] + noise + drawn_any,
        "action": [s.image for s in no_action] + noise + drawn_plates,
        "expression": [s.image for s in plates] + noise + drawn_plates,
    }
    rates = {}
    for concept, pictures in shows_none.items():
        said = [p[concept][0] for p in probes.predict(pictures, embed)]
        rates[concept] = float(np.mean([label != "other" for label in said]))
    assert all(rate <= 0.1 for rate in rates.values()), rates
    accuracy = {c: m["held_out_accuracy"] for c, m in probes.metrics.items()}
    assert accuracy["character"] >= 0.9 and accuracy["location"] >= 0.9, accuracy
    assert accuracy["action"] >= 0.68 and accuracy["expression"] >= 0.8, accuracy
