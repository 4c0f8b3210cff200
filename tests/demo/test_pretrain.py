"""The demo base pretraining (issue 14) on its tiny configuration: a diffusers folder that the `demo`
diffusion backend loads and samples from, resumed runs equal to uninterrupted ones, a clear error when the
folder is missing."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from animation_lora.backends.diffusion import demo, make_base_model
from animation_lora.backends.sd_architecture import sd_modules
from animation_lora.pretrain import CONFIGS, learning_rate, pretrain
from animation_lora.pretrain.judge import WORLD_CONCEPTS

PARTS = ("unet/diffusion_pytorch_model", "vae/diffusion_pytorch_model", "text_encoder/model")


def weights(folder):
    return {part: load_file(folder / f"{part}.safetensors") for part in PARTS}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    return pretrain(root / "base", steps=4, config="tiny", device="cpu", work=root / "work")


def test_writes_a_diffusers_folder_the_demo_backend_loads_and_samples(uninterrupted):
    index = json.loads((uninterrupted / "model_index.json").read_text())
    assert {"vae", "text_encoder", "unet", "tokenizer", "scheduler"} <= set(index)
    assert all((uninterrupted / f"{part}.safetensors").is_file() for part in PARTS)
    assert all((uninterrupted / f"pretrain_{name}.png").is_file() for name in ("loss", "samples"))
    losses = (uninterrupted / "pretrain_loss.csv").read_text().splitlines()
    assert losses[0] == "step,stage,loss,seconds" and len(losses) == 1 + 4  # both stages, one row a step
    assert {row.split(",")[1] for row in losses[1:]} == {"vae", "unet"}
    base = make_base_model({"backend": "demo", "demo": {"path": str(uninterrupted), "device": "cpu"}})
    assert base.name == "demo:base" and base.vae.config.scaling_factor != 1.0  # measured after the VAE stage
    size = CONFIGS["tiny"]["size"]
    generator = torch.Generator().manual_seed(0)
    image = base.pipeline()("character, close-up, happy expression", num_inference_steps=2, height=size,
                            width=size, output_type="np", generator=generator).images[0]
    assert image.shape == (size, size, 3) and np.isfinite(image).all()


def test_resumed_run_ends_with_the_same_weights(uninterrupted, tmp_path):
    out, work = tmp_path / "base", tmp_path / "work"
    assert pretrain(out, steps=4, config="tiny", device="cpu", work=work, stop_after=3) is None  # killed
    assert (work / "checkpoint.safetensors").is_file() and not out.exists()
    pretrain(out, steps=4, config="tiny", device="cpu", work=work)  # resumed in the U-Net stage
    a, b = weights(uninterrupted), weights(out)
    for part in PARTS:
        assert a[part].keys() == b[part].keys()
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    with pytest.raises(ValueError, match="inside the anneal"):  # its last step annealed for 4 steps, not 6
        pretrain(tmp_path / "other", steps=6, config="tiny", device="cpu", work=work)


def test_a_run_not_yet_annealing_trains_longer_as_an_uninterrupted_longer_run(tmp_path):
    """`--steps` raised on a checkpoint before its anneal (how the committed base grew from 5,000 steps)
    equals the longer run from scratch; another configuration is never resumed."""
    longer, short, work = tmp_path / "longer", tmp_path / "short", tmp_path / "work"
    pretrain(longer, steps=6, config="tiny", device="cpu", work=tmp_path / "scratch")
    assert pretrain(short, steps=4, config="tiny", device="cpu", work=work, stop_after=3) is None
    pretrain(short, steps=6, config="tiny", device="cpu", work=work)
    a, b = weights(longer), weights(short)
    assert all(torch.equal(a[part][k], b[part][k]) for part in PARTS for k in a[part])
    with pytest.raises(ValueError, match="another configuration"):
        pretrain(tmp_path / "other", steps=6, config="demo", device="cpu", work=work)


def test_each_stage_s_rate_is_constant_then_anneals_to_a_tenth():
    config = {**CONFIGS["demo"], "vae_steps": 50, "vae_decay_steps": 20, "vae_lr": 2.0,
              "steps": 150, "decay_steps": 40, "lr": 1.0}
    rates = [learning_rate(step, config) for step in range(150)]
    vae, unet = rates[:50], rates[50:]
    assert vae[:30] == [2.0] * 30 and vae[-1] == pytest.approx(0.2, abs=0.02)
    assert unet[:60] == [1.0] * 60 and unet[60] == pytest.approx(1.0)
    for stage in (vae, unet):
        assert all(a >= b for a, b in zip(stage, stage[1:]))
    assert unet[-1] == pytest.approx(0.1, abs=0.01)


def test_the_base_is_the_moving_average_of_the_u_net_stage(uninterrupted, tmp_path):
    """The saved U-Net is the EMA (not the last step's weights): a run's checkpoint holds both, and the
    folder's weights equal the checkpoint's average, not its live weights."""
    from safetensors import safe_open

    from animation_lora.pretrain.steps import build

    # the EMA's order: the U-Net first
    names = [n for n, _ in build(CONFIGS["tiny"], 0)[0].named_parameters()]
    with safe_open(str(uninterrupted.parent / "work" / "checkpoint.safetensors"), framework="pt") as f:
        live = {n: f.get_tensor(f"unet.{n}") for n in names}
        average = [f.get_tensor(f"ema.{i}") for i in range(len(names))]
    saved = load_file(uninterrupted / "unet/diffusion_pytorch_model.safetensors")
    differs = [n for n, a in zip(names, average, strict=False) if not torch.equal(live[n], a)]
    assert differs, "the EMA never moved away from the live weights"
    assert all(torch.equal(saved[n], a) for n, a in zip(names, average, strict=False))


def test_min_snr_weighting_lowers_the_easy_timesteps_weight():
    """min-SNR-gamma: the weight min(SNR, gamma) / SNR is 1 at noisy timesteps and falls below it where the
    signal dominates (SD's schedule, gamma 5)."""
    from diffusers.training_utils import compute_snr

    from animation_lora.backends.sd_architecture import schedulers

    snr = compute_snr(schedulers()[0], torch.tensor([10, 100, 500, 999]))
    weight = snr.clamp(max=5.0) / snr
    assert weight[0] < 0.05 and weight[-1] == 1.0 and torch.all(weight[:-1] <= weight[1:])


def test_missing_folder_names_the_parameter_and_the_path(tmp_path):
    missing = tmp_path / "no_base_here"
    with pytest.raises(FileNotFoundError, match=r"diffusion\.demo\.path") as error:
        demo(path=str(missing), device="cpu")
    assert str(missing) in str(error.value)


def test_demo_configuration_fits_40_mb():
    """float32 weights of the committed configuration plus the tokenizer's file (~3.7 MB) under 40 MB."""
    c = CONFIGS["demo"]
    modules = sd_modules(c["widths"], c["text_width"], c["text_layers"], c["vae_widths"],
                         c["attention_levels"], c["size"])
    weight_bytes = 4 * sum(p.numel() for m in modules for p in m.parameters())
    assert weight_bytes + 3.7e6 <= 40e6 and c["size"] >= 64


def test_the_committed_base_is_the_default_made_by_the_documented_command():
    """src/animation_lora/demo/base/: what `python -m animation_lora.pretrain` (the `demo` configuration,
    seed 0) writes, under 40 MB, and what conf/base's `diffusion` block loads."""
    import yaml

    from animation_lora.backends.diffusion import DEMO_BASE
    from tests.conftest import PROJECT_ROOT

    made = json.loads((DEMO_BASE / "pretrain.json").read_text())
    assert made["config"] == "demo" and made["seed"] == 0
    assert {k: made[k] for k in CONFIGS["demo"]} == json.loads(json.dumps(CONFIGS["demo"]))
    on_disk = sum(p.stat().st_size for p in DEMO_BASE.rglob("*") if p.is_file())
    assert on_disk <= 40e6 and made["folder_bytes"] <= 40e6
    judged = json.loads((DEMO_BASE / "world_probe.json").read_text())  # the world probe judged this base
    assert judged["captions"] >= 64 and all(0 <= judged[c]["recognised"] <= 1 for c in WORLD_CONCEPTS)
    losses = (DEMO_BASE / "pretrain_loss.csv").read_text().splitlines()
    assert len(losses) == 1 + CONFIGS["demo"]["steps"]  # every step of the run, resumed parts included
    diffusion = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_training.yml").read_text())["diffusion"]
    assert diffusion["backend"] == "demo" and diffusion["demo"]["path"] is None
    base = make_base_model({**diffusion, "demo": {"path": None, "device": "cpu"}})
    assert base.name == "demo:base" and base.vae.config.scaling_factor != 1.0  # measured after its VAE stage
