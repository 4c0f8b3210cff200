"""Training: the hyper-parameter search on the character set, then one LoRA per dataset with the best
hyper-parameters; kohya-format export; histories and sample images for MLflow."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pandas as pd
import torch
from PIL import Image, ImageDraw

from ...backends.diffusion import make_base_model
from ...experiments import tracker
from ...hpo import best_hyperparameters, convergence_plot, run_search, trials_table
from ...imaging import contact_sheet
from ...lora_dataset import TrainingSet
from ...lora_format import LoraFile, describe, to_kohya
from ...training import TrainConfig, TrainResult, lora_state, train_lora
from ...training.checkpoint import training_set_fingerprint
from .parameters import SampleImages, Training

log = logging.getLogger(__name__)


def search_hyperparameters(
    lora_dataset: TrainingSet,
    training: Training,
    diffusion: dict[str, Any],
) -> dict[str, Any]:
    """Optuna search on the character set (the brief asks for 50 trials and a convergence monitor). Outputs:
    best_hyperparameters (the brief's keys), hpo_trials, hpo_convergence (picture)."""
    search = training.search
    if search is None:
        raise ValueError("Invalid parameters: `training.search`: missing (the search's storage and space)")
    TrainConfig.from_params(training.args)  # a bad value in training.args is named before any trial
    searched = {"network_alpha" if k == "network_alpha_ratio" else k for k in search.space}
    overlap = {k: training.args[k] for k in sorted(searched & set(training.args))}
    if overlap:
        log.warning(
            "training.args %s are searched: the search's values (training.search.space) replace them",
            ", ".join(f"{k}={v!r}" for k, v in overlap.items()),
        )
    base = make_base_model(diffusion)

    def objective(params: dict[str, Any], report) -> float:
        cfg = TrainConfig.from_params({**training.args, **search.trial_args, **params})
        result = train_lora(base, lora_dataset, cfg, should_stop=report)
        return float(result.extra.get("final_val_loss", result.history.val_loss.dropna().iloc[-1]))

    study, monitor = run_search(objective, search, training.args, training_set_fingerprint(lora_dataset))
    best = best_hyperparameters(study, training.args)
    log.info(
        "Best hyper-parameters (trial %d, validation loss %.4f): %s",
        study.best_trial.number,
        study.best_value,
        best,
    )
    return {
        "best_hyperparameters": best,
        "hpo_trials": trials_table(study),
        "hpo_convergence": convergence_plot(study, monitor.stopped_at),
    }


Metrics = dict[str, list[dict[str, float]]]  # MLflow metric histories: name -> [{step, value}]
TRAINED = ("lora", "lora_epochs", "training_history", "training_metrics", "training_samples")  # `train`'s


def train(
    lora_dataset: TrainingSet,
    best: dict[str, Any],
    training: Training,
    diffusion: dict[str, Any],
) -> dict[str, Any]:
    """Train one LoRA with the searched hyper-parameters. Outputs: lora (kohya format + metadata),
    lora_epochs (`save_every_n_epochs`, kohya's name-000002 …), training_history (loss, lr, validation loss
    per step), training_metrics (the same as MLflow metric histories), training_samples (sample images per
    saved epoch). A dataset with nothing to teach (`nothing_to_teach`) gives a LoRA without weights that says
    why."""
    if lora_dataset.skipped:
        return not_trained(lora_dataset)
    base = make_base_model(diffusion)
    args = {**training.args, **best}
    if training.text_encoder_lr_ratio is not None:
        args["text_encoder_lr"] = training.text_encoder_lr_ratio * args["learning_rate"]
    cfg = TrainConfig.from_params(args)
    with tracker().start(f"{lora_dataset.name} LoRA", "lora", key=lora_dataset.name) as run:
        run.log_params({k: v for k, v in dataclasses.asdict(cfg).items() if v is not None})  # as trained
        run.log_params({"dataset": lora_dataset.name, "trigger": lora_dataset.trigger})
        result = train_lora(
            base,
            lora_dataset,
            cfg,
            on_step=lambda r: run.log_metrics({k: v for k, v in r.items() if k != "step"}, r["step"]),
        )
        run.log_params({f"bucket_{w}x{h}": n for (w, h), n in result.buckets.items()})  # kohya's histogram
        if "final_val_loss" in result.extra:  # a finished run: its loss, when it was best, validation's cost
            finished = ("final_val_loss", "best_step", "validation_share")
            run.log_metrics({k: float(result.extra[k]) for k in finished}, result.steps)
        return trained_outputs(result, lora_dataset, base, cfg, training)


def not_trained(dataset: TrainingSet) -> dict[str, Any]:
    """`train`'s outputs for a dataset with nothing to teach: no weights, no history, a note as samples."""
    log.warning("The '%s' LoRA is not trained: %s", dataset.name, dataset.skipped)
    note = Image.new("RGB", (640, 40), "white")
    ImageDraw.Draw(note).text((8, 14), f"{dataset.name}: not trained: {dataset.skipped}", fill="black")
    history = pd.DataFrame({"step": pd.Series(dtype="int64"), "loss": pd.Series(dtype="float64")})
    lora = LoraFile.not_trained(dataset.name, dataset.skipped)
    return dict(zip(TRAINED, (lora, {}, history, {}, note), strict=True))


def trained_outputs(
    result: TrainResult, lora_dataset: TrainingSet, base, cfg: TrainConfig, training: Training
) -> dict[str, Any]:
    """The trained LoRA as `train`'s outputs: kohya tensors + metadata, per-epoch saves, history, metrics,
    samples."""
    with_te = cfg.trains_text_encoder

    def kohya(unet, text_encoder):
        return to_kohya(unet, text_encoder if with_te else None, alpha=cfg.network_alpha,
                        save_precision=cfg.save_precision, architecture=base.architecture)

    tensors = kohya(result.unet, result.text_encoder)  # before the samples load each epoch's weights
    metadata = describe(result, lora_dataset, base)
    epochs = {
        f"{lora_dataset.name}-{epoch:06d}": LoraFile(kohya(u, t), {**metadata, "ss_epoch": str(epoch)})
        for epoch, (u, t) in result.extra.get("epoch_states", {}).items()
    }
    history = result.history
    metrics = {
        name: [
            {"step": int(step), "value": float(value)}
            for step, value in zip(history.step, history[name], strict=True)
            if pd.notna(value)
        ]
        for name in ("loss", "lr", "val_loss")
        if name in history
    }
    samples = sample_grid(result, base, training.sample_prompts, lora_dataset.trigger, training.sampling)
    return dict(zip(TRAINED, (LoraFile(tensors, metadata), epochs, history, metrics, samples), strict=True))


def sample_grid(
    result: TrainResult,
    base,
    prompts: list[str],
    trigger: str,
    sampling: SampleImages,
) -> Image.Image:
    """Sample images for the sample prompts (trigger filled in): a row per saved epoch, the last row the final
    LoRA."""
    pipe = base.pipeline(unet=result.unet, text_encoder=result.text_encoder)
    pipe.set_progress_bar_config(disable=True)
    texts = [p.format(trigger=trigger) for p in prompts]
    final = (lora_state(result.unet), lora_state(result.text_encoder))
    images, captions = [], []
    for epoch, (unet_state, te_state) in [
        *sorted(result.extra.get("epoch_states", {}).items()),
        (result.epochs, final),
    ]:
        result.unet.load_state_dict(unet_state, strict=False)
        result.text_encoder.load_state_dict(te_state, strict=False)
        for t in texts:
            image = pipe(
                t,
                num_inference_steps=sampling.steps,
                height=sampling.size,
                width=sampling.size,
                generator=torch.Generator().manual_seed(sampling.seed),
                output_type="np",
            ).images[0]
            images.append((image * 255).round().astype("uint8"))
            captions.append(f"epoch {epoch}: {t}")
    return Image.fromarray(
        contact_sheet(
            images,
            captions,
            thumb=max(128, sampling.size),
            cols=len(texts),
            title=f"{trigger}: samples per saved epoch",
        )
    )
