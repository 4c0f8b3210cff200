"""Composing several LoRAs on one Stable Diffusion base: the library behind
`kedro run --pipelines=composition`.

- `parameters`: the typed `composition` parameter block.
- `lora_set`: the LoRAs of a run (trained + extra), their weights, trigger phrases and sources.
- `prompts`: `<lora:name:w>` tags, templates filled with trigger phrases.
- `composer`: the strategies (base, solo, merge, fused, switch, composite) on diffusers + peft.
- `batch`: every prompt x strategy x sample of a run, with its table.
- `scoring`: per-concept presence (and CLIP-T) of each image.
- `weight_search`: the Optuna search over the per-LoRA weights.
- `report`: the grid and the HTML report (`templates/report.html.j2`).
"""

from .composer import STRATEGIES, Composer
from .loading import check_compatible
from .prompts import Request, fill_template, parse_prompt

__all__ = ["STRATEGIES", "Composer", "Request", "check_compatible", "fill_template", "parse_prompt"]
