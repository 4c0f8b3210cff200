"""Pretrain the demo base (issue 14) on the pretraining world (`demo/world.py`): the SD-shaped VAE, CLIP text
encoder and U-Net of `backends.sd_architecture` (with the offline CLIP tokenizer and SD's schedulers), wider
than `tiny`, trained from scratch. Stage 1 (the first `vae_steps`): the VAE learns to reconstruct world
pictures. Stage 2: the U-Net and the text encoder learn to denoise the frozen VAE's latents given the
captions, at a constant learning rate and then, over the last `decay_steps`, a cosine anneal to a tenth of it
(the last steps of a diffusion run sharpen its samples most; an annealed run is what an exponential moving
average would approximate).

Deterministic from `--seed`: step k's pictures are world samples k*batch … (k+1)*batch-1 and its noise comes
from a generator seeded by (seed, k), so a run resumed from its checkpoint (`--work`, safetensors of the
weights and both optimizers) ends with the same weights as an uninterrupted one. A checkpoint that has not
started its anneal may be resumed with more `--steps` (train longer); that too equals an uninterrupted run.

    python -m animation_lora.pretrain --out DIR [--steps N] [--config demo|tiny] [--seed 0] [--device auto]

- `config`: the configurations (`CONFIGS`), the learning-rate schedule
- `steps`: the models, the world's batches, a VAE step and a U-Net step
- `checkpoint`: the resume checkpoint (safetensors)
- `run`: `pretrain`, the loop
- `report`: the diffusers folder, its samples and the loss report
- `judge`: the world probe, which judges what the base draws for held-out world captions"""

from .config import CONFIGS, WORK, learning_rate
from .run import pretrain

__all__ = ["CONFIGS", "WORK", "learning_rate", "pretrain"]
