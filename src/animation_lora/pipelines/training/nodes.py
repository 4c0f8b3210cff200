"""Training: the hyper-parameter search on the character set, then one LoRA per dataset with the best
hyper-parameters; kohya-format export; histories and sample images for MLflow."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import torch
from PIL import Image

from ...backends.diffusion import make_base_model
from ...hpo import best_hyperparameters, convergence_plot, run_search, trials_table
from ...imaging import contact_sheet
from ...training_set import TrainingSet
from ...lora_format import LoraFile, to_kohya
from ...lora_training import TrainConfig, TrainResult, _lora_state, describe, train_lora

log = logging.getLogger(__name__)


def search_hyperparameters(lora_dataset: TrainingSet, training: dict[str, Any], diffusion: dict[str, Any],
                           ) -> tuple[dict[str, Any], pd.DataFrame, Image.Image]:
    """Optuna search on the character set (seed: 50 trials, convergence monitor). Outputs:
    best_hyperparameters (the seed's keys), hpo_trials, hpo_convergence (picture)."""
    base = make_base_model(diffusion)
    search = training["search"]

    def objective(params: dict[str, Any], report) -> float:
        cfg = TrainConfig.from_params({**training["args"], **search.get("trial_args", {}), **params})
        result = train_lora(base, lora_dataset, cfg, should_stop=report)
        return float(result.extra.get("final_val_loss", result.history.val_loss.dropna().iloc[-1]))

    study, monitor = run_search(objective, search)
    best = best_hyperparameters(study, training["args"])
    log.info("Best hyper-parameters (trial %d, validation loss %.4f): %s", study.best_trial.number, study.best_value, best)
    return best, trials_table(study), convergence_plot(study, monitor.stopped_at)


def sample_grid(result: TrainResult, base, prompts: list[str], trigger: str, sampling: dict[str, Any]) -> Image.Image:
    """Sample images for the sample prompts (trigger filled in): a row per saved epoch, the last row the final
    LoRA."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(vae=base.vae, text_encoder=result.text_encoder, tokenizer=base.tokenizer,
                                   unet=result.unet, scheduler=base.sample_scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    texts = [p.format(trigger=trigger) for p in prompts]
    final = (_lora_state(result.unet), _lora_state(result.text_encoder))
    images, captions = [], []
    for epoch, (unet_state, te_state) in [*sorted(result.extra.get("epoch_states", {}).items()),
                                          (result.epochs, final)]:
        result.unet.load_state_dict(unet_state, strict=False)
        result.text_encoder.load_state_dict(te_state, strict=False)
        for t in texts:
            image = pipe(t, num_inference_steps=sampling["steps"], height=sampling["size"], width=sampling["size"],
                         generator=torch.Generator().manual_seed(sampling["seed"]), output_type="np").images[0]
            images.append((image * 255).round().astype("uint8"))
            captions.append(f"epoch {epoch}: {t}")
    return Image.fromarray(contact_sheet(images, captions, thumb=max(128, sampling["size"]), cols=len(texts),
                                         title=f"{trigger}: samples per saved epoch"))


def train(lora_dataset: TrainingSet, best: dict[str, Any], training: dict[str, Any], diffusion: dict[str, Any],
          ) -> tuple[LoraFile, dict[str, LoraFile], pd.DataFrame, dict[str, list[dict[str, float]]], Image.Image]:
    """Train one LoRA with the searched hyper-parameters. Outputs: the LoRA (kohya format + metadata), the
    per-epoch saves (`save_every_n_epochs`, kohya's name-000002 …), its history (loss, lr, validation loss per
    step), the same as MLflow metric histories, sample images per saved epoch."""
    base = make_base_model(diffusion)
    args = {**training["args"], **best}
    if training.get("text_encoder_lr_ratio") is not None:  # seed: text_encoder_lr = 0.8 x learning_rate
        args["text_encoder_lr"] = training["text_encoder_lr_ratio"] * args["learning_rate"]
    cfg = TrainConfig.from_params(args)
    result = train_lora(base, lora_dataset, cfg)
    with_te = cfg.text_encoder_lr > 0
    tensors = to_kohya(result.unet, result.text_encoder if with_te else None,
                       alpha=cfg.network_alpha, save_precision=cfg.save_precision)
    metadata = describe(result, lora_dataset, base)
    epochs = {f"{lora_dataset.name}-{epoch:06d}": LoraFile(
        to_kohya(u, t if with_te else None, alpha=cfg.network_alpha, save_precision=cfg.save_precision),
        {**metadata, "ss_epoch": str(epoch)}) for epoch, (u, t) in result.extra.get("epoch_states", {}).items()}
    history = result.history
    metrics = {name: [{"step": int(step), "value": float(value)}
                      for step, value in zip(history.step, history[name]) if pd.notna(value)]
               for name in ("loss", "lr", "val_loss") if name in history}
    samples = sample_grid(result, base, training["sample_prompts"], lora_dataset.trigger, training["sampling"])
    return LoraFile(tensors, metadata), epochs, history, metrics, samples
