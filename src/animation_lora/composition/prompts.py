"""Prompts: A1111-style `<lora:name:weight>` tags, templates filled with the LoRAs' trigger phrases, and the
77-token limit of CLIP's text encoder."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)

WEIGHT_LIMIT = 2.0
LORA_TAG = re.compile(r"<lora:([^:>]+):([-+]?\d*\.?\d+)>")


@dataclass
class Request:
    prompt: str  # without <lora:…> tags
    weights: dict[str, float]  # adapter name -> weight


def check_weight(name: str, weight: float) -> float:
    if not -WEIGHT_LIMIT <= weight <= WEIGHT_LIMIT:
        raise ValueError(f"Weight {weight} of LoRA '{name}' is outside [-{WEIGHT_LIMIT}, {WEIGHT_LIMIT}]")
    return float(weight)


def parse_prompt(prompt: str, defaults: dict[str, float]) -> Request:
    """A1111-style `<lora:name:0.8>` tags set that LoRA's weight for this prompt (and only LoRAs named in
    tags are used when there are tags, as in A1111); the tags leave the prompt text."""
    tags = LORA_TAG.findall(prompt)
    text = re.sub(r"\s+", " ", LORA_TAG.sub("", prompt)).strip(" ,")
    if not tags:
        return Request(text, dict(defaults))
    unknown = sorted({n for n, _ in tags} - set(defaults))
    if unknown:
        raise ValueError(f"Prompt names LoRA(s) {unknown} that are not loaded; loaded: {sorted(defaults)}")
    return Request(text, {n: check_weight(n, float(w)) for n, w in tags})


def fill_template(template: str, triggers: dict[str, str]) -> str:
    """`{character} running in {background}` with each LoRA's trigger phrase; a slot without a LoRA goes."""
    text = template
    for slot in re.findall(r"\{(\w+)\}", template):
        text = text.replace("{" + slot + "}", triggers.get(slot, ""))
    return tidy_prompt(text)


def tidy_prompt(text: str) -> str:
    """Spaces and commas tidied: an emptied part between commas leaves none."""
    text = re.sub(r",(\s*,)+", ",", re.sub(r"\s+,", ",", text))
    return re.sub(r"\s+", " ", text).strip(" ,")


def token_count(tokenizer, prompt: str) -> int:
    return len(tokenizer(prompt, truncation=False).input_ids)


def build_requests(
    prompts: list[str], templates: list[str], weights: dict[str, float], triggers: dict[str, str], tokenizer
) -> list[Request]:
    """The prompts (with optional <lora:name:w> tags), or else the templates filled from the triggers.
    A prompt over 77 tokens is truncated by the tokenizer, as diffusers does, with a warning."""
    requests = [parse_prompt(p, weights) for p in prompts or [fill_template(t, triggers) for t in templates]]
    for i, r in enumerate(requests):
        if not r.prompt:
            source = f"`composition.prompts[{i}]`" if prompts else f"template `{templates[i]}`"
            raise ValueError(f"Prompt {i} is empty ({source}, with the LoRAs' trigger phrases filled in)")
    for r in requests:
        n = token_count(tokenizer, r.prompt)
        if n > tokenizer.model_max_length:
            log.warning("Prompt has %d tokens; CLIP reads 77, the rest is truncated: '%s'", n, r.prompt)
    return requests
