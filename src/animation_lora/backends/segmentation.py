"""Character segmentation: one bool mask per character instance, shot by shot.

Backends (``segmentation.backend``):
- ``mediapipe`` (embedded default): MediaPipe selfie segmentation on the frame, then again on a square crop
  around each person (the model sees 256 px, so thin limbs need the closer look), GrabCut at the edges;
  touching characters are split between their faces (MediaPipe face detection). On the crop, the selfie
  model's probability is joined (pixelwise max) with BlazePose's body segmentation (`body_model`): the selfie
  model loses dark hair on a dark background, the body model keeps it.
- ``grabcut`` (no weights): foreground = difference from the shot's temporal median background (the camera's
  motion compensated, `layers.motion`), refined with GrabCut. Misses characters that stand still.
- ``sam2`` (studio): SAM2 from a local checkpoint; characters are prompted with boxes from the ``mediapipe``
  backend (with its motion proposals when `prompter.motion` is set: an animal prompts SAM2 too) on the first
  frame of a shot where it finds any, then propagated through the shot with the SAM2 video predictor for
  temporally stable masks.

Every backend takes characters a person points at (`layers.pointed`: a box and/or clicks on a frame):
`prompt_mask` answers the pointing (SAM2 as given; the embedded ones by GrabCut), and `segment_shot` takes the
pointed characters' masks in each frame, which win their pixels (SAM2: as mask prompts, propagated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
from tqdm.auto import tqdm

from ..layers.masks import clean_mask, cut_sides, grabcut_refine, split_instances
from ..layers.motion import MotionParams, add_moving, moving_masks
from ..layers.pointed import Pointing, beside_pointed, embedded_prompts
from .factory import backend_factory

MOTION_SCORE = 0.5  # the score of a proposal found by motion alone (no model's probability behind it)
POINTED_SCORE = 1.0  # a character a person pointed at (`layers.pointed`)


@dataclass
class Instance:
    mask: np.ndarray  # bool, frame-sized
    score: float
    face: bool = False  # a face detector found a face on it: a person, never a piece of a pointed character

    @property
    def box(self) -> tuple[int, int, int, int]:
        ys, xs = np.nonzero(self.mask)
        return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def left_to_right(instances: list[Instance]) -> list[Instance]:
    """A frame's instances ordered by the mean column of their pixels: its characters from left to right."""
    return sorted(instances, key=lambda i: np.nonzero(i.mask)[1].mean())


class Segmenter(Protocol):
    name: str

    def segment_shot(self, frames: list[np.ndarray], pointed: list[list[np.ndarray]] | None = None,
                     ) -> list[list[Instance]]:
        """Instances of every frame of one shot, in frame order; `pointed`: per frame, the masks of the
        characters a person pointed at (`layers.pointed`), which win their pixels."""

    def prompt_masks(self, pointed: list[tuple[np.ndarray, Pointing]]) -> list[np.ndarray]:
        """The mask of the character each (frame, box and/or clicks) points at."""


def add_pointed(found: list[Instance], pointed: list[np.ndarray], min_area: int) -> list[Instance]:
    """A frame's instances with the pointed characters' masks added (`layers.pointed.beside_pointed`)."""
    kept, pointed = beside_pointed([i.mask for i in found], pointed, min_area, [i.face for i in found])
    return left_to_right([Instance(m, i.score, i.face) for i, m in zip(found, kept) if m is not None]
                         + [Instance(m, POINTED_SCORE) for m in pointed])


def characters_in(
    segmenter: Segmenter, image: np.ndarray, min_pixels: int, invented: np.ndarray | None = None
) -> list[Instance]:
    """The character instances a segmenter finds in one image, each at least `min_pixels` large on the
    image's real pixels: `invented` ones (inpainted; alpha 0 of an RGBA plate) are left out of every mask,
    because the masked loss never teaches them (a smear there can look like a person to the segmenter)."""
    if image.shape[-1] == 4:
        image, invented = image[..., :3], image[..., 3] == 0
    found = segmenter.segment_shot([np.ascontiguousarray(image)])[0]
    if invented is not None:
        found = [Instance(i.mask & ~invented, i.score) for i in found]
    return [i for i in found if i.mask.sum() >= min_pixels]


# ---- backends -------------------------------------------------------------------------------------


class MediaPipeSegmenter:
    name = "mediapipe"

    def __init__(
        self,
        threshold: float = 0.5,
        crop_scale: float = 1.3,
        refine: bool = True,
        min_area: float = 0.002,
        flip_average: bool = True,
        body_model: bool = True,
        body_model_min_side: int = 256,
        regrow: int = 2,
        motion: dict[str, Any] | None = None,
    ):
        import mediapipe as mp

        # class-agnostic proposals (`layers.motion`): what moves against the shot's background and no person
        # covers is a character too (an animal, a robot); None: the person models alone
        self.motion = MotionParams(**motion) if motion is not None else None
        self._selfie = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        self._faces = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=0.5
        )
        self.threshold, self.crop_scale, self.refine, self.min_area = threshold, crop_scale, refine, min_area
        self.flip_average = flip_average  # average with the mirrored crop: steadier edges
        self.regrow = regrow  # times a crop the person overflows is looked at again, wider
        # crops smaller than the body model's 256 px input skip it: upscaled small figures bloat its mask
        self.body_model_min_side = body_model_min_side
        self._body = (  # complexity 1: the only pose model the wheel ships (others are downloaded)
            mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=True)
            if body_model
            else None
        )

    def _selfie_mask(self, image: np.ndarray) -> np.ndarray:
        mask = self._selfie.process(np.ascontiguousarray(image)).segmentation_mask
        if self.flip_average:
            mask = (
                mask + self._selfie.process(np.ascontiguousarray(image[:, ::-1])).segmentation_mask[:, ::-1]
            ) / 2
        if self._body is not None and min(image.shape[:2]) >= self.body_model_min_side:
            body = self._body.process(np.ascontiguousarray(image)).segmentation_mask
            if body is not None:  # None when BlazePose finds no person in the crop
                mask = np.maximum(mask, body)
        return mask

    def probability(self, image: np.ndarray) -> np.ndarray:
        """Foreground probability: the whole frame, then a closer look around each person found
        (crop_scale 0 keeps the one-pass mask)."""
        image = np.ascontiguousarray(image)  # MediaPipe refuses views
        h, w = image.shape[:2]
        coarse = self._selfie.process(image).segmentation_mask
        if not self.crop_scale:
            return coarse
        n, _, stats, _ = cv2.connectedComponentsWithStats((coarse > self.threshold).astype(np.uint8))
        prob = np.zeros((h, w), np.float32)
        for k in range(1, n):
            x, y, bw, bh, area = stats[k]
            if area < max(self.min_area * h * w, 64):  # specks: MediaPipe aborts on a near-empty crop
                continue
            side = int(max(bw, bh) * self.crop_scale)
            cx, cy = x + bw // 2, y + bh // 2
            for _ in range(self.regrow + 1):
                x0, y0 = max(0, cx - side // 2), max(0, cy - side // 2)
                x1, y1 = min(w, cx + side // 2), min(h, cy + side // 2)
                fine = self._selfie_mask(image[y0:y1, x0:x1])
                cut = cut_sides(fine > self.threshold, (x0, y0, x1, y1), (w, h))
                if not cut:
                    break
                # the person goes on past the crop (feet, a raised arm): look again, wider, that way
                side = int(side * 1.4)
                cx += side // 6 * (("right" in cut) - ("left" in cut))
                cy += side // 6 * (("bottom" in cut) - ("top" in cut))
            prob[y0:y1, x0:x1] = np.maximum(prob[y0:y1, x0:x1], fine)
        return prob

    def face_centres(self, image: np.ndarray) -> list[tuple[float, float]]:
        h, w = image.shape[:2]
        found = self._faces.process(np.ascontiguousarray(image)).detections or []
        boxes = [d.location_data.relative_bounding_box for d in found]
        return [((b.xmin + b.width / 2) * w, (b.ymin + b.height / 2) * h) for b in boxes]

    def segment(self, image: np.ndarray) -> list[Instance]:
        h, w = image.shape[:2]
        min_area = int(self.min_area * h * w)
        prob = self.probability(image)
        mask = clean_mask(prob > self.threshold, min_area)
        if self.refine:
            mask = clean_mask(grabcut_refine(image, mask), min_area)
        faces = self.face_centres(image)
        parts = split_instances(mask, faces, min_area)
        return left_to_right([Instance(m, float(prob[m].mean()), any(m[min(int(y), h - 1), min(int(x), w - 1)]
                                                                        for x, y in faces)) for m in parts])

    def segment_shot(self, frames: list[np.ndarray], pointed: list[list[np.ndarray]] | None = None,
                     ) -> list[list[Instance]]:
        shown = tqdm(frames, desc="  frames of the shot", unit="frame", leave=False, disable=len(frames) < 2)
        out = [self.segment(f) for f in shown]
        if not frames:
            return out
        min_area = int(self.min_area * frames[0].shape[0] * frames[0].shape[1])
        if self.motion is not None:
            moving = moving_masks(frames, self.motion, min_area)
            for k, (found, motion) in enumerate(zip(out, moving, strict=True)):
                extra = add_moving([i.mask for i in found], motion, min_area)[len(found):]
                out[k] = left_to_right(found + [Instance(m, MOTION_SCORE) for m in extra])
        if pointed is not None:
            out = [add_pointed(found, p, min_area) for found, p in zip(out, pointed, strict=True)]
        return out

    def prompt_masks(self, pointed: list[tuple[np.ndarray, Pointing]]) -> list[np.ndarray]:
        """GrabCut and co-segmentation (`layers.pointed.embedded_prompts`); a person with a face that no
        inside click is on is surely not the character pointed at."""
        h, w = pointed[0][0].shape[:2] if pointed else (0, 0)
        people = []
        for image, p in pointed:
            faces = [i.mask for i in self.segment(image) if i.face
                     and not any(i.mask[min(y, h - 1), min(x, w - 1)] for x, y in p.inside)]
            people.append(np.logical_or.reduce(faces) if faces else None)
        return embedded_prompts(pointed, int(self.min_area * h * w), people)


class GrabCutSegmenter:
    """The no-weights baseline: what moves against the shot's camera-compensated median background
    (`layers.motion`, the same proposals the mediapipe backend can add), refined with GrabCut."""

    name = "grabcut"

    def __init__(self, diff_threshold: float = 30.0, min_area: float = 0.002):
        self.motion, self.min_area = MotionParams(diff_threshold=diff_threshold, min_frames=3), min_area

    def segment_shot(self, frames: list[np.ndarray], pointed: list[list[np.ndarray]] | None = None,
                     ) -> list[list[Instance]]:
        h, w = frames[0].shape[:2]
        min_area = int(self.min_area * h * w)
        out = [left_to_right([Instance(m, MOTION_SCORE) for m in split_instances(mask, [], min_area)])
               for mask in moving_masks(frames, self.motion, min_area)]
        if pointed is not None:
            out = [add_pointed(found, p, min_area) for found, p in zip(out, pointed, strict=True)]
        return out

    def prompt_masks(self, pointed: list[tuple[np.ndarray, Pointing]]) -> list[np.ndarray]:
        h, w = pointed[0][0].shape[:2] if pointed else (0, 0)
        return embedded_prompts(pointed, int(self.min_area * h * w))


# the studio backend builds on the mediapipe one above: imported once the classes it needs exist
from .sam2_video import Sam2Segmenter  # noqa: E402

make_segmenter = backend_factory(
    "segmentation",
    {"mediapipe": MediaPipeSegmenter, "grabcut": GrabCutSegmenter, "sam2": Sam2Segmenter.from_checkpoint},
)
