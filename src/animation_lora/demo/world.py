"""The pretraining world (issue 14): an unlimited, seed-deterministic stream of captioned pictures drawn by
the demo film's renderer, of *other* characters (random hair, skin, clothing, body proportions) in *other*
places (random variants of town, beach, room, and a park), doing the four actions with the four
expressions, framed full body, upper body or as a face close-up; and one picture in ten, the place alone.

The film's two characters and three locations are held out by construction: a sampled character whose
palette and proportions lie within `MIN_CHARACTER_DISTANCE` of marco's or nina's is drawn again, and so is a
variant of town, beach or room within `MIN_PLACE_DISTANCE` of the film's colours (the base must not know the
film until a LoRA teaches it). Sample `i` of seed `s` depends on (s, i) only: a stream can restart anywhere.

Captions use the LoRA datasets' words, through their code: `join_caption`, the pose pipeline's `facing`,
`<action> pose`, `<expression> expression`, the character datasets' framing tags, the background datasets'
`background, no people`."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, fields

import cv2
import numpy as np

from .backgrounds import PAINTERS, _hshade, _vgradient
from .character import paint_character
from .script import ACTIONS, EXPRESSIONS, LOCATIONS, PEOPLE, Character
from .skeleton import DEMO_PROPORTIONS, Proportions, build_skeleton, pose_for

HAIR = {"black": (30, 28, 30), "brown": (100, 62, 35), "blond": (228, 196, 112), "red": (185, 62, 30),
        "grey": (160, 160, 165), "blue": (50, 90, 200), "pink": (235, 120, 170), "green": (60, 150, 80)}
SKIN = {"pale": (252, 226, 208), "fair": (236, 192, 156), "tan": (206, 150, 108), "brown": (150, 98, 66),
        "dark": (92, 58, 40)}
CLOTHES = {"red": (205, 40, 45), "orange": (238, 130, 35), "yellow": (242, 212, 55), "green": (60, 160, 70),
           "teal": (35, 150, 150), "blue": (40, 80, 205), "purple": (125, 60, 165), "pink": (240, 140, 180),
           "brown": (115, 72, 42), "black": (35, 35, 40), "white": (242, 242, 236), "grey": (128, 128, 134)}
PLACES = {"seaside_town": "town", "beach": "beach", "room": "room", "park": "park"}
FRAMINGS = ("full body", "upper body", "close-up", "background")  # the character datasets' tags; no one
BACKGROUND = "background, no people"  # the background datasets' caption prefix
MIN_CHARACTER_DISTANCE = 0.25  # mean RGB distance of the five colours / 255, plus the proportions' distance
MIN_PLACE_DISTANCE = 1.0  # hue / 60 degrees, saturation and brightness changes / 0.4, as one length


@dataclass(frozen=True)
class WorldCharacter:
    look: Character
    body: Proportions
    words: tuple[str, ...]  # what the caption says about it, from the sampled labels


@dataclass(frozen=True)
class Place:
    kind: str  # a painter of PAINTERS or `park`
    layout: int  # seed of the painter's own randomness (where the houses, windows, umbrella go)
    hue: float  # degrees of hue rotation
    saturation: float
    brightness: float

    @property
    def words(self) -> str:
        light = " at night" if self.brightness < 0.7 else " at dusk" if self.brightness < 0.85 else ""
        return PLACES[self.kind] + light


@dataclass(frozen=True)
class Sample:
    image: np.ndarray  # (size, size, 3) uint8
    caption: str
    character: WorldCharacter | None  # None: the place alone (framing `background`)
    place: Place
    action: str
    expression: str
    framing: str
    facing: str


def _colour(rng: np.random.Generator, table: dict[str, tuple[int, int, int]]) -> tuple[str, tuple]:
    name = str(rng.choice(list(table)))
    return name, tuple(int(c) for c in np.clip(np.add(table[name], rng.integers(-14, 15, 3)), 0, 255))


def _body(rng: np.random.Generator) -> tuple[Proportions, list[str]]:
    head, legs, torso, width = rng.uniform(0.85, 1.3), rng.uniform(0.8, 1.2), *rng.uniform(0.85, 1.2, 2)
    d = DEMO_PROPORTIONS
    height = 2 * d.head * head + d.neck + d.torso * torso + (d.thigh + d.shin) * legs
    body = Proportions(head=d.head * head, torso=d.torso * torso, shoulder=d.shoulder * width,
                       hip=d.hip * width, thigh=d.thigh * legs, shin=d.shin * legs,
                       total=d.total * height / (2 * d.head + d.neck + d.torso + d.thigh + d.shin))
    said = {"big head": head > 1.15, "long legs": legs > 1.1, "short legs": legs < 0.88,
            "broad shoulders": width > 1.12}
    return body, [word for word, true in said.items() if true]


def sample_character(rng: np.random.Generator) -> WorldCharacter:
    """A random character, never within MIN_CHARACTER_DISTANCE of the film's cast (drawn again if so)."""
    while True:
        (hair_name, hair), (skin_name, skin) = _colour(rng, HAIR), _colour(rng, SKIN)
        (shirt_name, shirt), (legs_name, legs), (shoes_name, shoes) = (_colour(rng, CLOTHES) for _ in "abc")
        stripe_name, stripes = _colour(rng, CLOTHES) if rng.random() < 0.3 else ("", None)
        style = str(rng.choice(("short", "bob")))  # the painter: short hair wears shorts, a bob trousers
        look = Character("world", skin, hair, shirt, stripes, legs, shoes, style)
        body, build = _body(rng)
        if min(character_distance(look, body, c, DEMO_PROPORTIONS) for c in PEOPLE) < MIN_CHARACTER_DISTANCE:
            continue
        shirt_words = f"{shirt_name} shirt with {stripe_name} stripes" if stripes else f"{shirt_name} shirt"
        words = (f"{hair_name} {'bob' if style == 'bob' else 'short'} hair", f"{skin_name} skin", shirt_words,
                 f"{legs_name} {'trousers' if style == 'bob' else 'shorts'}", f"{shoes_name} shoes", *build)
        return WorldCharacter(look, body, words)


def character_distance(a: Character, a_body: Proportions, b: Character, b_body: Proportions) -> float:
    """How far apart two characters look: the mean RGB distance of skin, hair, shirt, trousers and shoes
    (over 255; a plain and a striped shirt add 0.1) plus the mean relative difference of the bone lengths."""
    parts = ("skin", "hair", "shirt", "trousers", "shoes")
    colour = np.mean([np.linalg.norm(np.subtract(getattr(a, p), getattr(b, p))) for p in parts]) / 255
    if (a.stripes is None) != (b.stripes is None):
        colour += 0.1
    elif a.stripes is not None:
        colour += np.linalg.norm(np.subtract(a.stripes, b.stripes)) / 255 / 5
    names = [f.name for f in fields(Proportions)]
    body = np.mean([abs(getattr(a_body, n) / getattr(b_body, n) - 1) for n in names])
    return float(colour + body + (0.1 if a.hair_style != b.hair_style else 0.0))


def place_distance(place: Place) -> float:
    """How far a place is from the film's locations: infinite for a kind the film never visits, else the
    length of its colour change (the film paints town, beach and room untinted)."""
    if place.kind not in LOCATIONS:
        return math.inf
    hue = (place.hue + 180) % 360 - 180
    return math.hypot(hue / 60, (place.saturation - 1) / 0.4, (place.brightness - 1) / 0.4)


def sample_place(rng: np.random.Generator) -> Place:
    """A random place, never within MIN_PLACE_DISTANCE of the film's town, beach and room."""
    while True:
        kind, layout = str(rng.choice(list(PLACES))), int(rng.integers(1 << 30))
        hue, saturation, brightness = rng.uniform(-180, 180), rng.uniform(0.6, 1.4), rng.uniform(0.55, 1.25)
        place = Place(kind, layout, float(hue), float(saturation), float(brightness))
        if place_distance(place) >= MIN_PLACE_DISTANCE:
            return place


def park(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Lawn, a sand path and round trees under a sky: a kind of place the film never shows."""
    img = _vgradient(h, w, (95, 160, 225), (200, 225, 245))
    lawn = int(rng.uniform(0.55, 0.68) * h)
    img[lawn:] = _vgradient(h - lawn, w, (95, 165, 70), (60, 125, 45))
    path = int(rng.uniform(0.78, 0.88) * h)
    img[path : path + max(3, h // 12)] = (205, 185, 140)
    for _ in range(int(rng.integers(2, 5))):
        x, r = int(rng.uniform(0, w)), int(rng.uniform(0.1, 0.18) * h)
        cv2.rectangle(img, (x - r // 5, lawn - r), (x + r // 5, lawn + 2), (95, 65, 40), -1)
        cv2.circle(img, (x, lawn - int(1.6 * r)), r, (50, 120, 55), -1)
        _hshade(img, max(x - r, 0), min(x + r, w), max(lawn - int(2.6 * r), 0), lawn - int(0.6 * r))
    return img


def paint_place(place: Place, h: int, w: int) -> np.ndarray:
    """The place at h x w, uint8 RGB: its painter with its own layout seed on a plate as wide as the film's
    (3 heights), a window of it where the layout seed says, then the colour change."""
    painter = park if place.kind == "park" else PAINTERS[place.kind]
    rng = np.random.default_rng(place.layout)
    plate = painter(h, max(3 * h, w), rng)
    x = int(rng.integers(plate.shape[1] - w + 1))
    img = np.clip(plate[:, x : x + w], 0, 255).astype(np.uint8)
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + place.hue / 2) % 180
    hsv[..., 1:] *= (place.saturation, place.brightness)
    return cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)


def caption(character: WorldCharacter, place: Place, action: str, expression: str, framing: str,
            facing: str) -> str:
    """`character, <framing>, <looks…>, <facing>, <action> pose, <expression> expression, <place>`: the
    character datasets' prefix and tags with the pose and expression triggers and the place's name (a
    close-up shows no legs: no action, as the pose pipeline leaves close-ups unlabeled)."""
    from ..backends.captioning import join_caption

    pose = [] if framing == "close-up" else [f"{action} pose"]  # as in the datasets: no legs, no action
    parts = [framing, *character.words, facing, *pose, f"{expression} expression", place.words]
    return join_caption("character", "", parts, [])


def world_sample(seed: int, index: int, size: int = 64) -> Sample:
    """Sample `index` of the world of `seed`: the same picture and caption every time."""
    from ..backends.captioning import join_caption
    from ..pose.body import facing

    rng = np.random.default_rng([seed, index])
    character, place = sample_character(rng), sample_place(rng)
    action, expression = str(rng.choice(ACTIONS)), str(rng.choice(EXPRESSIONS))
    framing = str(rng.choice(FRAMINGS, p=(0.4, 0.22, 0.28, 0.1)))
    if framing == "background":  # the place alone, captioned as the background datasets are
        text = join_caption(place.words, BACKGROUND, [], [])
        return Sample(paint_place(place, size, size), text, None, place, "", "", framing, "")
    direction = int(rng.choice((-1, 1)))
    pose = pose_for(action, float(rng.uniform(0, 2)), 0.0, direction)
    zoom = {"full body": rng.uniform(0.6, 0.85), "upper body": rng.uniform(1.5, 1.8)}.get(framing, 2.5)
    x = size * (rng.uniform(0.3, 0.7) if framing == "full body" else rng.uniform(0.42, 0.58))
    if framing == "full body":
        ground = size * rng.uniform(0.88, 0.97)
    else:  # put the head where the framing wants it
        head_y = build_skeleton(pose, x, 0.0, zoom * size, character.body).points["head"][1]
        ground = size * (rng.uniform(0.22, 0.3) if framing == "upper body" else 0.5) - head_y
    sk = build_skeleton(pose, x, ground, zoom * size, character.body)
    scale = 1 if framing == "full body" else 2  # closer framings see a nearer, larger background
    o = (size * scale - size) // 2
    frame = paint_place(place, size * scale, size * scale)[o : o + size, o : o + size].astype(np.float32)
    (x0, y0, x1, y1), rgb, alpha = paint_character(character.look, sk, expression, direction, size, size)
    a = alpha[..., None]
    frame[y0:y1, x0:x1] = frame[y0:y1, x0:x1] * (1 - a) + rgb * a
    face = facing(sk.coco17())
    text = caption(character, place, action, expression, framing, face)
    image = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
    return Sample(image, text, character, place, action, expression, framing, face)


def world(seed: int = 0, size: int = 64, start: int = 0) -> Iterator[Sample]:
    """The endless stream of samples `start, start + 1, …` of the world of `seed`."""
    index = start
    while True:
        yield world_sample(seed, index, size)
        index += 1
