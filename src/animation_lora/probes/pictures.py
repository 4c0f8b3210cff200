"""The pictures the probes learn from: crops of the demo film's frames by its ground truth (location,
identity, action, expression), pictures of the pretraining world labelled `other`, or a studio film's
labelled reference crops (`<concept>/<label>/*.png`). Never a generated picture."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from .model import CONCEPTS, OTHER, WORLD_OTHERS, LabelledPicture, ProbeParams, fit

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


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


def frame_examples(truth, frame: int, image: np.ndarray, held_out: bool, size) -> list[LabelledPicture]:
    """One demo frame's labelled pictures: crops across the frame (location), and per visible character a
    body, an upper-body and a face crop (identity, action, expression)."""
    H, W = image.shape[:2]
    location = str(truth.frames.loc[frame, "location"])
    out = [LabelledPicture(crop(image, cx, H / 2, H, size), {"location": location}, held_out, "frame")
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
            out.append(LabelledPicture(crop(picture, (x0 + x1) / 2, (y0 + y1) / 2, side, size),
                               {**who, "action": r.action}, held_out, framing))
        fx0, fy0, fx1, fy1 = r.face_box
        face_h = fy1 - fy0
        if face_h < 4 or not _face_visible(truth.labels[frame], r.face_box, r.label):
            continue
        expression = {**who, "expression": r.expression}
        out.append(LabelledPicture(crop(image, (fx0 + fx1) / 2, fy1 + face_h, 4 * face_h, size), expression,
                           held_out, "medium"))
        for picture, framing in ((image, "face"), (cutout, "face_cutout")):
            out.append(LabelledPicture(crop(picture, (fx0 + fx1) / 2, (fy0 + fy1) / 2, 1.6 * face_h, size),
                               expression, held_out, framing))
    return out


def demo_examples(truth, frames: Iterable[tuple[int, np.ndarray]], params: ProbeParams,
                  size: tuple[int, int]) -> list[LabelledPicture]:
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


def world_examples(params: ProbeParams, size: tuple[int, int]) -> list[LabelledPicture]:
    """`world_others` pictures of the pretraining world labelled `other` for the probes their framing can
    teach (`WORLD_OTHERS`), from indices no pretraining run reaches; the last `held_out` share is held out."""
    from ..demo.world import world_sample

    count = params.world_others
    n_test = int(round(count * params.held_out))
    out = []
    for i in range(count):
        sample = world_sample(params.seed, 2 * 10**9 + i, max(size))
        labels = dict.fromkeys(WORLD_OTHERS[sample.framing], OTHER)
        out.append(LabelledPicture(fit(sample.image, size), labels, i >= count - n_test, "world"))
    return out


def noise_picture(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A picture of nothing: uniform noise, or noise blurred into blobs of a random scale and contrast (what a
    base that cannot draw yet produces)."""
    import cv2

    w, h = size
    noise = rng.random((h, w, 3)).astype(np.float32)
    if rng.random() < 0.25:
        return (noise * 255).astype(np.uint8)
    blobs = cv2.GaussianBlur(noise, (0, 0), float(rng.uniform(1.5, 6.0)))
    blobs = (blobs - blobs.mean()) / max(float(blobs.std()), 1e-6)
    picture = rng.uniform(60, 200, 3) + rng.uniform(20, 70) * blobs
    return np.clip(picture, 0, 255).astype(np.uint8)


def noise_examples(params: ProbeParams, size: tuple[int, int]) -> list[LabelledPicture]:
    """`noise_others` pictures of nothing, `other` to every probe; the last `held_out` share is held out."""
    rng = np.random.default_rng([params.seed, 3])
    count, out = params.noise_others, []
    n_test = int(round(count * params.held_out))
    for i in range(count):
        labels = dict.fromkeys(CONCEPTS, OTHER)
        out.append(LabelledPicture(noise_picture(rng, size), labels, i >= count - n_test, "world"))
    return out


def reference_examples(folder: str | Path, params: ProbeParams, size: tuple[int,
                                                                            int]) -> list[LabelledPicture]:
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
                out.append(LabelledPicture(image, {concept: label_dir.name}, k in test, "reference"))
    return out


def probe_pictures(film, truth, params: ProbeParams, size: tuple[int, int]) -> tuple[list, str]:
    """The labelled pictures for this film and where they come from: the reference crops
    (`probes.reference_crops`), else the demo film's ground truth (and the world's `other` pictures); none,
    with the reason as the source, when the film has neither."""
    nothing = noise_examples(params, size)  # pictures of nothing: `other` to every probe, on any film
    also = f" and {params.noise_others} pictures of nothing as `other`" if params.noise_others else ""
    if params.reference_crops and Path(params.reference_crops).is_dir():
        return (reference_examples(params.reference_crops, params, size) + nothing,
                f"labelled reference crops in '{params.reference_crops}'{also}")
    if truth is not None:
        frames = ((f.index, f.image) for f in film.frames() if f.image is not None)
        source = "the demo film's ground truth (crops and frames)"
        if params.world_others:
            source += f" and {params.world_others} pretraining-world pictures as `other`"
        examples = demo_examples(truth, frames, params, size) + world_examples(params, size)
        return examples + nothing, source + also
    where = f"'{params.reference_crops}' is no folder" if params.reference_crops else "is null"
    return [], (f"not available: this film has no demo ground truth and `probes.reference_crops` {where} "
                "(labelled crops: <concept>/<label>/*.png)")
