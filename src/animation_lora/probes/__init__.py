"""Concept probes: small classifiers that say which character, location, action and expression an image
shows — the judge of the composed images. Trained only on labelled film pictures: the demo film's ground
truth (crops and frames at the generation size), or, on a studio film, reference crops the user labelled
(`probes.reference_crops`: `<concept>/<label>/*.png`). They never see a generated image in training.

Held out: the last `held_out` share of every shot's frames (a temporal split: earlier frames of the same
shot train), or for reference crops a stratified random share of each label's files.

A probe trained only on the film's labels must name one of them for any picture, so a picture of nobody in
particular (the base alone) would count as the film's character. The demo's character and location probes
therefore also learn an `other` class from the pretraining world (other characters, other places, never the
film's: held out by construction); on a studio film, an `other` folder of reference crops does the same.

`model` (the probes, their training), `pictures` (what they learn from), `scoring` (the judge of composed
images)."""

from .model import OTHER, SLOT_CONCEPT, LabelledPicture, Probe, ProbeParams, Probes, train_probes
from .pictures import demo_examples, reference_examples, world_examples

__all__ = ["OTHER", "SLOT_CONCEPT", "LabelledPicture", "Probe", "ProbeParams", "Probes", "demo_examples",
           "reference_examples", "train_probes", "world_examples"]
