"""The demo film's script: presets, cast, locations and the shot list, all derived from a seed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

LOCATIONS = ("seaside_town", "beach", "room")
ACTIONS = ("standing", "walking", "running", "jumping")
EXPRESSIONS = ("neutral", "happy", "surprised", "sad")


@dataclass(frozen=True)
class Character:
    name: str
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    shirt: tuple[int, int, int]
    stripes: tuple[int, int, int] | None  # horizontal shirt stripes, None for a plain shirt
    trousers: tuple[int, int, int]
    shoes: tuple[int, int, int]
    hair_style: str  # "short" or "bob"


@dataclass(frozen=True)
class Creature:
    """A character that is not a person (`creature.paint_creature`): a four-legged animal."""

    name: str
    body: tuple[int, int, int]
    belly: tuple[int, int, int]
    accent: tuple[int, int, int]  # ears, paws, tail tip
    length: float = 1.5  # body length in units of the shoulder height


PEOPLE = (
    Character(
        "marco",
        skin=(222, 170, 128),
        hair=(58, 38, 24),
        shirt=(245, 245, 240),
        stripes=(35, 75, 190),
        trousers=(70, 85, 60),
        shoes=(90, 50, 30),
        hair_style="short",
    ),
    Character(
        "nina",
        skin=(250, 214, 192),
        hair=(205, 78, 30),
        shirt=(240, 196, 40),
        stripes=None,
        trousers=(112, 58, 140),
        shoes=(200, 40, 50),
        hair_style="bob",
    ),
)
CREATURES = (Creature("bruno", body=(168, 104, 52), belly=(240, 222, 188), accent=(74, 46, 30)),)
CAST = PEOPLE + CREATURES  # label k + 1 in the ground truth is CAST[k]; the default films cast people only

PRESETS = {
    # ~24 s at 12 fps: the demo `kedro run` works on.
    "default": dict(width=512, height=288, fps=12, n_shots=12, frames_per_shot=24),
    # a few dozen frames at low resolution for the test suite.
    "tiny": dict(width=320, height=180, fps=12, n_shots=6, frames_per_shot=6),
    # issue 21: bruno, an animal, alone and beside marco; static and panning cameras; a rock he walks past
    "creature": dict(width=320, height=180, fps=12, n_shots=6, frames_per_shot=12, casts=((2,), (2,), (0, 2)),
                     camera_speeds=(0.0, 0.08, 0.0), props=True),
}


@dataclass(frozen=True)
class Actor:
    character: int  # index into CAST
    action: str
    expression: str
    start_x: float  # world position of the pelvis at the first frame, in frame widths
    direction: int  # +1 moves/looks right, -1 left
    scale: float  # character height in frame heights
    phase: float  # animation phase offset in cycles


@dataclass(frozen=True)
class Shot:
    index: int
    location: str
    n_frames: int
    camera_start: float  # left edge of the camera window on the location plate, in frame widths
    camera_speed: float  # frame widths per second
    actors: tuple[Actor, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class FilmSpec:
    preset: str
    seed: int
    width: int
    height: int
    fps: int
    shots: tuple[Shot, ...]
    props: bool = False  # a rock in front of each location (static scenery the characters pass)

    @property
    def n_frames(self) -> int:
        return sum(s.n_frames for s in self.shots)

    def to_dict(self) -> dict:
        return asdict(self)


def _camera_speed(rng: np.random.Generator, speeds: tuple[float, ...] | None, shot: int) -> float:
    """The seed's pan (drawn in any case: the other draws stay as they were), or the preset's, by shot."""
    drawn = float(rng.choice((-1, 1)) * rng.uniform(0.0, 0.04))
    return drawn if speeds is None else speeds[shot % len(speeds)]


def make_film_spec(preset: str = "default", seed: int = 0, **overrides) -> FilmSpec:
    """Plan every shot. Locations, casts, actions and expressions are cycled so that even a short
    film covers each of them; positions, directions and camera moves come from the seed."""
    if preset not in PRESETS:
        raise ValueError(f"Unknown demo preset '{preset}'; choose one of {sorted(PRESETS)}")
    cfg = {**PRESETS[preset], **overrides}
    rng = np.random.default_rng(seed)
    # marco alone, nina alone, both; `casts=((0,),)` renders a single-character film
    casts = tuple(tuple(c) for c in cfg.get("casts", ((0,), (1,), (0, 1))))
    shots = []
    for i in range(cfg["n_shots"]):
        cast = casts[i % len(casts)]
        actors = []
        for slot, who in enumerate(cast):
            action = ACTIONS[(i + 2 * slot) % len(ACTIONS)]
            expression = EXPRESSIONS[(i // 2 + slot + who) % len(EXPRESSIONS)]
            direction = int(rng.choice((-1, 1)))
            travel = {"standing": 0.0, "jumping": 0.05, "walking": 0.25, "running": 0.45}[action]
            centre = (slot + 1) / (len(cast) + 1) if len(cast) > 1 else 0.5
            actors.append(
                Actor(
                    character=who,
                    action=action,
                    expression=expression,
                    start_x=centre - direction * travel / 2 + rng.uniform(-0.04, 0.04),
                    direction=direction,
                    scale=float(rng.uniform(0.66, 0.74)) if len(cast) == 1 else float(rng.uniform(0.6, 0.66)),
                    phase=float(rng.uniform(0, 1)),
                )
            )
        shots.append(
            Shot(
                # (i + i // 3) decorrelates the location from the cast, which cycles with period 3
                index=i,
                location=LOCATIONS[(i + i // 3) % len(LOCATIONS)],
                n_frames=cfg["frames_per_shot"],
                camera_start=float(rng.uniform(0.0, 0.4)),
                camera_speed=_camera_speed(rng, cfg.get("camera_speeds"), i),
                actors=tuple(actors),
            )
        )
    return FilmSpec(
        preset=preset, seed=seed, width=cfg["width"], height=cfg["height"], fps=cfg["fps"],
        shots=tuple(shots), props=bool(cfg.get("props", False)),
    )
