"""The ``sam2`` segmentation backend (studio): SAM2's video predictor from a local checkpoint, prompted by
the ``mediapipe`` backend's instances (with its motion proposals when `prompter.motion` is set) and by the
characters a person points at (`layers.pointed`), propagated through each shot. Apart from
`backends.segmentation` because it is the one backend built on another one."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..layers.masks import clean_mask
from ..layers.pointed import Pointing, beside_pointed
from .segmentation import POINTED_SCORE, Instance, MediaPipeSegmenter
from .weights import checkpoint_path


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
