"""The `training` parameter block (`conf/base/parameters_training.yml`), parsed once per node by the
`TypedParametersHook` from the nodes' annotations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...hpo import Search
from ...params import block, parse


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

    def __post_init__(self):
        # the nested blocks, when given as mappings (Kedro's own parameter validation builds this block from
        # the node's annotation with `Training(**values)`, leaving them as they are in the YAML): parsed here,
        # errors named `training.<block>.<key>`
        if isinstance(self.sampling, Mapping):
            self.sampling = parse(SampleImages, self.sampling, "training.sampling")
        if isinstance(self.search, Mapping):
            self.search = parse(Search, self.search, "training.search")
