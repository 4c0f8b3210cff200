"""What a training run is told: kohya `train_network.py`'s arguments (`TrainConfig`, YAML `training.args`)
and the dataset TOML's settings (`DatasetSettings`), both typed and validated strictly, errors naming the
key."""

from __future__ import annotations

from typing import Any, Literal

from ..lora_dataset import TrainingSet
from ..params import Count, Share, block, parse

Optimizer = Literal["AdamW", "AdamW8bit", "Lion", "Adafactor", "Prodigy", "SGD"]
Scheduler = Literal[
    "constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial"
]


@block
class TrainConfig:
    """kohya's train_network.py arguments (the subset that applies here), same names."""

    network_dim: Count = 4
    network_alpha: float = 1.0
    learning_rate: float = 1e-4
    # 0 = U-Net only (the brief trains it at 0.8 x learning_rate); SDXL: one rate for both encoders or
    # [te1, te2] as sd-scripts takes them, a 0 leaving that encoder without LoRA (kohya's SDXL default: 0)
    text_encoder_lr: float | list[float] = 0.0
    max_train_epochs: Count = 1
    save_every_n_epochs: int = 0
    save_precision: Literal["float", "fp16", "bf16"] = "float"
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    gradient_checkpointing: bool = False
    gradient_accumulation_steps: Count = 1
    optimizer_type: Optimizer = "AdamW"
    lr_scheduler: Scheduler = "constant"
    lr_scheduler_num_cycles: int = 1
    lr_scheduler_power: float = 1.0
    lr_warmup_steps: int = 0
    seed: int = 0
    clip_skip: int = 1
    cache_latents: bool = True
    cache_latents_to_disk: bool = False
    cache_dir: str | None = None  # where latents are cached on disk (and checkpoints kept)
    cache_text_encoder_outputs: bool = True  # with a frozen text encoder: encode each caption once
    # kohya's max_data_loader_n_workers / persistent_data_loader_workers are not accepted: examples are read
    # and fitted once, in memory; a step reads cached tensors (latents and text outputs on the device)
    max_grad_norm: float = 1.0  # kohya's default; 0 = no gradient clipping
    xformers: bool = False  # kohya's --xformers; else PyTorch's SDPA attention (diffusers' default)
    torch_compile: bool = False  # kohya's --torch_compile: torch.compile the U-Net
    channels_last: bool = False
    allow_tf32: bool = True  # TF32 matmuls on Ampere and newer GPUs (no effect elsewhere)
    min_snr_gamma: float | None = None
    noise_offset: float = 0.0
    caption_dropout_rate: float = 0.0
    resolution: int | None = None  # None: the dataset TOML's
    train_batch_size: Count | None = None  # None: the dataset TOML's batch_size
    max_train_steps: Count | None = None  # a step budget: training ends here or after max_train_epochs
    validation_split: Share = 0.2  # in [0, 1): 1 would leave nothing to train on
    validate_every_n_steps: int = 5
    # early stop on the validation curve: after `early_stopping_patience` validations that improved the best
    # loss by no more than `early_stopping_rel_tol` of it, training ends and the LoRA is the one of the best
    # validation loss (0: train every step)
    early_stopping_patience: int = 0
    early_stopping_rel_tol: float = 0.0
    checkpoint_every_n_steps: int = 0
    resume: bool = False
    missing_caption: Literal["error", "trigger"] = "error"  # an image without (or with an empty) caption
    # kohya's --masked_loss: with a dataset subset's `alpha_mask = true`, an image's alpha weights its loss
    # (0: invented or unknown pixels, not learned); off (kohya's default) or without alpha: unchanged
    masked_loss: bool = False

    def text_encoder_lrs(self, n: int) -> list[float]:
        """`text_encoder_lr` for each of `n` text encoders (SD 1.5: one, SDXL: two)."""
        rates = self.text_encoder_lr if isinstance(self.text_encoder_lr, list) else [self.text_encoder_lr] * n
        if len(rates) != n:
            raise ValueError(f"training.args.text_encoder_lr: {len(rates)} rates for {n} text encoder(s)")
        return rates

    @property
    def trains_text_encoder(self) -> bool:
        rates = self.text_encoder_lr if isinstance(self.text_encoder_lr, list) else [self.text_encoder_lr]
        return any(rate > 0 for rate in rates)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TrainConfig:
        """`training.args` (merged with searched values): an unknown key or a wrong type names
        `training.args.<key>`."""
        return parse(cls, params, "training.args")


@block
class DatasetSettings:
    """A kohya dataset TOML's settings for the (one) subset, sd-scripts' names and defaults."""

    num_repeats: int = 1
    shuffle_caption: bool = False
    keep_tokens: int = 0
    caption_extension: str = ".caption"
    caption_dropout_rate: float = 0.0
    color_aug: bool = False
    flip_aug: bool = False
    alpha_mask: bool = False  # the images' alpha channel is the loss mask (used with `masked_loss`)
    image_dir: str | None = None
    resolution: int = 512
    batch_size: int = 1
    enable_bucket: bool = False
    min_bucket_reso: int = 256
    max_bucket_reso: int = 1024
    bucket_reso_steps: int = 64
    bucket_no_upscale: bool = False


def dataset_settings(dataset: TrainingSet) -> DatasetSettings:
    """The dataset TOML's settings as sd-scripts' `config_util` resolves them: a key of the subset over the
    dataset's over [general]. Each level is checked on its own so an error names where the key is."""
    general = dataset.toml.get("general", {})
    first = dataset.toml["datasets"][0]
    levels = {
        "general": general,
        "datasets.0": {k: v for k, v in first.items() if k != "subsets"},
        "datasets.0.subsets.0": first["subsets"][0],
    }
    try:
        for path, values in levels.items():
            parse(DatasetSettings, values, path)
    except ValueError as err:
        raise ValueError(f"Dataset TOML of '{dataset.name}': {err}") from None
    merged: dict[str, Any] = {}
    for values in levels.values():
        merged.update(values)
    return parse(DatasetSettings, merged, "dataset")
