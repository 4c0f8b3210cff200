"""The LoRAs one composition run composes: the trained ones and the extra ones from the catalog, each with its
weight, trigger phrase and source (what an error or the report names)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TypeVar

from ..lora_format import LoraFile
from .prompts import check_weight

log = logging.getLogger(__name__)
LORA_WEIGHT_KEYS = (".lora_down.weight", ".lora_up.weight", ".lora_A.weight", ".lora_B.weight")
T = TypeVar("T")
DEFAULT_WEIGHT = 1.0  # a loaded LoRA that `composition.weights` does not name


@dataclass
class LoraSet:
    loras: dict[str, LoraFile]
    sources: dict[str, str]  # name -> where it came from
    weights: dict[str, float]
    triggers: dict[str, str]  # name -> trigger phrase (the name when the file has none)
    absent: dict[str, str] = field(default_factory=dict)  # slot -> why it has no LoRA (nothing to teach)


def pick_by_name(slot: str, by_name: dict[str, T], main: T, wanted: str | None) -> T:
    """What fills a composition slot (a LoRA type): the trained entry named `wanted` (a
    selected character or scene), or the main one when none is named; an unknown name lists the known ones."""
    if wanted is None:
        return main
    if wanted not in by_name:
        known = sorted(by_name)
        raise ValueError(f"`composition.loras.{slot}` is '{wanted}'; the trained {slot} LoRAs: {known}")
    return by_name[wanted]


def gather(trained: dict[str, LoraFile], extra: dict[str, LoraFile], weights: dict[str, float]) -> LoraSet:
    """The trained LoRAs plus the extra ones (`<name>.safetensors` in the `extra_loras` folder). A trained
    slot whose LoRA was not trained (its dataset had nothing to teach) is left out, with its reason. A weight
    outside [-2, 2], a weight for a LoRA that is not loaded, or an extra LoRA named like a trained one is an
    error naming it."""
    absent = {slot: lora.skipped for slot, lora in trained.items() if lora.skipped}
    for slot, reason in absent.items():
        log.warning("No %s LoRA to compose: %s", slot, reason)
    trained = {slot: lora for slot, lora in trained.items() if slot not in absent}
    # an extra file may not take a slot's name nor a trained LoRA's own name (`marco.safetensors` beside the
    # trained marco would be applied on top of it)
    names = set(trained) | {lora.metadata.get("ss_output_name") for lora in trained.values()} - {None}
    clash = sorted(names & set(extra))
    if clash:
        raise ValueError(
            f"Extra LoRA file(s) {[f'{n}.safetensors' for n in clash]} in `extra_loras` have "
            f"the name of a trained LoRA; rename them"
        )
    for name, lora in extra.items():
        if not any(k.endswith(LORA_WEIGHT_KEYS) for k in lora.tensors):
            sample = sorted(lora.tensors)[:3]
            raise ValueError(
                f"Extra LoRA '{name}.safetensors' (extra_loras) holds no LoRA weights: none of its "
                f"{len(lora.tensors)} keys (e.g. {sample}) ends in {list(LORA_WEIGHT_KEYS)}"
            )
    loras = {**trained, **extra}
    unloaded = sorted(set(weights) - set(loras) - set(absent))
    if unloaded:
        raise ValueError(
            f"`composition.weights` names LoRA(s) {unloaded} that are not loaded; loaded: "
            f"{sorted(loras)} (an extra LoRA is `<name>.safetensors` in the `extra_loras` "
            f"folder)"
        )
    sources = {
        **{n: f"{n}.lora (training pipeline)" for n in trained},
        **{n: f"{n}.safetensors (extra_loras)" for n in extra},
    }
    return LoraSet(
        loras=loras,
        sources=sources,
        weights={n: check_weight(n, float(weights.get(n, DEFAULT_WEIGHT))) for n in loras},
        triggers={n: lora.trigger or n for n, lora in loras.items()},
        absent=absent,
    )
