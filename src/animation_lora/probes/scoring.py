"""The probes as the judge of composed images (`animation_lora.probes`): for every image, which character,
location, action and expression it shows; a requested slot (a LoRA type) is present when its probe names the
label that slot's LoRA was trained on — the majority of the probe's answers on the LoRA's own dataset."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from ..image_loop import materialise
from .model import OTHER, SLOT_CONCEPT, Probes


def named_label(trigger: str, classes: list[str]) -> str | None:
    """The one probe class the LoRA's trigger phrase names as a word (`running pose` -> running), or None."""
    words = set(re.findall(r"[\w-]+", trigger.lower()))
    named = [c for c in classes if c.lower() in words]
    return named[0] if len(named) == 1 else None


def concept_targets(probes: Probes, datasets: dict[str, list], triggers: dict[str, str],
                    embed: Callable) -> dict[str, dict[str, Any]]:
    """{slot: {concept, label, named_by, agreement, images}}: the label the slot's trigger phrase names (a
    pose or expression LoRA: `running pose`), else the one the probe gives most often to the slot's dataset
    images (film pictures, never generated ones); `agreement`: the share of those images the probe gives that
    label. A slot without a probe or images is left out."""
    targets = {}
    for slot, images in datasets.items():
        concept = SLOT_CONCEPT.get(slot)
        if concept not in probes.probes or not images:
            continue
        said = Counter(p[concept][0] for p in probes.predict([materialise(i) for i in images], embed))
        named = named_label(triggers.get(slot, ""), probes.probes[concept].classes)
        film_labels = [label for label, _ in said.most_common() if label != OTHER]
        if not (named or film_labels):
            continue  # the probe sees none of the film's labels in this LoRA's pictures: nothing to ask for
        label = named or film_labels[0]
        targets[slot] = {"concept": concept, "label": label, "named_by": "trigger" if named else "majority",
                         "agreement": said[label] / sum(said.values()), "images": sum(said.values())}
    return targets


def chance_reference(probes: Probes, targets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What a judge that guesses would score: 1 / classes per slot, their product for all present."""
    chance = {slot: 1 / len(probes.probes[t["concept"]].classes) for slot, t in targets.items()}
    return {"per_slot": chance, "all_present": float(np.prod(list(chance.values()))) if chance else None}


class ProbeScorer:
    """Scores one composed image: `probe_<concept>` (what the probe says) and its probability,
    `<slot>_present` (1/0 for a requested slot the probes judge, NaN otherwise), `composition_score` (the
    share of the requested slots present) and `all_present`."""

    def __init__(self, probes: Probes, embed: Callable, targets: dict[str, dict[str, Any]]):
        self.probes, self.embed, self.targets = probes, embed, targets

    def __call__(self, image: np.ndarray, requested: dict[str, float], prompt: str = "") -> dict[str, Any]:
        said = self.probes.predict([image], self.embed)[0]
        scores: dict[str, Any] = {}
        for concept, (label, p) in said.items():
            scores[f"probe_{concept}"], scores[f"probe_{concept}_p"] = label, p
        wanted = [s for s in self.targets if requested.get(s, 0) > 0]
        for slot, target in self.targets.items():
            hit = said[target["concept"]][0] == target["label"]
            scores[f"{slot}_present"] = float(hit) if slot in wanted else float("nan")
        hits = [scores[f"{s}_present"] for s in wanted]
        scores["composition_score"] = float(np.mean(hits)) if hits else None
        scores["all_present"] = float(all(hits)) if hits else None
        scores["clip_t"] = None
        return scores
