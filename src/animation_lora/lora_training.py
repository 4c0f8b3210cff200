"""LoRA training with kohya sd-scripts' knobs (same names as `train_network.py`), on diffusers + peft,
driven by accelerate. Reads a kohya dataset (images + captions + the dataset TOML settings)."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from .backends.diffusion import BaseModel
from .training_set import TrainingSet
from .loop import materialise

log = logging.getLogger(__name__)

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]
OPTIMIZERS = ("AdamW", "AdamW8bit", "Lion", "Adafactor", "Prodigy", "SGD")
SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")


@dataclass
class TrainConfig:
    """kohya's train_network.py arguments (the subset that applies here), same names."""
    network_dim: int = 4
    network_alpha: float = 1.0
    learning_rate: float = 1e-4
    text_encoder_lr: float = 0.0  # 0 = U-Net only (seed: 0.8 x learning_rate)
    max_train_epochs: int = 1
    save_every_n_epochs: int = 0
    save_precision: str = "float"  # fp16 | bf16 | float
    mixed_precision: str = "no"  # no | fp16 | bf16
    gradient_checkpointing: bool = False
    gradient_accumulation_steps: int = 1
    optimizer_type: str = "AdamW"
    lr_scheduler: str = "constant"
    lr_scheduler_num_cycles: int = 1
    lr_scheduler_power: float = 1.0
    lr_warmup_steps: int = 0
    seed: int = 0
    clip_skip: int = 1
    cache_latents: bool = True
    cache_latents_to_disk: bool = False
    cache_dir: str | None = None  # where latents are cached on disk (and checkpoints kept)
    cache_text_encoder_outputs: bool = True  # with a frozen text encoder: encode each caption once
    # accepted so kohya configs carry over; no effect: the loop feeds cached in-memory tensors, no DataLoader
    max_data_loader_n_workers: int = 0
    persistent_data_loader_workers: bool = False
    min_snr_gamma: float | None = None
    noise_offset: float = 0.0
    caption_dropout_rate: float = 0.0
    resolution: int | None = None  # None: the dataset TOML's
    train_batch_size: int | None = None  # None: the dataset TOML's batch_size
    validation_split: float = 0.2
    validate_every_n_steps: int = 5
    checkpoint_every_n_steps: int = 0
    resume: bool = False
    missing_caption: str = "error"  # error | trigger: an image without (or with an empty) caption

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "TrainConfig":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"Unknown training parameters {unknown}; known: {sorted(known)}")
        cfg = cls(**params)
        if cfg.optimizer_type not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer_type '{cfg.optimizer_type}'; choose one of {', '.join(OPTIMIZERS)}")
        if cfg.lr_scheduler not in SCHEDULERS:
            raise ValueError(f"Unknown lr_scheduler '{cfg.lr_scheduler}'; choose one of {', '.join(SCHEDULERS)}")
        return cfg


@dataclass
class TrainResult:
    unet: Any
    text_encoder: Any
    history: pd.DataFrame
    steps: int
    epochs: int
    tag_frequency: dict[str, int]
    config: TrainConfig
    extra: dict[str, Any] = field(default_factory=dict)


# ---- data: kohya subset settings, aspect-ratio buckets, captions ----------------------------------

def subset_settings(dataset: TrainingSet) -> dict[str, Any]:
    """The dataset TOML's settings as kohya resolves them: subset over dataset over general."""
    general = dataset.toml.get("general", {})
    d = dataset.toml["datasets"][0]
    subset = d["subsets"][0]
    merged = {**general, **{k: v for k, v in d.items() if k != "subsets"}, **subset}
    allowed = {"num_repeats", "shuffle_caption", "keep_tokens", "caption_extension", "color_aug", "flip_aug",
               "resolution", "batch_size", "enable_bucket", "min_bucket_reso", "max_bucket_reso",
               "bucket_reso_steps", "bucket_no_upscale", "image_dir", "caption_dropout_rate"}
    unknown = sorted(set(merged) - allowed)
    if unknown:
        raise ValueError(f"Dataset TOML of '{dataset.name}' has keys this trainer does not know: {unknown}")
    return merged


def buckets(resolution: int, steps: int, min_reso: int, max_reso: int) -> list[tuple[int, int]]:
    """kohya-style buckets: (w, h) multiples of `steps` within [min, max] and area <= resolution^2."""
    sizes = range(min_reso, max_reso + 1, steps)
    return sorted({(w, h) for w in sizes for h in sizes if w * h <= resolution * resolution
                   and max(w, h) / min(w, h) <= 4})


def fit_to_bucket(image: np.ndarray, options: list[tuple[int, int]]) -> np.ndarray:
    """Resize (cover) and centre-crop to the bucket whose aspect ratio is closest, the largest such."""
    h, w = image.shape[:2]
    ar = w / h
    best = min(options, key=lambda s: (abs(math.log(s[0] / s[1]) - math.log(ar)), -s[0] * s[1]))
    bw, bh = best
    scale = max(bw / w, bh / h)
    im = Image.fromarray(image).resize((max(bw, round(w * scale)), max(bh, round(h * scale))), Image.BICUBIC)
    left, top = (im.width - bw) // 2, (im.height - bh) // 2
    return np.asarray(im.crop((left, top, left + bw, top + bh)))


def make_caption(caption: str, shuffle: bool, keep_tokens: int, dropout: float, rng: random.Random) -> str:
    """kohya: keep the first `keep_tokens` comma-separated tags in place, shuffle the rest; drop whole
    captions with `caption_dropout_rate`."""
    if dropout and rng.random() < dropout:
        return ""
    tags = [t.strip() for t in caption.split(",") if t.strip()]
    head, tail = tags[:keep_tokens], tags[keep_tokens:]
    if shuffle:
        rng.shuffle(tail)
    return ", ".join(head + tail)


# ---- model pieces ---------------------------------------------------------------------------------

def add_lora(base: BaseModel, cfg: TrainConfig) -> tuple[Any, Any]:
    """Copies of the U-Net (and text encoder when it trains) with LoRA layers; everything else frozen."""
    from peft import LoraConfig, inject_adapter_in_model

    unet = copy.deepcopy(base.unet)
    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=cfg.network_dim, lora_alpha=cfg.network_alpha, init_lora_weights="gaussian",
                                target_modules=UNET_TARGETS))
    text_encoder = base.text_encoder
    if cfg.text_encoder_lr > 0:
        text_encoder = copy.deepcopy(base.text_encoder)
        text_encoder.requires_grad_(False)
        # transformers 5's own add_adapter wants peft >= 0.22; peft's injection works with 0.21
        inject_adapter_in_model(LoraConfig(r=cfg.network_dim, lora_alpha=cfg.network_alpha,
                                           init_lora_weights="gaussian", target_modules=TEXT_TARGETS), text_encoder)
    return unet, text_encoder


def check_network_dim(base: BaseModel, cfg: TrainConfig) -> None:
    smallest = min(min(m.in_features, m.out_features) for n, m in base.unet.named_modules()
                   if isinstance(m, torch.nn.Linear) and any(n.endswith(t) for t in UNET_TARGETS))
    if cfg.network_dim > smallest:
        raise ValueError(f"network_dim {cfg.network_dim} is larger than the smallest targeted layer ({smallest})")


def encode_text(base: BaseModel, text_encoder, captions: list[str], clip_skip: int) -> torch.Tensor:
    ids = base.tokenizer(captions, padding="max_length", max_length=base.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt").input_ids
    out = text_encoder(ids, output_hidden_states=clip_skip > 1)
    if clip_skip > 1:  # kohya: the hidden state clip_skip layers from the end, through the final norm
        return text_encoder.text_model.final_layer_norm(out.hidden_states[-clip_skip]) \
            if hasattr(text_encoder, "text_model") else text_encoder.final_layer_norm(out.hidden_states[-clip_skip])
    return out.last_hidden_state


def make_optimizer(cfg: TrainConfig, groups: list[dict]):
    name = cfg.optimizer_type
    if name == "AdamW":
        return torch.optim.AdamW(groups, weight_decay=1e-2)
    if name == "SGD":
        return torch.optim.SGD(groups, momentum=0.9)
    if name == "Adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(groups, scale_parameter=False, relative_step=False, warmup_init=False)
    modules = {"AdamW8bit": ("bitsandbytes", "bitsandbytes.optim", "AdamW8bit"),
               "Lion": ("lion-pytorch", "lion_pytorch", "Lion"), "Prodigy": ("prodigyopt", "prodigyopt", "Prodigy")}
    package, module, cls = modules[name]
    try:
        return getattr(__import__(module, fromlist=[cls]), cls)(groups)
    except ImportError as err:
        raise ImportError(f"optimizer_type '{name}' needs the '{package}' package: pip install {package}") from err


# ---- latent cache ---------------------------------------------------------------------------------

class LatentCache:
    """VAE latents keyed by image content, size and the VAE: in memory, and on disk when asked, so
    epochs, trials and reruns encode each image once."""

    def __init__(self, base: BaseModel, folder: str | None):
        self.base, self.memory = base, {}
        self.folder = Path(folder) / "latents" if folder else None
        self.vae_key = base.model_hash

    def key(self, image: np.ndarray) -> str:
        return hashlib.sha1(image.tobytes() + str(image.shape).encode() + self.vae_key.encode()).hexdigest()

    @torch.no_grad()
    def encode(self, image: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1
        return self.base.vae.encode(x).latent_dist.mean[0] * self.base.vae.config.scaling_factor

    def get(self, image: np.ndarray) -> torch.Tensor:
        k = self.key(image)
        if k in self.memory:
            return self.memory[k]
        path = self.folder / f"{k}.safetensors" if self.folder else None
        if path is not None and path.exists():
            from safetensors.torch import load_file

            latent = load_file(str(path))["latent"]
        else:
            latent = self.encode(image)
            if path is not None:
                from safetensors.torch import save_file

                path.parent.mkdir(parents=True, exist_ok=True)
                save_file({"latent": latent.contiguous()}, str(path))
        self.memory[k] = latent
        return latent


# ---- training -------------------------------------------------------------------------------------

@dataclass
class Example:
    key: str
    image: np.ndarray
    caption: str


def prepare_examples(dataset: TrainingSet, cfg: TrainConfig, settings: dict[str, Any],
                     on_skip: Callable[[str, str], None] | None = None) -> list[Example]:
    resolution = cfg.resolution or int(settings.get("resolution", 512))
    # the TOML's bucket limits, kept within [resolution / 2, 2 x resolution] when `resolution` overrides it
    steps = min(int(settings.get("bucket_reso_steps", 64)), resolution // 2)
    options = buckets(resolution, steps, max(32, min(int(settings.get("min_bucket_reso", 256)), resolution // 2)),
                      max(resolution, min(int(settings.get("max_bucket_reso", 1024)), resolution * 2)))
    examples = []
    for key in sorted(dataset.images):
        try:
            image = np.asarray(Image.fromarray(materialise(dataset.images[key])).convert("RGB"))
        except (OSError, ValueError) as err:
            log.warning("Training set '%s': skipped '%s': %s", dataset.name, key, err)
            if on_skip:
                on_skip(key, str(err))
            continue
        caption = (dataset.captions.get(key) or "").strip()
        if not caption:
            if cfg.missing_caption != "trigger":
                raise ValueError(f"Image '{key}' of '{dataset.name}' has no caption (missing_caption: error; "
                                 f"'trigger' trains it with the trigger word alone)")
            caption = dataset.trigger
        examples.append(Example(key, fit_to_bucket(image, options), caption))
    return examples


def bucket_batches(examples: list[Example], repeats: int, batch_size: int, rng: random.Random) -> list[list[Example]]:
    """kohya: a batch holds images of one bucket size; buckets shuffled within, batches shuffled across."""
    by_size: dict[tuple, list[Example]] = {}
    for e in examples:
        by_size.setdefault(e.image.shape, []).extend([e] * repeats)
    batches = []
    for size in sorted(by_size):
        items = by_size[size]
        rng.shuffle(items)
        batches += [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
    rng.shuffle(batches)
    return batches


def split_validation(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(examples) * fraction)) if len(examples) > 1 and fraction > 0 else 0
    val = [examples[i] for i in sorted(order[:n_val])]
    return [examples[i] for i in sorted(order[n_val:])], val


def train_lora(base: BaseModel, dataset: TrainingSet, cfg: TrainConfig,
               on_step: Callable[[dict[str, float]], None] | None = None,
               should_stop: Callable[[int, float], bool] | None = None) -> TrainResult:
    """Train a LoRA on `dataset`. `on_step` receives {step, loss, lr[, val_loss]} (logging comes from the
    caller, e.g. MLflow); `should_stop(step, val_loss)` lets a pruner end the run early."""
    from accelerate import Accelerator
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import compute_snr

    check_network_dim(base, cfg)
    settings = subset_settings(dataset)
    batch_size = cfg.train_batch_size or int(settings.get("batch_size", 1))
    repeats = int(settings.get("num_repeats", 1))
    examples = prepare_examples(dataset, cfg, settings)
    if not examples:
        raise ValueError(f"Training set '{dataset.name}' has no readable image")
    train_set, val_set = split_validation(examples, cfg.validation_split, cfg.seed)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    unet, text_encoder = add_lora(base, cfg)
    if cfg.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    on_gpu = torch.cuda.is_available()
    if cfg.mixed_precision == "fp16" and not on_gpu:
        log.warning("mixed_precision fp16 needs a GPU; training in float32 on the CPU")
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision if on_gpu or cfg.mixed_precision != "fp16" else "no",
                              gradient_accumulation_steps=cfg.gradient_accumulation_steps, cpu=not on_gpu)
    groups = [{"params": [p for p in unet.parameters() if p.requires_grad], "lr": cfg.learning_rate}]
    if cfg.text_encoder_lr > 0:
        groups.append({"params": [p for p in text_encoder.parameters() if p.requires_grad], "lr": cfg.text_encoder_lr})
    optimizer = make_optimizer(cfg, groups)
    flip, shuffle = bool(settings.get("flip_aug")), bool(settings.get("shuffle_caption"))
    keep = int(settings.get("keep_tokens", 0))
    dropout = cfg.caption_dropout_rate or float(settings.get("caption_dropout_rate", 0.0))
    per_epoch = len(bucket_batches(train_set, repeats, batch_size, random.Random(0)))
    total_steps = math.ceil(per_epoch * cfg.max_train_epochs / cfg.gradient_accumulation_steps)
    scheduler = get_scheduler(cfg.lr_scheduler, optimizer, num_warmup_steps=cfg.lr_warmup_steps,
                              num_training_steps=total_steps, num_cycles=cfg.lr_scheduler_num_cycles,
                              power=cfg.lr_scheduler_power)
    unet, text_encoder, optimizer, scheduler = accelerator.prepare(unet, text_encoder, optimizer, scheduler)
    cache = LatentCache(base, cfg.cache_dir if cfg.cache_latents_to_disk else None)
    text_cache: dict[str, torch.Tensor] = {}
    tag_frequency = Counter(t.strip() for e in examples for t in e.caption.split(",") if t.strip())

    def latents_of(ex: Example, flipped: bool) -> torch.Tensor:
        image = ex.image[:, ::-1].copy() if flipped else ex.image
        return cache.get(image) if cfg.cache_latents else cache.encode(image)

    def text_of(captions: list[str]) -> torch.Tensor:
        if cfg.text_encoder_lr > 0 or not cfg.cache_text_encoder_outputs:
            with torch.set_grad_enabled(cfg.text_encoder_lr > 0):
                return encode_text(base, text_encoder, captions, cfg.clip_skip)
        missing = [c for c in dict.fromkeys(captions) if c not in text_cache]  # frozen: encode each text once
        if missing:
            with torch.no_grad():
                for c, h in zip(missing, encode_text(base, text_encoder, missing, cfg.clip_skip)):
                    text_cache[c] = h
        return torch.stack([text_cache[c] for c in captions])

    def loss_of(latents, captions, noise, timesteps, reduce=True):
        noisy = base.noise_scheduler.add_noise(latents, noise, timesteps)
        pred = unet(noisy, timesteps, text_of(captions)).sample
        loss = F.mse_loss(pred.float(), noise.float(), reduction="none").mean(dim=(1, 2, 3))
        if cfg.min_snr_gamma:
            snr = compute_snr(base.noise_scheduler, timesteps)
            loss = loss * torch.clamp(snr, max=cfg.min_snr_gamma) / snr
        return loss.mean() if reduce else loss

    @torch.no_grad()
    def validation_loss() -> float:
        """Fixed timesteps and noise: the same number for the same weights."""
        if not val_set:
            return float("nan")
        gen = torch.Generator().manual_seed(1234)
        losses = []
        for ex in val_set:
            lat = latents_of(ex, False)[None]
            for t in (100, 300, 500, 700, 900):
                noise = torch.randn(lat.shape, generator=gen)
                losses.append(float(loss_of(lat, [ex.caption], noise, torch.tensor([t]))))
        return float(np.mean(losses))

    state = {"step": 0, "epoch": 0}
    ckpt_dir = Path(cfg.cache_dir) / "checkpoints" / dataset.name if cfg.cache_dir else None
    if cfg.resume and ckpt_dir and (ckpt_dir / "last.pt").exists():
        state = load_checkpoint(ckpt_dir / "last.pt", unet, text_encoder, optimizer, scheduler, rng)
        log.info("Resumed '%s' at step %d", dataset.name, state["step"])
    history, saved = [], {}
    val = validation_loss()
    history.append({"step": state["step"], "val_loss": val})
    order_rng = random.Random(cfg.seed)
    with tqdm(total=total_steps, initial=state["step"], desc=f"train {dataset.name}", unit="step") as bar:
        micro = 0
        for epoch in range(cfg.max_train_epochs):
            batches = bucket_batches(train_set, repeats, batch_size, order_rng)  # same order when resumed
            for batch in batches:
                micro += 1
                if micro <= state["step"] * cfg.gradient_accumulation_steps:
                    continue  # already trained before the resume
                latents = torch.stack([latents_of(e, flip and rng.random() < 0.5) for e in batch])
                captions = [make_caption(e.caption, shuffle, keep, dropout, rng) for e in batch]
                noise = torch.randn_like(latents)
                if cfg.noise_offset:  # kohya's noise offset: a per-channel constant, for darker/brighter images
                    noise = noise + cfg.noise_offset * torch.randn(latents.shape[0], latents.shape[1], 1, 1)
                timesteps = torch.randint(0, base.noise_scheduler.config.num_train_timesteps, (len(batch),))
                with accelerator.accumulate(unet):
                    loss = loss_of(latents, captions, noise, timesteps)
                    if not torch.isfinite(loss):
                        raise FloatingPointError(
                            f"Loss became {float(loss)} at step {state['step']} of '{dataset.name}'; the last good "
                            f"checkpoint is {ckpt_dir / 'last.pt' if ckpt_dir else 'not kept (set cache_dir)'}")
                    accelerator.backward(loss)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                if not accelerator.sync_gradients:
                    continue
                state["step"] += 1
                bar.update()
                record = {"step": state["step"], "loss": float(loss), "lr": float(scheduler.get_last_lr()[0])}
                if cfg.validate_every_n_steps and state["step"] % cfg.validate_every_n_steps == 0:
                    record["val_loss"] = validation_loss()
                history.append(record)
                if on_step:
                    on_step(record)
                if ckpt_dir and cfg.checkpoint_every_n_steps and state["step"] % cfg.checkpoint_every_n_steps == 0:
                    save_checkpoint(ckpt_dir / "last.pt", unet, text_encoder, optimizer, scheduler, rng, state)
                if should_stop and "val_loss" in record and should_stop(state["step"], record["val_loss"]):
                    log.info("Stopped early at step %d (pruned)", state["step"])
                    return TrainResult(unet, text_encoder, pd.DataFrame(history), state["step"], epoch + 1,
                                       dict(tag_frequency), cfg, {"pruned": True})
            state["epoch"] = epoch + 1
            if cfg.save_every_n_epochs and state["epoch"] % cfg.save_every_n_epochs == 0 \
                    and state["epoch"] < cfg.max_train_epochs:  # kohya's name-000002.safetensors …
                saved[state["epoch"]] = (_lora_state(unet), _lora_state(text_encoder))
    final = validation_loss()
    history.append({"step": state["step"], "val_loss": final})
    return TrainResult(unet, text_encoder, pd.DataFrame(history), state["step"], cfg.max_train_epochs,
                       dict(tag_frequency), cfg, {"final_val_loss": final, "epoch_states": saved})


def _lora_state(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items() if "lora_" in k}


def save_checkpoint(path: Path, unet, text_encoder, optimizer, scheduler, rng: random.Random, state: dict) -> None:
    """LoRA weights, optimizer, scheduler, RNG states and the step (the one documented node I/O: resume)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    py_state = rng.getstate()
    torch.save({"unet": _lora_state(unet), "text_encoder": _lora_state(text_encoder),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(), "py_rng": [py_state[0], list(py_state[1]), py_state[2]],
                "state": dict(state)}, str(path) + ".tmp")
    Path(str(path) + ".tmp").replace(path)


def load_checkpoint(path: Path, unet, text_encoder, optimizer, scheduler, rng: random.Random) -> dict:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    unet.load_state_dict(ckpt["unet"], strict=False)
    text_encoder.load_state_dict(ckpt["text_encoder"], strict=False)
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    torch.set_rng_state(ckpt["torch_rng"])
    version, internal, gauss = ckpt["py_rng"]
    rng.setstate((version, tuple(internal), gauss))
    return dict(ckpt["state"])


def describe(result: TrainResult, dataset: TrainingSet, base: BaseModel) -> dict[str, str]:
    """kohya's ss_* metadata (strings) plus modelspec.* for the exported file."""
    cfg = result.config
    return {
        "ss_network_module": "networks.lora", "ss_network_dim": str(cfg.network_dim),
        "ss_network_alpha": str(float(cfg.network_alpha)), "ss_learning_rate": str(cfg.learning_rate),
        "ss_unet_lr": str(cfg.learning_rate), "ss_text_encoder_lr": str(cfg.text_encoder_lr),
        "ss_num_epochs": str(result.epochs), "ss_epoch": str(result.epochs), "ss_max_train_steps": str(result.steps),
        "ss_steps": str(result.steps), "ss_optimizer": cfg.optimizer_type, "ss_lr_scheduler": cfg.lr_scheduler,
        "ss_seed": str(cfg.seed), "ss_clip_skip": str(cfg.clip_skip), "ss_min_snr_gamma": str(cfg.min_snr_gamma),
        "ss_noise_offset": str(cfg.noise_offset), "ss_mixed_precision": cfg.mixed_precision,
        "ss_save_precision": cfg.save_precision, "ss_gradient_accumulation_steps": str(cfg.gradient_accumulation_steps),
        "ss_tag_frequency": json.dumps({dataset.name: result.tag_frequency}),
        "ss_dataset_dirs": json.dumps({dataset.name: {"n_repeats": int(subset_settings(dataset).get("num_repeats", 1)),
                                                      "img_count": len(dataset.images)}}),
        "ss_sd_model_name": base.name, "ss_sd_model_hash": base.model_hash, "sshs_model_hash": base.model_hash,
        "ss_base_model_version": "sd_v1", "ss_v2": "False", "ss_output_name": dataset.name,
        "modelspec.architecture": "stable-diffusion-v1/lora", "modelspec.implementation": "diffusers",
        "modelspec.title": dataset.name, "modelspec.trigger_phrase": dataset.trigger,
    }
