"""The `composition` parameter block as typed dataclasses, parsed once per node from its annotations (the
parameters hook): an unknown key, a missing one or a wrong type is an error naming its YAML path
(`composition.sampling.steps`)."""

from __future__ import annotations

from dataclasses import field
from typing import Annotated, Literal

from annotated_types import Len

from ..params import block

Strategy = Literal["base", "solo", "merge", "fused", "switch", "composite", "regional"]
Scheduler = Literal["ddim", "euler", "euler_a", "dpm"]
Range = Annotated[list[float], Len(2, 2)]  # [low, high]
Box = Annotated[list[float], Len(4, 4)]  # [left, top, right, bottom], fractions of the picture


@block
class Sampling:
    steps: int
    guidance_scale: float
    width: int
    height: int
    seeds: list[int] = field(default_factory=lambda: [0])  # sample k uses seeds[k]
    negative_prompt: str = ""
    switch_every: int = 5  # LoRA Switch: the next LoRA every k denoising steps
    scheduler: Scheduler = "ddim"


@block
class Thresholds:
    character: float
    background: float


@block
class Scoring:
    thresholds: Thresholds  # cosine to the concept datasets' centroids
    clip_checkpoint: str | None = None  # CLIP-T prompt adherence when a local open_clip checkpoint is given
    clip_model: str = "ViT-B-32"


@block
class WeightSearch:
    n_trials: int
    seed: int  # of the Optuna sampler
    seeds: list[int]  # of the images each candidate is scored on
    ranges: dict[str, Range] = field(default_factory=dict)  # a LoRA without a range keeps its weight


@block
class Regional:
    """The `regional` strategy's layout: the `inside` LoRAs act in the character's region, the others
    outside it; the region is `mask` (a picture, white inside), else the box around `skeleton` (an OpenPose
    picture, e.g. one of the pose stage's `pose_skeletons`) padded by `pad`, else `box`."""

    inside: list[str]
    box: Box
    mask: str | None = None
    skeleton: str | None = None
    pad: float = 0.1
    feather: float = 0.05  # the region's soft edge, a fraction of the picture


@block
class Composition:
    weights: dict[str, float]  # per LoRA; a loaded LoRA not named here weighs 1.0
    templates: list[str]
    num_samples: int
    strategies: list[Strategy]
    sampling: Sampling
    scoring: Scoring
    weight_search: WeightSearch
    prompts: list[str] = field(default_factory=list)  # empty: the templates, filled with the trigger phrases
    # slot -> the trained LoRA (a selected character / scene, by name) that fills it; unnamed: the main one
    loras: dict[str, str] = field(default_factory=dict)
    regional: Regional | None = None  # the `regional` strategy's layout
