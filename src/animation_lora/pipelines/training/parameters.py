"""The `training` parameter block (`conf/base/parameters_training.yml`), built once by Kedro from the nodes'
annotations (nested blocks included: `params.block`)."""

from __future__ import annotations

from typing import Any

from ...hpo import Search
from ...params import block


@block
class SampleImages:
    """`training.sampling`: the sample images per saved epoch."""

    steps: int
    size: int
    seed: int = 0


@block
class Training:
    """The `training` parameter block. `args` (kohya's names) stay a mapping: the searched and the best
    hyper-parameters are merged into it before it is parsed into a `TrainConfig` (errors name
    `training.args.<key>`)."""

    args: dict[str, Any]
    sample_prompts: list[str]
    sampling: SampleImages
    text_encoder_lr_ratio: float | None = None  # text_encoder_lr = ratio x learning_rate (the brief: 0.8)
    search: Search | None = None  # the hyper-parameter search (its node alone needs it)
