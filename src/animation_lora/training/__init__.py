"""LoRA training with kohya sd-scripts' knobs (same names as `train_network.py`), on diffusers + peft,
driven by accelerate. Reads a kohya dataset (images + captions + the dataset TOML settings).

- `config`: `TrainConfig` (the arguments) and `DatasetSettings` (the dataset TOML, resolved as kohya does)
- `data`: buckets (sd-scripts' rules, `bucket_no_upscale` too), each picture's size/crop conditioning (SDXL),
  captions, examples, batches and their loss masks, the validation split, the latent cache
- `model`: LoRA layers on shared copies of the base (its own weight tensors), text encoding (cached; SDXL's
  two encoders and pooled embedding), the noise prediction, the optimizer, the accelerator
- `loss`: the masked MSE, min-SNR weighting, the validation loss
- `setup`: `TrainingSetup` (the prepared models, optimizer, scheduler; its resume and save)
- `trainer`: `train_lora`, the loop
- `checkpoint`: resume checkpoints and `lora_state`"""

from .checkpoint import load_checkpoint, lora_state, retire_checkpoint, save_checkpoint
from .config import DatasetSettings, TrainConfig, dataset_settings
from .data import LatentCache
from .model import TEXT_TARGETS, UNET_TARGETS
from .trainer import TrainResult, train_lora

__all__ = [
    "DatasetSettings",
    "LatentCache",
    "TEXT_TARGETS",
    "TrainConfig",
    "TrainResult",
    "UNET_TARGETS",
    "dataset_settings",
    "load_checkpoint",
    "lora_state",
    "retire_checkpoint",
    "save_checkpoint",
    "train_lora",
]
