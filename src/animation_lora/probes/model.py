"""The probes themselves: a logistic regression per concept (scikit-learn) on the embedder backend's
L2-normalised embeddings, trained only on labelled film pictures, with held-out accuracy and the chance
rate; `Probes.predict` judges pictures."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from ..image_loop import progress
from ..params import block

log = logging.getLogger(__name__)

CONCEPTS = ("character", "location", "action", "expression")
# which probe judges which composition slot (a LoRA type)
SLOT_CONCEPT = {"character": "character", "background": "location", "pose": "action",
                "expression": "expression"}
# which framings each probe trains on: a body crop, an upper-body crop, a face close-up, a frame crop
# (a cut-out is the crop with everything but the character white, as the LoRA datasets show it)
TRAINS_ON = {
    "character": ("body", "medium", "face", "cutout", "face_cutout"),
    "location": ("frame", "body", "medium"),
    "action": ("body", "cutout"),
    "expression": ("face", "medium", "face_cutout"),
}
OTHER = "other"  # the class for none of the film's labels (never a slot's target)
# which world framings teach `other` to which probe (a close-up shows no place; a plate shows nobody)
# (an upper body or a close-up shows no full-body action; a plate shows no action and no face)
WORLD_OTHERS = {"full body": ("character", "location"), "upper body": ("character", "location", "action"),
                "close-up": ("character", "action"), "background": ("location", "action", "expression")}


@block
class ProbeParams:
    reference_crops: str | None = None  # studio: <folder>/<concept>/<label>/*.png; the demo uses its truth
    frame_stride: int = 2  # every n-th frame of the demo film (neighbours are near-duplicates)
    held_out: float = 0.25  # the last share of each shot's frames (or of each label's reference crops)
    regularisation: float = 10.0  # scikit-learn's C
    seed: int = 0
    world_others: int = 0  # the demo: pictures of the pretraining world taught as `other` (0: none)
    noise_others: int = 0  # pictures of nothing (noise, blurred blobs) taught as `other` to every probe
    # the embedder block the probes run on (as `embedding`); null: the project's `embedding` block
    embedding: dict[str, Any] | None = None


@dataclass
class LabelledPicture:
    """A picture a probe learns from or is tested on, with its labels."""

    image: np.ndarray  # uint8 RGB at the generation size
    labels: dict[str, str]  # concept -> label (only the concepts this picture teaches)
    held_out: bool
    framing: str = ""


@dataclass
class Probe:
    concept: str
    classes: list[str]
    coef: np.ndarray  # (k, d)
    intercept: np.ndarray  # (k,)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        logits = features @ self.coef.T + self.intercept
        if len(self.classes) == 2 and self.coef.shape[0] == 1:  # scikit-learn's binary form
            logits = np.hstack([np.zeros_like(logits), logits])
        logits = logits - logits.max(1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(1, keepdims=True)


@dataclass
class Probes:
    """The trained probes, or none with the reason (`available` is False): scorers then say so."""

    probes: dict[str, Probe] = field(default_factory=dict)
    embedding: dict[str, Any] = field(default_factory=dict)  # the embedder block: make_embedder(embedding)
    size: tuple[int, int] = (64, 64)  # (width, height) the probes were trained at
    metrics: dict = field(default_factory=dict)
    reason: str = ""

    @property
    def available(self) -> bool:
        return bool(self.probes)

    def chance(self) -> dict[str, float]:
        return {c: 1 / len(p.classes) for c, p in self.probes.items()}

    def predict(self, images: list[np.ndarray], embed: Callable[[list], np.ndarray]) -> list[dict]:
        """Per image: {concept: (label, probability)}, each image resized to the probes' size first."""
        features = embed([fit(im, self.size) for im in images])
        out = [{} for _ in images]
        for concept, probe in self.probes.items():
            p = probe.probabilities(features)
            for i, k in enumerate(p.argmax(1)):
                out[i][concept] = (probe.classes[k], float(p[i, k]))
        return out


def fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """RGB uint8 at (width, height); RGBA is flattened over white (as the character datasets are)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.dstack([image] * 3)
    if image.shape[2] == 4:
        a = image[..., 3:4].astype(np.float32) / 255
        image = (image[..., :3] * a + 255 * (1 - a)).astype(np.uint8)
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    return np.asarray(Image.fromarray(image).resize(tuple(size), Image.BILINEAR))


def _accuracy(probe: Probe, features: np.ndarray, labels: list[str]) -> float | None:
    if not labels:
        return None
    predicted = np.asarray(probe.classes)[probe.probabilities(features).argmax(1)]
    return float(np.mean(predicted == np.asarray(labels)))


def train_probes(examples: list[LabelledPicture], embed: Callable[[list], np.ndarray],
                 embedding: dict[str, Any],
                 size: tuple[int, int], params: ProbeParams, concepts: tuple[str, ...] = CONCEPTS) -> Probes:
    """One logistic regression per concept of `concepts` with at least two labels among the training
    pictures (a film concept learns from its `TRAINS_ON` framings, any concept from `reference` and `world`
    pictures); metrics: held-out accuracy, the chance rate (1 / classes), the counts."""
    from sklearn.linear_model import LogisticRegression

    if not examples:
        return Probes(reason="no labelled pictures", size=size)
    batches = progress(range(0, len(examples), 64), "embed probe pictures", "batch")
    features = np.concatenate([embed([e.image for e in examples[i : i + 64]]) for i in batches])
    probes, metrics = {}, {}
    for concept in concepts:
        framings = TRAINS_ON.get(concept, ()) + ("reference", "world")
        idx = [i for i, e in enumerate(examples) if concept in e.labels and e.framing in framings]
        train = [i for i in idx if not examples[i].held_out]
        test = [i for i in idx if examples[i].held_out]
        classes = sorted({examples[i].labels[concept] for i in train})
        if len(classes) < 2:
            metrics[concept] = f"not available: {len(classes)} label(s) among the training pictures"
            continue
        model = LogisticRegression(C=params.regularisation, max_iter=3000)
        model.fit(features[train], [examples[i].labels[concept] for i in train])
        probe = Probe(concept, [str(c) for c in model.classes_], model.coef_.astype(np.float32),
                      model.intercept_.astype(np.float32))
        probes[concept] = probe
        truth = {i: examples[i].labels[concept] for i in idx}
        metrics[concept] = {
            "held_out_accuracy": _accuracy(probe, features[test], [truth[i] for i in test]),
            "train_accuracy": _accuracy(probe, features[train], [truth[i] for i in train]),
            "chance": 1 / len(classes), "classes": probe.classes, "train": len(train), "held_out": len(test),
        }
        log.info("probe %s: held-out accuracy %s (chance %.2f)", concept,
                 metrics[concept]["held_out_accuracy"], 1 / len(classes))
    reason = "" if probes else "no concept has two labels to tell apart"
    return Probes(probes, dict(embedding), tuple(size), metrics, reason)


