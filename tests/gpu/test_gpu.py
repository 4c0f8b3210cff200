"""GPU paths (marker `gpu`, skipped without CUDA; no Kedro needed): fp16/bf16 training, kill-and-resume and
every composition strategy on the GPU, each compared with the CPU path. Tolerances: noise, timesteps and
sampling noise are drawn on the CPU (the same draws on both devices), so the differences are kernel and
precision differences only."""

import numpy as np
import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

FAST = dict(
    network_dim=4,
    network_alpha=4,
    learning_rate=1e-3,
    resolution=64,
    train_batch_size=2,
    max_train_epochs=10,
    validate_every_n_steps=5,
    validation_split=0.25,
)


def _dataset():
    from animation_lora.lora_dataset import build_lora_dataset

    rng = np.random.default_rng(0)
    images = {f"img{k}": rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for k in range(5)}
    captions = {k: f"marco, 3d animated character, pose {i}" for i, k in enumerate(images)}
    params = {"target_size": 5, "resolution": 64, "batch_size": 2}
    return build_lora_dataset("marco", "marco", images, captions, {k: 1.0 for k in images}, None, params)


def _base(device, dtype="float32"):
    from animation_lora.backends.diffusion import tiny

    return tiny(seed=0, device=device, dtype=dtype)


def _train(device, **args):
    from animation_lora.training import TrainConfig, train_lora

    return train_lora(
        _base(device, args.pop("dtype", "float32")), _dataset(), TrainConfig.from_params({**FAST, **args})
    )


@pytest.mark.parametrize("precision, dtype", [("fp16", "float16"), ("bf16", "bfloat16")])
def test_twenty_steps_in_half_precision_match_the_cpu(precision, dtype):
    """20 steps (10 epochs of 2 batches), frozen weights in fp16/bf16: finite, LoRA in float32, and the
    validation loss within 0.05 of the CPU float32 run's."""
    from animation_lora.training import lora_state

    gpu = _train("cuda", mixed_precision=precision, dtype=dtype)
    cpu = _train("cpu")
    assert gpu.steps == cpu.steps == 20
    assert np.isfinite(gpu.history.loss.dropna()).all()
    assert all(v.dtype == torch.float32 and v.is_cuda for v in lora_state(gpu.unet).values())
    assert abs(gpu.extra["final_val_loss"] - cpu.extra["final_val_loss"]) < 0.05


def test_kill_and_resume_on_the_gpu_ends_at_the_same_weights(tmp_path):
    from animation_lora.training import lora_state

    args = dict(cache_dir=str(tmp_path), checkpoint_every_n_steps=4, max_train_epochs=4)
    full = lora_state(_train("cuda", **args, cache_latents_to_disk=False).unet)
    for p in tmp_path.rglob("*.pt"):
        p.unlink()
    _train("cuda", **{**args, "max_train_epochs": 2})  # "killed" after epoch 2 (checkpoint at step 4)
    resumed = lora_state(_train("cuda", **args, resume=True).unet)
    assert max(float((full[k] - resumed[k]).abs().max()) for k in full) < 1e-4


def test_every_composition_strategy_on_the_gpu_matches_the_cpu():
    from animation_lora.composition.composer import STRATEGIES, Composer
    from animation_lora.composition.parameters import Sampling
    from animation_lora.composition.prompts import Request
    from animation_lora.lora_format import LoraFile, to_kohya

    trained = _train("cpu", max_train_epochs=1)
    lora = LoraFile(to_kohya(trained.unet, None, 4.0, "float"), {})
    half = LoraFile({k: v * 0.5 if "lora_up" in k else v for k, v in lora.tensors.items()}, {})
    settings = Sampling(steps=4, guidance_scale=7.5, width=64, height=64, switch_every=1)
    request = Request("marco", {"a": 1.0, "b": 0.7})
    images = {}
    for device in ("cpu", "cuda"):
        composer = Composer(_base(device), {"a": lora, "b": half})
        images[device] = {s: composer.generate(s, request, settings, 0) for s in STRATEGIES}
    for s in STRATEGIES:
        assert np.abs(images["cpu"][s] - images["cuda"][s]).max() < 2e-2, s


def test_sdxl_in_bf16_on_the_gpu_matches_the_cpu():
    """The tiny SDXL base: 20 steps with bf16 frozen weights and mixed precision on the GPU (pooled
    embedding and size ids on the device) end within 0.05 of the CPU float32 run's validation loss."""
    from animation_lora.backends.diffusion import tiny_sdxl
    from animation_lora.training import TrainConfig, train_lora

    def train(device, **args):
        base = tiny_sdxl(seed=0, device=device, dtype=args.pop("dtype", "float32"))
        return train_lora(base, _dataset(), TrainConfig.from_params({**FAST, **args}))

    gpu = train("cuda", mixed_precision="bf16", dtype="bfloat16")
    cpu = train("cpu")
    assert gpu.steps == cpu.steps == 20
    assert abs(gpu.history.val_loss.dropna().iloc[-1] - cpu.history.val_loss.dropna().iloc[-1]) < 0.05
