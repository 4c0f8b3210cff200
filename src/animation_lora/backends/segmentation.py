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

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..layers.masks import clean_mask, cut_sides, grabcut_refine, split_instances
from ..layers.motion import MotionParams, add_moving, moving_masks
from ..layers.pointed import Pointing, beside_pointed, embedded_prompts
from .factory import backend_factory
from .weights import checkpoint_path

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


class Sam2Segmenter:
    name = "sam2"

    def __init__(self, predictor, prompter: MediaPipeSegmenter):
        self.predictor, self.prompter = predictor, prompter

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | None,
        config: str = "configs/sam2.1/sam2.1_hiera_t.yaml",
        device: str = "auto",
        prompter: dict[str, Any] | None = None,
    ):
        """`config` is one bundled with the sam2 package; `prompter` are MediaPipeSegmenter arguments."""
        path = checkpoint_path(checkpoint, "segmentation.sam2.checkpoint")
        from sam2.build_sam import build_sam2_video_predictor

        from ..runtime import device_name

        return cls(
            build_sam2_video_predictor(config, ckpt_path=str(path), device=device_name(device)),
            MediaPipeSegmenter(**(prompter or {})),
        )

    def prompt_masks(self, pointed: list[tuple[np.ndarray, Pointing]]) -> list[np.ndarray]:
        """SAM2 (its image predictor, on the video model's weights) answers each box and clicks as given."""
        import torch
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        out = []
        with torch.inference_mode():
            predictor = SAM2ImagePredictor(self.predictor)
            for image, p in pointed:
                clicks = p.inside + p.outside
                labels = [1] * len(p.inside) + [0] * len(p.outside)
                predictor.set_image(np.ascontiguousarray(image))
                masks, _, _ = predictor.predict(
                    point_coords=np.array(clicks, np.float32) if clicks else None,
                    point_labels=np.array(labels) if clicks else None,
                    box=np.array(p.box, np.float32) if p.box else None,
                    multimask_output=False)
                out.append(clean_mask(masks[0] > 0, int(self.prompter.min_area * image.size // 3)))
        return out

    def segment_shot(self, frames: list[np.ndarray], pointed: list[list[np.ndarray]] | None = None,
                     ) -> list[list[Instance]]:
        import torch

        h, w = frames[0].shape[:2]
        min_area = int(self.prompter.min_area * h * w)
        # the prompts: the prompter's instances on the first frame that has any — with its motion proposals
        # (the whole shot is looked at), a character that is not a person prompts SAM2 too — less what a
        # pointed character covers; each pointed character's mask on the first frame it is found in
        proposals = (self.prompter.segment_shot(frames) if self.prompter.motion is not None
                     else (self.prompter.segment(f) for f in frames))
        start, found = next(((i, p) for i, p in enumerate(proposals) if p), (0, []))
        prompts: list[tuple[int, Instance, bool]] = []  # (frame, instance, its mask is the prompt)
        kept, _ = beside_pointed([i.mask for i in found], pointed[start] if pointed else [], min_area,
                                 [i.face for i in found])
        for inst, m in zip(found, kept):
            if m is not None:
                prompts.append((start, Instance(m, inst.score, inst.face), False))
        for k in range(max((len(p) for p in pointed or []), default=0)):
            first = next(i for i, p in enumerate(pointed) if len(p) > k)
            prompts.append((first, Instance(pointed[first][k], POINTED_SCORE), True))
        if not prompts:
            return [[] for _ in frames]
        masks: dict[int, dict[int, np.ndarray]] = {i: {} for i in range(len(frames))}
        scores: dict[int, float] = {}
        # SAM2's video predictor reads a folder of JPEG frames: a scratch folder, removed after the shot
        # SAM2 keeps its memories in bfloat16 and expects autocast around tracking (its README, on CUDA):
        # without it an object's frame before its own prompt has only bfloat16 memories for float32 weights
        cuda = self.predictor.device.type == "cuda"
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda)
        with tempfile.TemporaryDirectory() as tmp, torch.inference_mode(), autocast:
            for i, f in enumerate(frames):
                Image.fromarray(f).save(Path(tmp) / f"{i:05d}.jpg", quality=95)
            state = self.predictor.init_state(video_path=tmp, offload_video_to_cpu=True)
            for obj, (at, inst, by_mask) in enumerate(prompts):
                if by_mask:  # a pointed character: its mask is the prompt
                    self.predictor.add_new_mask(state, frame_idx=at, obj_id=obj, mask=inst.mask)
                else:
                    self.predictor.add_new_points_or_box(
                        state, frame_idx=at, obj_id=obj, box=np.array(inst.box, np.float32)
                    )
                scores[obj] = inst.score
            if not cuda:  # bfloat16 on the CPU is ~5x slower: the prompts' memories in float32 instead
                float_prompt_memories(self.predictor, state)
            # forward from the first prompt, then back from the last: each object reaches every frame
            first, last = min(p[0] for p in prompts), max(p[0] for p in prompts)
            for begin, reverse in ((first, False), (last, True)):
                if reverse and last == 0:
                    break
                for idx, obj_ids, logits in self.predictor.propagate_in_video(
                    state, start_frame_idx=begin, reverse=reverse
                ):
                    for obj, lg in zip(obj_ids, logits):
                        masks[idx][obj] = (lg[0] > 0).cpu().numpy()[:h, :w]
        return [
            [
                Instance(clean_mask(m, min_area), scores[o])
                for o, m in sorted(masks[i].items())
                if m.sum() >= min_area
            ]
            for i in range(len(frames))
        ]


def float_prompt_memories(predictor, state: dict) -> None:
    """The memories of SAM2's prompted frames back in float32 (SAM2 stores them in bfloat16 for CUDA
    autocast). Every frame attends to its objects' prompted frames, so its memory is then float32 (the
    tracked frames' bfloat16 ones are promoted when joined) and meets float32 weights on the CPU."""
    predictor.propagate_in_video_preflight(state)  # encodes the prompts' memories (propagation skips it then)
    for per_object in state["output_dict_per_obj"].values():
        for out in per_object["cond_frame_outputs"].values():
            if out["maskmem_features"] is not None:
                out["maskmem_features"] = out["maskmem_features"].float()


make_segmenter = backend_factory(
    "segmentation",
    {"mediapipe": MediaPipeSegmenter, "grabcut": GrabCutSegmenter, "sam2": Sam2Segmenter.from_checkpoint},
)
