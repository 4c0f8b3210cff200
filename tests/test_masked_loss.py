"""kohya's `masked_loss` with `alpha_mask`: the alpha channel (0: invented pixels) weights the denoising
loss; RGB images, an all-255 alpha or `masked_loss: false` train exactly as before."""

import numpy as np
import pytest
import torch

from animation_lora.backends.diffusion import make_base_model
from animation_lora.datasets.kohya import read_kohya, write_kohya
from animation_lora.lora_dataset import build_lora_dataset
from animation_lora.training import TrainConfig, dataset_settings, train_lora
from animation_lora.training.data import batch_masks, prepare_examples
from animation_lora.training.loss import masked_mse, validation_loss

PARAMS = {"target_size": 4, "resolution": 64, "batch_size": 2}


@pytest.fixture(scope="module")
def base():
    return make_base_model({"backend": "tiny", "tiny": {"seed": 0}})


def rgba_set(alpha_right: int, rgb_only: bool = False):
    rng = np.random.default_rng(0)
    images = {}
    for k in range(4):
        rgb = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        alpha = np.full((64, 64, 1), 255, np.uint8)
        alpha[:, 32:] = alpha_right  # the right half: invented (0) or known (255)
        images[f"p{k}"] = rgb if rgb_only else np.concatenate([rgb, alpha], axis=2)
    captions = {k: f"town, background, view {k}" for k in images}
    return build_lora_dataset("town", "town", images, captions, {k: 1.0 for k in images}, None, PARAMS)


def test_the_masked_half_gives_no_gradient_and_changing_it_changes_nothing():
    torch.manual_seed(0)
    pred, target = torch.randn(2, 4, 8, 8, requires_grad=True), torch.randn(2, 4, 8, 8)
    masks = torch.ones(2, 1, 64, 64)
    masks[..., 32:] = 0  # pixel resolution; the latents are 8x smaller: columns 4.. are masked
    loss = masked_mse(pred, target, masks)
    loss.sum().backward()
    assert (pred.grad[..., 4:] == 0).all() and (pred.grad[..., :4] != 0).all()
    changed = target.clone()
    changed[..., 4:] += 5
    assert torch.equal(masked_mse(pred, changed, masks), loss)
    # the mean over the known half: the scale of an unmasked loss
    expected = ((pred[..., :4] - target[..., :4]) ** 2).mean(dim=(1, 2, 3))
    assert torch.allclose(loss, expected, atol=1e-6)
    assert torch.equal(masked_mse(pred, target, torch.ones(2, 1, 64, 64)), masked_mse(pred, target, None))


def test_the_alpha_travels_into_the_kohya_folder_and_the_examples(tmp_path):
    data = rgba_set(0)
    write_kohya(data, tmp_path / "town", tmp_path / "town", relative=True)
    back = read_kohya(tmp_path / "town")
    assert back.images["p0"]().shape == (64, 64, 4) and back.toml["datasets"][0]["subsets"][0]["alpha_mask"]
    settings = dataset_settings(back)
    on = prepare_examples(back, TrainConfig(masked_loss=True, resolution=64), settings)
    off = prepare_examples(back, TrainConfig(resolution=64), settings)
    assert on[0].mask.shape == (64, 64) and on[0].mask[:, :32].min() == 1 and on[0].mask[:, 32:].max() == 0
    assert all(e.mask is None for e in off)  # kohya's default: masked_loss off
    plain = prepare_examples(rgba_set(0, rgb_only=True), TrainConfig(masked_loss=True, resolution=64),
                             settings)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(on, plain))  # RGB untouched by the alpha
    flipped = batch_masks(on[:1], [True], "cpu")
    assert flipped.shape == (1, 1, 64, 64)
    assert flipped[0, 0, :, 32:].min() == 1 and flipped[0, 0, :, :32].max() == 0


def test_an_all_known_alpha_trains_exactly_like_rgb_and_a_half_mask_differs(base):
    cfg = TrainConfig(masked_loss=True, resolution=64, validation_split=0.0)

    def validation(data):
        examples = prepare_examples(data, cfg, dataset_settings(data))
        return validation_loss(base, cfg, base.unet, base.text_encoder, examples)

    rgb = validation(rgba_set(255, rgb_only=True))
    assert validation(rgba_set(255)) == rgb
    assert abs(validation(rgba_set(0)) - rgb) > 1e-4


def test_training_with_a_mask_runs_and_differs_from_off(base):
    fast = dict(network_dim=4, network_alpha=4, learning_rate=1e-3, max_train_epochs=1, resolution=64,
                train_batch_size=2, validate_every_n_steps=1)
    masked = train_lora(base, rgba_set(0), TrainConfig(masked_loss=True, **fast)).history
    off = train_lora(base, rgba_set(0), TrainConfig(**fast)).history  # masks None: the RGB path, as before
    assert np.isfinite(masked.loss.dropna()).all() and len(masked) == len(off)
    assert not np.allclose(masked.loss.dropna(), off.loss.dropna())
