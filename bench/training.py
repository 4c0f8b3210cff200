"""Training speed and memory of our trainer against a baseline that does each step's work the way
diffusers' train_text_to_image_lora.py does (VAE-encode and text-encode every batch, no caching): same tiny
SD-shaped model, data, batch, steps, each in its own process (peak RSS per process), in one run.
Also: the trial-steps a median pruner saves against the same search without a pruner.
Goal: >= 1.3x steps/s, <= 1.0x peak RSS.

    .venv/bin/python bench/training.py [--epochs 6] [--trials 8]
"""

import argparse
import json
import multiprocessing
import resource
import tempfile
import time


def dataset(n=24):
    import numpy as np

    from animation_lora.lora_dataset import build_lora_dataset

    rng = np.random.default_rng(0)
    images = {f"img{k:02d}": rng.integers(0, 255, (96, 64, 3), dtype=np.uint8) for k in range(n)}
    captions = {k: "marco, 3d animated character, pixar style" for k in images}
    return build_lora_dataset(
        "bench",
        "marco",
        images,
        captions,
        {k: 1.0 for k in images},
        None,
        {"target_size": n, "resolution": 64, "batch_size": 4},
    )


def run(variant: str, epochs: int, queue) -> None:
    from animation_lora.backends.diffusion import make_base_model
    from animation_lora.training import TrainConfig, train_lora

    base = make_base_model({"backend": "tiny", "tiny": {"seed": 0}})
    cached = variant == "ours"
    cfg = TrainConfig(
        network_dim=4,
        network_alpha=4,
        learning_rate=1e-3,
        max_train_epochs=epochs,
        resolution=64,
        train_batch_size=4,
        validate_every_n_steps=0,
        validation_split=0.0,
        cache_latents=cached,
        cache_text_encoder_outputs=cached,
    )
    start = time.perf_counter()
    result = train_lora(base, dataset(), cfg)
    seconds = time.perf_counter() - start
    queue.put(
        {
            "steps": result.steps,
            "steps_per_s": result.steps / seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def measure(variant: str, epochs: int) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=run, args=(variant, epochs, queue))
    p.start()
    out = queue.get()
    p.join()
    return out


def pruning(trials: int) -> dict:
    from animation_lora.backends.diffusion import make_base_model
    from animation_lora.hpo import run_search
    from animation_lora.training import TrainConfig, train_lora

    base, data = make_base_model({"backend": "tiny", "tiny": {"seed": 0}}), dataset(12)
    steps = {}
    space = {"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True}}
    for pruner in ("none", "median"):
        used: list[int] = []

        def objective(params, report, used=used):
            cfg = TrainConfig(
                **{
                    "network_dim": 4,
                    "network_alpha": 4,
                    "max_train_epochs": 3,
                    "resolution": 64,
                    "train_batch_size": 2,
                    "validate_every_n_steps": 3,
                    **params,
                }
            )
            result = train_lora(base, data, cfg, should_stop=report)
            used.append(result.steps)
            return float(result.history.val_loss.dropna().iloc[-1])

        with tempfile.TemporaryDirectory() as tmp:
            run_search(
                objective,
                {
                    "n_trials": trials,
                    "study_name": pruner,
                    "storage": f"sqlite:///{tmp}/o.db",
                    "pruner": pruner,
                    "seed": 0,
                    "space": space,
                    "convergence": {"patience": 100, "rel_tol": 0.0},
                },
            )
        steps[pruner] = sum(used)
    return {
        "trial_steps_without_pruner": steps["none"],
        "trial_steps_with_median_pruner": steps["median"],
        "share_saved": round(1 - steps["median"] / steps["none"], 3),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--trials", type=int, default=8)
    args = ap.parse_args()
    baseline = measure("baseline", args.epochs)
    ours = measure("ours", args.epochs)
    result = {
        "baseline (encode every batch, like train_text_to_image_lora.py)": baseline,
        "ours (cached latents + text-encoder outputs)": ours,
        "steps_per_s_ratio": round(ours["steps_per_s"] / baseline["steps_per_s"], 3),
        "peak_rss_ratio": round(ours["peak_rss_mb"] / baseline["peak_rss_mb"], 3),
        "pruning": pruning(args.trials),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
