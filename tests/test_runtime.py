"""Device and precision as configuration (runtime.py) and training on the shared base without copying it:
CPU paths (auto resolves to the CPU here, bf16 autocast and bf16 weights on the CPU)."""

import numpy as np
import pytest
import torch

from animation_lora.backends.diffusion import make_base_model, tiny
from animation_lora.backends.factory import shared_copy
from animation_lora.lora_dataset import build_lora_dataset
from animation_lora.runtime import dtype_on, resolve_device, resolve_dtype, weight_dtype
from animation_lora.training import TrainConfig, lora_state, train_lora

FAST = dict(network_dim=4, network_alpha=4, learning_rate=1e-3, resolution=64, train_batch_size=2)


@pytest.fixture(scope="module")
def dataset():
    rng = np.random.default_rng(1)
    images = {f"img{k}": rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for k in range(4)}
    captions = {k: f"nina, pose {i}" for i, k in enumerate(images)}
    params = {"target_size": 4, "resolution": 64, "batch_size": 2}
    return build_lora_dataset("nina", "nina", images, captions, {k: 1.0 for k in images}, None, params)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_auto_resolves_to_the_cpu_without_a_gpu_and_cuda_is_a_clear_error():
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert tiny(seed=0, device="auto").device == torch.device("cpu")
    with pytest.raises(ValueError, match="device 'cuda:1' asked for, but torch sees no CUDA GPU"):
        resolve_device("cuda:1")


def test_bad_device_and_precision_names_are_named():
    with pytest.raises(ValueError, match="Unknown device 'gpu0'"):
        resolve_device("gpu0")
    with pytest.raises(ValueError, match="Unknown dtype 'half'; choose one of float32, float16, bfloat16"):
        resolve_dtype("half")
    with pytest.raises(ValueError, match="Unknown mixed_precision 'fp8'"):
        weight_dtype("fp8")
    assert weight_dtype("bf16") is torch.bfloat16 and weight_dtype("no") is torch.float32


def test_float16_weights_on_the_cpu_load_as_float32_and_say_so(caplog):
    """conf/studio's `dtype: float16` on a machine without a GPU: float32, with a warning naming the
    parameter (half precision on a CPU is missing kernels or tens of times slower); bfloat16 stays."""
    import logging

    with caplog.at_level(logging.WARNING):
        base = tiny(seed=0, device="cpu", dtype="float16")
    assert base.unet.dtype == torch.float32 and base.vae.dtype == torch.float32
    assert "`diffusion.tiny.dtype` is float16, but the device is the CPU" in caplog.text
    assert tiny(seed=0, device="cpu", dtype="bfloat16").unet.dtype == torch.bfloat16
    assert dtype_on(torch.device("cpu"), "bfloat16", "x") is torch.bfloat16


def test_shared_copy_shares_the_weights_and_not_the_modules():
    base = tiny(seed=0, device="cpu")
    copy = shared_copy(base.unet)
    assert copy is not base.unet and copy.conv_in is not base.unet.conv_in
    assert copy.conv_in.weight is base.unet.conv_in.weight  # no second copy of the weights
    copy.enable_gradient_checkpointing()
    assert not base.unet.is_gradient_checkpointing


def test_training_leaves_the_shared_base_bit_identical_and_holds_no_copy(dataset):
    base = make_base_model({"backend": "tiny", "tiny": {"seed": 0, "device": "cpu"}})
    before = {k: v.clone() for m in (base.unet, base.text_encoder) for k, v in m.state_dict().items()}
    cfg = TrainConfig.from_params({**FAST, "text_encoder_lr": 5e-4, "max_grad_norm": 1.0})
    result = train_lora(base, dataset, cfg)
    after = {k: v for m in (base.unet, base.text_encoder) for k, v in m.state_dict().items()}
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any("lora" in k for k in after)  # adapters live on the trainer's module tree only
    # the trained U-Net's frozen weights are the base's own tensors
    assert result.unet.conv_in.weight.data_ptr() == base.unet.conv_in.weight.data_ptr()
    assert all(v.dtype == torch.float32 for v in lora_state(result.unet).values())


def test_gradient_clipping_changes_the_update_only_when_it_binds(dataset):
    base = make_base_model({"backend": "tiny", "tiny": {"seed": 0, "device": "cpu"}})

    def trained(norm):
        cfg = TrainConfig.from_params({**FAST, "optimizer_type": "SGD", "max_grad_norm": norm})
        return lora_state(train_lora(base, dataset, cfg).unet)

    free, loose, tight = trained(0.0), trained(1e6), trained(1e-4)
    assert all(torch.equal(free[k], loose[k]) for k in free)  # a bound never reached changes nothing
    assert any(not torch.allclose(free[k], tight[k]) for k in free)


@pytest.mark.parametrize("weights", ["float32", "bfloat16"])
def test_bf16_training_on_the_cpu_keeps_lora_weights_in_float32(dataset, weights):
    """bf16 autocast (accelerate) on the CPU, with the frozen base in float32 or in bfloat16 (diffusers'
    weight_dtype): finite losses, LoRA weights float32, close to the float32 run's validation loss."""
    base = make_base_model({"backend": "tiny", "tiny": {"seed": 0, "device": "cpu", "dtype": weights}})
    cfg = TrainConfig.from_params({**FAST, "mixed_precision": "bf16"})
    result = train_lora(base, dataset, cfg)
    assert base.unet.dtype == getattr(torch, weights)
    assert np.isfinite(result.history.loss.dropna()).all()
    assert all(v.dtype == torch.float32 for v in lora_state(result.unet).values())
    reference = train_lora(
        make_base_model({"backend": "tiny", "tiny": {"seed": 0, "device": "cpu"}}),
        dataset,
        TrainConfig.from_params(FAST),
    )
    assert abs(result.extra["final_val_loss"] - reference.extra["final_val_loss"]) < 0.05


def test_fp16_asked_for_on_the_cpu_trains_and_records_float32(dataset, caplog):
    """conf/studio's `mixed_precision: fp16` without a GPU: float32 training with a warning, and the LoRA's
    metadata says what ran (`ss_mixed_precision: no`), never the fp16 that was asked for."""
    import logging

    from animation_lora.lora_format import describe

    base = make_base_model({"backend": "tiny", "tiny": {"seed": 0, "device": "cpu"}})
    with caplog.at_level(logging.WARNING):
        result = train_lora(base, dataset, TrainConfig.from_params({**FAST, "mixed_precision": "fp16"}))
    assert "mixed_precision fp16 needs a CUDA GPU; training in float32 on cpu" in caplog.text
    assert result.config.mixed_precision == "no"
    assert describe(result, dataset, base)["ss_mixed_precision"] == "no"


def test_xformers_asked_for_without_the_package_is_a_clear_error(dataset):
    pytest.importorskip("torch")
    import importlib.util

    if importlib.util.find_spec("xformers") is not None:
        pytest.skip("xformers is installed")
    base = make_base_model({"backend": "tiny", "tiny": {"seed": 0, "device": "cpu"}})
    with pytest.raises(ImportError, match="xformers: true needs the 'xformers' package"):
        train_lora(base, dataset, TrainConfig.from_params({**FAST, "xformers": True}))
