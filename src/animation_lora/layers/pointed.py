"""Characters a person points at (issue 21): a box and/or a few clicks on one frame, for a character no model
knows (an animal, a robot, a teapot). The pointed frame's mask comes from the segmentation backend's own
prompt (SAM2 takes the box and clicks as they are; the embedded backends run GrabCut from them); the
character's look — a random-forest pixel classifier over multiscale colour, edge and texture features
(scikit-image's trainable segmentation, as in ilastik) fitted on the pointed frames — then finds it in every
other frame. A frame of each place the character appears in teaches the classifier that place's background:
the look knows only the backgrounds it was shown (docs/metrics.md, issue 21)."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from skimage.feature import multiscale_basic_features
from sklearn.ensemble import RandomForestClassifier

from ..ids import safe_name
from ..params import block, parse
from .masks import clean_mask

FEATURE_SIGMAS = (1.0, 8.0)  # the smallest and largest scale of the pixel features, in pixels
CLICK_RADIUS = 3  # a click marks a disc this many pixels wide around it
SURE_BAND = 1  # pixels this close to a mask's edge teach nothing (the edge itself is half character)
PIECE_SHARE = 0.25  # a found piece this large against the character's largest is part of it
COSEGMENT_ROUNDS = 3  # rounds of cutting each pointed frame again with what the others teach
MAX_EXAMPLES = 50_000  # pixels a forest is fitted on (sampled evenly): as good as 200k here, 4x faster


@block
class Pointing:
    frame: int  # the source frame number (`frame_index.frame`; the frame file `f<number>.png`)
    box: list[int] | None = None  # [x0, y0, x1, y1] around the character, in the frame's pixels
    inside: list[list[int]] = field(default_factory=list)  # clicks [x, y] on the character
    outside: list[list[int]] = field(default_factory=list)  # clicks [x, y] on what is not the character
    name: str = "pointed"  # pointings with one name are one character (several frames teach its look)


@block
class PointedCharacters:
    characters: list[Pointing] = field(default_factory=list)  # one pointing per (character, frame)


def pointings(values: PointedCharacters | dict | None, where: str = "preprocessing.pointed",
              ) -> list[Pointing]:
    """The pointings of the parameter block, checked: each has a box or an inside click, a box is
    [x0, y0, x1, y1] with x1 > x0 and y1 > y0, a name is a safe name; errors name the pointing."""
    out = []
    given = parse(PointedCharacters, values, where)
    where = f"{where}.characters"
    for k, p in enumerate(given.characters):
        safe_name(p.name, f"{where}[{k}].name")
        if p.box is None and not p.inside:
            raise ValueError(f"Invalid parameters: `{where}[{k}]` (frame {p.frame}): give a `box` "
                             "[x0, y0, x1, y1] or at least one `inside` click [x, y] on the character")
        if p.box is not None and (len(p.box) != 4 or p.box[2] <= p.box[0] or p.box[3] <= p.box[1]):
            raise ValueError(f"Invalid parameters: `{where}[{k}].box` is {p.box}: it must be "
                             "[x0, y0, x1, y1] with x1 > x0 and y1 > y0")
        out.append(p)
    return out


def check_inside(p: Pointing, shape: tuple[int, int], where: str) -> None:
    """An error naming the pointing when its box or clicks fall outside the frame (h, w)."""
    h, w = shape
    xs = [*(p.box[0::2] if p.box else []), *(c[0] for c in p.inside + p.outside)]
    ys = [*(p.box[1::2] if p.box else []), *(c[1] for c in p.inside + p.outside)]
    if min(xs + ys, default=0) < 0 or max(xs, default=0) > w or max(ys, default=0) > h:
        raise ValueError(f"{where} (frame {p.frame}) points outside the frame, which is {w}x{h} px")


def grabcut_prompt(image: np.ndarray, p: Pointing, min_area: int, prior: np.ndarray | None = None,
                   not_it: np.ndarray | None = None) -> np.ndarray:
    """The pointed character's mask in its frame, by GrabCut: outside the box is background, the clicks are
    sure, the rest GrabCut decides — from the box alone, or seeded by `prior` (a probability of being the
    character: over 0.5 probably, over 0.9 surely); `not_it` is surely not the character (a person beside
    it). Without a box, the component holding the inside clicks."""
    h, w = image.shape[:2]
    gc = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    if p.box is not None:
        x0, y0, x1, y1 = p.box
        gc[:] = cv2.GC_BGD
        gc[y0:y1, x0:x1] = cv2.GC_PR_FGD
    if prior is not None:
        free = gc != cv2.GC_BGD
        gc[free] = np.where(prior[free] > 0.5, cv2.GC_PR_FGD, cv2.GC_PR_BGD)
        gc[free & (prior > 0.9)] = cv2.GC_FGD
    if not_it is not None:
        gc[not_it] = cv2.GC_BGD
    for clicks, sure in ((p.inside, cv2.GC_FGD), (p.outside, cv2.GC_BGD)):
        for x, y in clicks:
            cv2.circle(gc, (int(x), int(y)), CLICK_RADIUS, int(sure), -1)
    if not (gc == cv2.GC_FGD).any() and not (gc == cv2.GC_PR_FGD).any():
        return np.zeros((h, w), bool)
    cv2.setRNGSeed(0)  # GrabCut seeds its colour models with k-means: same input, same mask
    cv2.grabCut(np.ascontiguousarray(image[..., ::-1]), gc, None, np.zeros((1, 65)), np.zeros((1, 65)), 5,
                cv2.GC_INIT_WITH_MASK)
    mask = clean_mask((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD), min_area)
    if p.box is None:  # keep what the clicks are on
        n, labels = cv2.connectedComponents(mask.astype(np.uint8))
        on = {int(labels[int(y), int(x)]) for x, y in p.inside} - {0}
        mask = np.isin(labels, list(on))
    return mask


def pixel_features(image: np.ndarray) -> np.ndarray:
    """(h, w, n) colour, edge and texture features at several scales (scikit-image)."""
    low, high = FEATURE_SIGMAS
    return multiscale_basic_features(image, intensity=True, edges=True, texture=True, sigma_min=low,
                                     sigma_max=high, channel_axis=-1).astype(np.float32)


def fit_forest(x: np.ndarray, y: np.ndarray, seed: int = 0) -> RandomForestClassifier:
    """A random forest over pixel features, fitted on at most `MAX_EXAMPLES` of them (evenly sampled)."""
    pick = np.linspace(0, len(y) - 1, min(len(y), MAX_EXAMPLES)).astype(int)
    return RandomForestClassifier(n_estimators=50, max_depth=12, class_weight="balanced", n_jobs=-1,
                                  random_state=seed).fit(x[pick], y[pick])


def pointed_region(p: Pointing, mask: np.ndarray) -> np.ndarray:
    """Where the pointing says the character may be: its box, or (clicks only) its mask's box grown by a
    quarter on every side."""
    h, w = mask.shape
    if p.box is not None:
        x0, y0, x1, y1 = p.box
    elif mask.any():
        ys, xs = np.nonzero(mask)
        gx, gy = (xs.max() - xs.min()) // 4 + 1, (ys.max() - ys.min()) // 4 + 1
        x0, y0, x1, y1 = xs.min() - gx, ys.min() - gy, xs.max() + gx, ys.max() + gy
    else:
        return np.zeros((h, w), bool)
    region = np.zeros((h, w), bool)
    region[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = True
    return region


def embedded_prompts(pointed: list[tuple[np.ndarray, Pointing]], min_area: int,
                     not_it: list[np.ndarray] | None = None, rounds: int = COSEGMENT_ROUNDS,
                     ) -> list[np.ndarray]:
    """Each pointing's mask without a prompted model: GrabCut in its frame (`not_it`: per frame, what is
    surely not the character, e.g. the people the person model finds there), then — for a character pointed
    at in several frames — cut again with what the other frames teach (co-segmentation): a forest fitted on
    the other frames' masks (the character against everything else) and on this frame's pixels outside the
    pointing (this place's background) marks the pixels inside it, and GrabCut, seeded by that, draws the
    edges. A colour the character shares with one place's background (an orange wall, a brown table) is
    told apart by the other places, where it is not. Measured: docs/metrics.md, issue 21."""
    not_it = not_it or [None] * len(pointed)
    masks = [grabcut_prompt(image, p, min_area, not_it=no) for (image, p), no in zip(pointed, not_it)]
    by_name: dict[str, list[int]] = {}
    for k, (_, p) in enumerate(pointed):
        by_name.setdefault(p.name, []).append(k)
    features = {k: pixel_features(pointed[k][0]) for ks in by_name.values() if len(ks) > 1 for k in ks}
    for ks in (ks for ks in by_name.values() if len(ks) > 1):
        for _ in range(rounds):
            regions = {k: pointed_region(pointed[k][1], masks[k]) for k in ks}
            again = {}
            for k in ks:
                xs = [features[k][~regions[k]]] + [features[j].reshape(-1, features[j].shape[-1])
                                                   for j in ks if j != k]
                ys = [np.zeros((~regions[k]).sum(), np.int8)] + [masks[j].ravel().astype(np.int8)
                                                                 for j in ks if j != k]
                forest = fit_forest(np.concatenate(xs), np.concatenate(ys))
                prior = np.zeros(masks[k].shape, np.float32)
                prior[regions[k]] = forest.predict_proba(features[k][regions[k]])[:, -1]
                again[k] = grabcut_prompt(pointed[k][0], pointed[k][1], min_area, prior, not_it[k])
            masks = [again.get(k, m) for k, m in enumerate(masks)]
    return masks


@dataclass
class CharacterLook:
    """Which pixels look like which pointed character: class 0 is the background, class k the k-th name."""

    names: list[str]
    forest: RandomForestClassifier

    @classmethod
    def fit(cls, examples: list[tuple[np.ndarray, dict[str, np.ndarray]]], seed: int = 0) -> CharacterLook:
        """`examples`: (frame, {name: its mask}) of the pointed frames. A pixel within `SURE_BAND` of a mask's
        edge teaches nothing; every other pixel teaches background or its character."""
        names = sorted({n for _, masks in examples for n in masks})
        kernel = np.ones((2 * SURE_BAND + 1,) * 2, np.uint8)
        xs, ys = [], []
        for image, masks in examples:
            labels = np.zeros(image.shape[:2], np.int16)
            unsure = np.zeros(image.shape[:2], bool)
            for k, name in enumerate(names, 1):
                if name in masks:
                    m = masks[name].astype(np.uint8)
                    labels[cv2.erode(m, kernel) > 0] = k
                    unsure |= (cv2.dilate(m, kernel) > 0) & (cv2.erode(m, kernel) == 0)
            taught = ~unsure
            xs.append(pixel_features(image)[taught])
            ys.append(labels[taught])
        return cls(names, fit_forest(np.concatenate(xs), np.concatenate(ys), seed))

    def find(self, image: np.ndarray, min_area: int) -> dict[str, np.ndarray]:
        """{name: mask} of the pointed characters this frame shows: the pixels most likely theirs, holes
        filled; one character is one body, so its largest piece and the pieces at least `PIECE_SHARE` of it
        (a leg cut off by a prop), specks under `min_area` dropped; a character not seen is left out."""
        features = pixel_features(image)
        proba = self.forest.predict_proba(features.reshape(-1, features.shape[-1]))
        best = self.forest.classes_[proba.argmax(1)].reshape(image.shape[:2])
        found = {}
        for k, name in enumerate(self.names, 1):
            mask = clean_mask(best == k, min_area).astype(np.uint8)
            n, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
            if n > 1:
                areas = stats[1:, cv2.CC_STAT_AREA]
                found[name] = np.isin(labels, 1 + np.nonzero(areas >= PIECE_SHARE * areas.max())[0])
        return found


def beside_pointed(masks: list[np.ndarray], pointed: list[np.ndarray], min_area: int,
                   faces: list[bool] | None = None, share: float = 0.5,
                   ) -> tuple[list[np.ndarray | None], list[np.ndarray]]:
    """Another model's masks beside the pointed characters': a mask mostly (`share`) inside a pointed one is
    a piece of that character (the person model's view of an animal's head) and goes (None), unless a face
    was found on it (`faces`: a person); another one is a character of its own and keeps its pixels, which
    the pointed masks lose (a look taught by a rough prompt must not eat the person beside the animal).
    Returns (the masks, the pointed masks)."""
    if not pointed:
        return list(masks), []
    union = np.logical_or.reduce(pointed)
    faces = faces or [False] * len(masks)
    kept = [None if not face and (m & union).sum() >= share * m.sum() else m for m, face in zip(masks, faces)]
    others = np.logical_or.reduce([m for m in kept if m is not None] or [np.zeros_like(union)])
    rest = [clean_mask(p & ~others, min_area) for p in pointed]
    return kept, [p for p in rest if p.any()]
