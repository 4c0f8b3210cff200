"""A procedurally rendered demo film with ground truth, so every stage has a real job and a score."""

from .ground_truth import GroundTruth
from .render import render_demo_film
from .script import ACTIONS, CAST, CREATURES, EXPRESSIONS, LOCATIONS, PEOPLE, PRESETS, make_film_spec

__all__ = [
    "ACTIONS",
    "CAST",
    "CREATURES",
    "EXPRESSIONS",
    "LOCATIONS",
    "PEOPLE",
    "PRESETS",
    "GroundTruth",
    "make_film_spec",
    "render_demo_film",
]
