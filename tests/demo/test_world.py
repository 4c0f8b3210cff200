"""The pretraining world (issue 14): deterministic from its seed, the film's cast and locations held out,
captions in the LoRA datasets' words that say what was drawn."""

import hashlib
from pathlib import Path

import numpy as np
import yaml

from animation_lora.backends.captioning import join_caption
from animation_lora.demo import LOCATIONS, PEOPLE, make_film_spec
from animation_lora.demo.backgrounds import paint_location
from animation_lora.demo.render import render_frame
from animation_lora.demo.skeleton import DEMO_PROPORTIONS
from animation_lora.demo.world import (
    CLOTHES,
    HAIR,
    MIN_CHARACTER_DISTANCE,
    MIN_PLACE_DISTANCE,
    SKIN,
    Place,
    character_distance,
    paint_place,
    place_distance,
    sample_character,
    sample_place,
    world,
    world_sample,
)

CONF = Path(__file__).parents[2] / "conf" / "base"


def test_same_seed_same_samples_other_seed_differs():
    again = world(seed=3, size=64, start=2)
    for i in (2, 3, 4):
        a, b = world_sample(3, i), next(again)
        assert a.image.shape == (64, 64, 3) and a.image.dtype == np.uint8
        assert a.image.tobytes() == b.image.tobytes() and a.caption == b.caption
    others = [world_sample(4, i) for i in (2, 3, 4)]
    assert all(o.caption != world_sample(3, i).caption for o, i in zip(others, (2, 3, 4), strict=True))


def test_film_cast_and_locations_are_held_out():
    # the rule would catch the film's own characters and locations (distance 0)...
    assert all(character_distance(c, DEMO_PROPORTIONS, c, DEMO_PROPORTIONS) == 0 for c in PEOPLE)
    assert all(place_distance(Place(loc, 0, 0.0, 1.0, 1.0)) == 0 for loc in LOCATIONS)
    # ...and no sample comes near them
    rng = np.random.default_rng(0)
    characters = [sample_character(rng) for _ in range(1500)]
    nearest = min(character_distance(w.look, w.body, c, DEMO_PROPORTIONS) for w in characters for c in PEOPLE)
    assert nearest >= MIN_CHARACTER_DISTANCE
    places = [sample_place(rng) for _ in range(1500)]
    assert min(place_distance(p) for p in places) >= MIN_PLACE_DISTANCE
    assert {p.kind for p in places} == {*LOCATIONS, "park"}
    # in pixels: a variant of a film location never has the film's colours
    for place in [p for p in places if p.kind in LOCATIONS][:20]:
        untinted = Place(place.kind, place.layout, 0.0, 1.0, 1.0)
        diff = np.abs(paint_place(place, 64, 64).astype(int) - paint_place(untinted, 64, 64).astype(int))
        assert diff.mean() > 12, place


def test_captions_are_dataset_style_and_say_what_was_drawn():
    def conf(name, block):
        return yaml.safe_load((CONF / f"parameters_{name}.yml").read_text())[name][block]

    pose_trigger, face_trigger = conf("pose", "dataset"), conf("expression", "dataset")
    background = conf("background", "scene_dataset")
    framings = set()
    for i in range(48):
        s = world_sample(0, i)
        framings.add(s.framing)
        if s.framing == "background":  # the place alone, as the background datasets caption a plate
            assert s.character is None and s.caption == f"{s.place.words}, {background['caption_prefix']}"
            continue
        tags = s.caption.split(", ")
        assert tags[0] == "character" and s.caption == join_caption(tags[0], "", tags[1:], [])
        assert len(tags) == len(set(tags))
        assert s.framing in tags and s.facing in tags and s.place.words in tags
        assert face_trigger["trigger_template"].format(name=s.expression) in tags
        action = pose_trigger["trigger_template"].format(name=s.action)
        assert (action in tags) == (s.framing != "close-up")  # no legs in a close-up, no action word
        assert all(w in tags for w in s.character.words)
        # the colour words are the colours painted: each named colour is the nearest of its table
        look, words = s.character.look, s.character.words
        for value, word, table in ((look.hair, words[0], HAIR), (look.skin, words[1], SKIN),
                                   (look.shirt, words[2], CLOTHES), (look.trousers, words[3], CLOTHES)):
            nearest = min(table, key=lambda n, v=value: np.linalg.norm(np.subtract(table[n], v)))
            assert word.startswith(nearest + " "), (word, value)
        assert words[3].endswith("shorts" if look.hair_style == "short" else "trousers")
    assert framings == {"full body", "upper body", "close-up", "background"}


def test_demo_film_render_is_unchanged():
    """The tiny preset's first and last frame of every shot, as rendered before the world was added
    (skeleton proportions became a parameter): same pixels, labels and records."""
    digest = hashlib.sha256()
    spec = make_film_spec("tiny", 0)
    plates = {loc: paint_location(loc, spec.width, spec.height, 0) for loc in sorted(LOCATIONS)}
    for shot in spec.shots:
        for k in (0, shot.n_frames - 1):
            rgb, labels, records, _ = render_frame(spec, shot, k, plates)
            digest.update(rgb.tobytes() + labels.tobytes() + repr(records).encode())
    assert digest.hexdigest() == "6f7e6ebfca02bba8ad45d3904c74a806d39c0791654b41c14549860f4d4777a5"
