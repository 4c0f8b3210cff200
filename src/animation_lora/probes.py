"""Concept probes: small classifiers that say which character, location, action and expression an image
shows — the judge of the composed images. Logistic regression (scikit-learn) on the embedder backend's
L2-normalised embeddings, one per concept, trained only on labelled film pictures: the demo film's ground
truth (crops and frames at the generation size), or, on a studio film, reference crops the user labelled
(`probes.reference_crops`: `<concept>/<label>/*.png`). They never see a generated image in training.

Held out: the last `held_out` share of every shot's frames (a temporal split: earlier frames of the same
shot train), or for reference crops a stratified random share of each label's files.

A probe trained only on the film's labels must name one of them for any picture, so a picture of nobody in
particular (the base alone) would count as the film's character. The demo's character and location probes
therefore also learn an `other` class from the pretraining world (other characters, other places, never the
film's: held out by construction); on a studio film, an `other` folder of reference crops does the same."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .image_loop import progress
from .params import block

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
WORLD_OTHERS = {"full body": ("character", "location"), "upper body": ("character", "location"),
                "close-up": ("character",), "background": ("location",)}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@block
class ProbeParams:
    reference_crops: str | None = None  # studio: <folder>/<concept>/<label>/*.png; the demo uses its truth
    frame_stride: int = 2  # every n-th frame of the demo film (neighbours are near-duplicates)
    held_out: float = 0.25  # the last share of each shot's frames (or of each label's reference crops)
    regularisation: float = 10.0  # scikit-learn's C
    seed: int = 0
    world_others: int = 0  # the demo: pictures of the pretraining world taught as `other` (0: none)
    # the embedder block the probes run on (as `embedding`); null: the project's `embedding` block
    embedding: dict[str, Any] | None = None


@dataclass
class Example:
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


def crop(image: np.ndarray, cx: float, cy: float, height: float, size: tuple[int, int]) -> np.ndarray:
    """A crop of the generation's aspect ratio centred on (cx, cy), `height` pixels tall, edge-padded where
    it leaves the frame, resized to `size`."""
    h = max(int(round(height)), 4)
    w = max(int(round(height * size[0] / size[1])), 4)
    x0, y0 = int(round(cx - w / 2)), int(round(cy - h / 2))
    pad = max(0, -x0, -y0, x0 + w - image.shape[1], y0 + h - image.shape[0])
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge") if pad else image
    return fit(padded[y0 + pad : y0 + pad + h, x0 + pad : x0 + pad + w], size)


def _face_visible(labels: np.ndarray, box, label: int) -> bool:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    patch = labels[max(y0, 0) : y1, max(x0, 0) : x1]
    return patch.size > 0 and (patch == label).mean() >= 0.5


def frame_examples(truth, frame: int, image: np.ndarray, held_out: bool, size) -> list[Example]:
    """One demo frame's labelled pictures: crops across the frame (location), and per visible character a
    body, an upper-body and a face crop (identity, action, expression)."""
    H, W = image.shape[:2]
    location = str(truth.frames.loc[frame, "location"])
    out = [Example(crop(image, cx, H / 2, H, size), {"location": location}, held_out, "frame")
           for cx in np.linspace(H / 2, W - H / 2, 3)]
    rows = truth.instances[truth.instances.frame == frame]
    for r in rows.itertuples():
        x0, y0, x1, y1 = r.box
        if r.area < 0.002 * H * W or y1 - y0 < 0.25 * H:
            continue  # mostly hidden or out of the frame
        who = {"character": r.character, "location": location}
        cutout = np.where((truth.labels[frame] == r.label)[..., None], image, 255).astype(np.uint8)
        side = 1.1 * max(y1 - y0, (x1 - x0) * size[1] / size[0])
        for picture, framing in ((image, "body"), (cutout, "cutout")):
            out.append(Example(crop(picture, (x0 + x1) / 2, (y0 + y1) / 2, side, size),
                               {**who, "action": r.action}, held_out, framing))
        fx0, fy0, fx1, fy1 = r.face_box
        face_h = fy1 - fy0
        if face_h < 4 or not _face_visible(truth.labels[frame], r.face_box, r.label):
            continue
        expression = {**who, "expression": r.expression}
        out.append(Example(crop(image, (fx0 + fx1) / 2, fy1 + face_h, 4 * face_h, size), expression,
                           held_out, "medium"))
        for picture, framing in ((image, "face"), (cutout, "face_cutout")):
            out.append(Example(crop(picture, (fx0 + fx1) / 2, (fy0 + fy1) / 2, 1.6 * face_h, size),
                               expression, held_out, framing))
    return out


def demo_examples(truth, frames: Iterable[tuple[int, np.ndarray]], params: ProbeParams,
                  size: tuple[int, int]) -> list[Example]:
    """Labelled pictures from the demo film's frames (every `frame_stride`-th of each shot) and its ground
    truth; the last `held_out` share of each shot's frames used (at least one) is held out."""
    table = truth.frames
    used = table[table.groupby("shot").cumcount() % params.frame_stride == 0]
    position = used.groupby("shot").cumcount()
    length = used.groupby("shot")["shot"].transform("size")
    n_test = (length - np.ceil(length * (1 - params.held_out))).astype(int)
    if params.held_out > 0:
        n_test = n_test.clip(lower=(length > 1).astype(int))  # a short shot still holds one frame out
    test = position >= length - n_test
    out = []
    for index, image in frames:
        if index in used.index:
            out += frame_examples(truth, index, image, bool(test.loc[index]), size)
    return out


def world_examples(params: ProbeParams, size: tuple[int, int]) -> list[Example]:
    """`world_others` pictures of the pretraining world labelled `other` for the probes their framing can
    teach (`WORLD_OTHERS`), from indices no pretraining run reaches; the last `held_out` share is held out."""
    from .demo.world import world_sample

    count = params.world_others
    n_test = int(round(count * params.held_out))
    out = []
    for i in range(count):
        sample = world_sample(params.seed, 2 * 10**9 + i, max(size))
        labels = dict.fromkeys(WORLD_OTHERS[sample.framing], OTHER)
        out.append(Example(fit(sample.image, size), labels, i >= count - n_test, "world"))
    return out


def reference_examples(folder: str | Path, params: ProbeParams, size: tuple[int, int]) -> list[Example]:
    """Labelled reference crops `<folder>/<concept>/<label>/*.png` (a studio film); `background` and `pose`
    are accepted for location and action. A missing folder or an unknown concept is an error naming it."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"`probes.reference_crops`: no folder '{root}'")
    aliases = {"background": "location", "pose": "action"}
    rng = np.random.default_rng(params.seed)
    out = []
    for concept_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        concept = aliases.get(concept_dir.name, concept_dir.name)
        if concept not in CONCEPTS:
            raise ValueError(f"`probes.reference_crops`: folder '{concept_dir}' is not a concept; "
                             f"use {list(CONCEPTS)} (or background, pose)")
        for label_dir in sorted(p for p in concept_dir.iterdir() if p.is_dir()):
            files = sorted(f for f in label_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            n_test = int(len(files) * params.held_out) if len(files) > 1 else 0
            test = set(rng.permutation(len(files))[:n_test].tolist())
            for k, f in enumerate(files):
                image = fit(np.asarray(Image.open(f).convert("RGBA")), size)
                out.append(Example(image, {concept: label_dir.name}, k in test, "reference"))
    return out


def _accuracy(probe: Probe, features: np.ndarray, labels: list[str]) -> float | None:
    if not labels:
        return None
    predicted = np.asarray(probe.classes)[probe.probabilities(features).argmax(1)]
    return float(np.mean(predicted == np.asarray(labels)))


def train_probes(examples: list[Example], embed: Callable[[list], np.ndarray], embedding: dict[str, Any],
                 size: tuple[int, int], params: ProbeParams) -> Probes:
    """One logistic regression per concept with at least two labels among the training pictures; metrics:
    held-out accuracy, the chance rate (1 / classes), the counts."""
    from sklearn.linear_model import LogisticRegression

    if not examples:
        return Probes(reason="no labelled pictures", size=size)
    batches = progress(range(0, len(examples), 64), "embed probe pictures", "batch")
    features = np.concatenate([embed([e.image for e in examples[i : i + 64]]) for i in batches])
    probes, metrics = {}, {}
    for concept in CONCEPTS:
        framings = TRAINS_ON[concept] + ("reference", "world")
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
