"""Training to convergence (issue 24, part 2): the shared plateau rule, the early stop that keeps the LoRA
of the best validation loss, the step budget, and a batched validation equal to the one-at-a-time loss."""

import math

import numpy as np
import pytest
import torch

from animation_lora.convergence import plateaued
from animation_lora.training import LatentCache, TrainConfig, train_lora
from animation_lora.training.config import dataset_settings
from animation_lora.training.data import batch_masks, example_latents, prepare_examples
from animation_lora.training.loss import VALIDATION_TIMESTEPS, masked_mse, min_snr_weighted, validation_loss
from animation_lora.training.model import encode_captions, predict_noise

from .test_lora_training import FAST, base, dataset  # noqa: F401  (fixtures)


@pytest.mark.parametrize(
    "curve, patience, rel_tol, expected",
    [
        ([1.0, 0.9, 0.8, 0.7], 2, 0.0, False),  # still improving
        ([1.0, 0.8, 0.85, 0.81], 2, 0.0, True),  # the best (0.8) came before the last two
        ([1.0, 0.8, 0.79, 0.795], 2, 0.05, True),  # 0.79 improves 0.8 by 1.25 %: under 5 %
        ([1.0, 0.8, 0.79, 0.795], 2, 0.01, False),  # ... over 1 %
        ([1.0, 0.9], 2, 0.0, False),  # not enough values yet
        ([1.0, 2.0, 3.0], 0, 0.0, False),  # patience 0: never
        ([float("nan"), 1.0, 1.1], 2, 0.0, False),  # NaN (no validation set) is not a value: 2 values
    ],
)
def test_plateau_rule(curve, patience, rel_tol, expected):
    assert plateaued(curve, patience, rel_tol) is expected


def test_batched_validation_equals_one_example_at_a_time(base, dataset):  # noqa: F811
    cfg = TrainConfig(**FAST)
    examples = prepare_examples(dataset, cfg, dataset_settings(dataset))
    cache, gen, losses = LatentCache(base, None), torch.Generator().manual_seed(1234), []
    with torch.no_grad():
        for ex in examples:
            latents = example_latents(cache, ex, False, True)[None]
            for t in VALIDATION_TIMESTEPS:
                noise = torch.randn(latents.shape, generator=gen)
                timesteps = torch.tensor([t])
                noisy = base.noise_scheduler.add_noise(latents, noise, timesteps)
                text = encode_captions(base, base.text_encoder, [ex.caption], cfg, {})
                pred = predict_noise(base.unet, noisy, timesteps, text, None)
                loss = masked_mse(pred, noise, batch_masks([ex], [False], "cpu"))
                losses.append(float(min_snr_weighted(loss, timesteps, base.noise_scheduler, 5.0)))
    assert validation_loss(base, cfg, base.unet, base.text_encoder, examples) == pytest.approx(
        np.mean(losses), rel=1e-5
    )


def _lora(result) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in result.unet.state_dict().items() if "lora_" in k}


def test_early_stop_keeps_the_lora_of_the_best_validation_loss(base, dataset):  # noqa: F811
    # a rate this high makes the validation curve turn up quickly; 5 % tolerance, 2 validations of patience
    cfg = dict(FAST, learning_rate=0.05, max_train_epochs=30, validate_every_n_steps=1)
    stop = dict(early_stopping_patience=2, early_stopping_rel_tol=0.05)
    stopped = train_lora(base, dataset, TrainConfig(**cfg, **stop))
    curve = [v for v in stopped.history.val_loss.tolist()[:-1] if not math.isnan(v)]
    full_steps = 30 * 2  # 4 training images (6, 20 % held out: 2) in batches of 2, 30 epochs
    assert stopped.steps < full_steps
    assert plateaued(curve, 2, 0.05) and not plateaued(curve[:-1], 2, 0.05)  # it stopped at the first plateau
    best = int(np.argmin(curve))
    # the LoRA returned is the one of the lowest validation loss: its loss, measured again, is that minimum
    assert stopped.extra["final_val_loss"] == pytest.approx(curve[best], rel=1e-5)
    assert stopped.extra["best_step"] == stopped.history.dropna(subset=["val_loss"]).step.iloc[best]
    # ... and the same weights as a run trained to exactly that step
    replay = train_lora(base, dataset, TrainConfig(**cfg, max_train_steps=int(stopped.extra["best_step"])))
    a, b = _lora(stopped), _lora(replay)
    if stopped.extra["best_step"] > 0:
        assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6


def test_step_budget_ends_training_and_sizes_the_schedule(base, dataset):  # noqa: F811
    cfg = TrainConfig(**dict(FAST, max_train_epochs=10, lr_scheduler="linear"), max_train_steps=5)
    result = train_lora(base, dataset, cfg)
    assert result.steps == 5
    lrs = result.history.dropna(subset=["lr"]).lr.tolist()
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)  # the linear schedule ends at the budget, not at epoch 10
