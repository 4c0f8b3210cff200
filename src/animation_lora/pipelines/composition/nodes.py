"""Composition nodes: parse the parameters, build the backends, call `animation_lora.composition`.
The algorithms live there (composer, scoring, weight_search, report)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ...backends.diffusion import make_base_model
from ...backends.embedding import make_embedder
from ...backends.segmentation import make_segmenter
from ...composition import Composer
from ...composition.batch import generate_all
from ...composition.lora_set import LoraSet, gather, pick_by_name
from ...composition.parameters import Composition
from ...composition.prompts import Request, build_requests
from ...composition.regions import make_regions
from ...composition.report import composition_grid, render_report
from ...composition.scoring import ConceptScorer, mean_embeddings, score_table
from ...composition.weight_search import search_weights
from ...lora_dataset import TrainingSet
from ...lora_format import LORA_TYPES, LoraFile
from ...probes import ProbeParams, Probes, train_probes
from ...probes.pictures import probe_pictures
from ...probes.scoring import ProbeScorer, chance_reference, concept_targets

__all__ = [
    "composition_grid",
    "composition_report",
    "concept_centroids",
    "gather_loras",
    "generate_compositions",
    "probe_targets",
    "score_compositions",
    "train_concept_probes",
    "tune_weights",
]


def _slots(params: Composition, main: dict[str, Any], by_name: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each slot's trained entry, picked by `composition.loras` (an unknown slot or name is an error)."""
    unknown = sorted(set(params.loras) - set(main))
    if unknown:
        raise ValueError(f"`composition.loras` names slot(s) {unknown}; the slots are {sorted(main)}")
    return {s: pick_by_name(s, by_name[s], main[s], params.loras.get(s)) for s in main}


def gather_loras(extra_loras: dict[str, LoraFile], composition: Composition,
                 **trained: LoraFile | dict[str, LoraFile]) -> LoraSet:
    """The trained LoRAs of every type (`<type>`: the main one, `<type>_by_name`: one per selected name;
    `composition.loras` picks by name) and the extra ones (catalog `extra_loras`), with their weights from
    `composition.weights` and trigger phrases. Output: lora_set."""
    main = {kind: trained[kind] for kind in LORA_TYPES}
    by_name = {kind: trained[f"{kind}_by_name"] for kind in LORA_TYPES}
    return gather(_slots(composition, main, by_name), extra_loras, composition.weights)


def _requests(lora_set: LoraSet, params: Composition, tokenizer) -> list[Request]:
    return build_requests(params.prompts, params.templates, lora_set.weights, lora_set.triggers, tokenizer)


def _composer(base, lora_set: LoraSet, params: Composition) -> Composer:
    """The composer of these LoRAs, with the `regional` strategy's layout when one is set."""
    if params.regional is None:
        if "regional" in params.strategies:
            raise ValueError("`composition.strategies` has `regional`; it needs `composition.regional`")
        regions = None
    else:
        regions = make_regions(params.regional, list(lora_set.loras), lora_set.triggers,
                               params.sampling.height, params.sampling.width, list(lora_set.absent))
    return Composer(base, lora_set.loras, lora_set.sources, regions)


def generate_compositions(
    lora_set: LoraSet,
    composition: Composition,
    diffusion: dict[str, Any],
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Every prompt x strategy x sample. Outputs: compositions (images) and composition_table (prompt,
    strategy, weights, seed, seconds per image)."""
    base = make_base_model(diffusion)
    requests = _requests(lora_set, composition, base.tokenizer)
    with _composer(base, lora_set, composition) as composer:
        composer.use_scheduler(composition.sampling.scheduler)
        return generate_all(composer, requests, composition.strategies, composition.sampling,
                            composition.num_samples)


def concept_centroids(
    character_dataset: TrainingSet,
    character_datasets: dict[str, TrainingSet],
    background_dataset: TrainingSet,
    background_datasets: dict[str, TrainingSet],
    composition: Composition,
    embedding: dict[str, Any],
) -> dict[str, np.ndarray]:
    """The mean embedding of the LoRA dataset behind each slot (picked as `gather_loras` picks the LoRA).
    Output: concept_centroids."""
    main = {"character": character_dataset, "background": background_dataset}
    by_name = {"character": character_datasets, "background": background_datasets}
    datasets = _slots(composition, main, by_name)
    images = {slot: list(dataset.images.values()) for slot, dataset in datasets.items()}
    return mean_embeddings(make_embedder(embedding), images)


def train_concept_probes(film, demo_ground_truth, probes: ProbeParams, composition: Composition,
                         embedding: dict[str, Any]) -> tuple[Probes, dict[str, Any]]:
    """The concept probes at the generation size, from the labelled reference crops (`probes.reference_crops`)
    or else the demo film's ground truth; none, with the reason, when the film has neither. Outputs:
    concept_probes and probe_metrics (held-out accuracy per concept)."""
    size = (composition.sampling.width, composition.sampling.height)
    examples, source = probe_pictures(film, demo_ground_truth, probes, size)
    if not examples and source.startswith("not available"):
        return Probes(size=size, reason=source), {"probes": source}
    embedding = probes.embedding or embedding
    result = train_probes(examples, make_embedder(embedding), embedding, size, probes)
    if not result.available:
        result.reason = f"not available: {result.reason} in {source}"
    metrics = {"probes": result.metrics if result.available else result.reason, "source": source,
               "size": list(size), "embedding": embedding, "pictures": len(examples),
               "trained_on": "labelled film pictures only, never generated images"}
    return result, metrics


def probe_targets(concept_probes: Probes, lora_set: LoraSet, composition: Composition,
                  **datasets: TrainingSet | dict[str, TrainingSet]) -> dict[str, Any]:
    """What each slot asks the probes for: the label its trigger names, else the one they give most often to
    its LoRA's dataset (picked as `gather_loras` picks the LoRA). Output: concept_targets."""
    if not concept_probes.available:
        return {}
    main = {kind: datasets[kind] for kind in LORA_TYPES}
    by_name = {kind: datasets[f"{kind}_by_name"] for kind in LORA_TYPES}
    picked = _slots(composition, main, by_name)
    images = {slot: list(dataset.images.values()) for slot, dataset in picked.items()}
    embed = make_embedder(concept_probes.embedding)
    return concept_targets(concept_probes, images, lora_set.triggers, embed)


def _scorer(centroids, probes: Probes, targets, segmentation, embedding, scoring):
    """The probes when they are available and judge a slot; else the centroids (character, background)."""
    if probes.available and targets:
        return ProbeScorer(probes, make_embedder(probes.embedding), targets)
    return ConceptScorer(centroids, make_segmenter(segmentation), make_embedder(embedding), scoring)


def _judge(probes: Probes, targets: dict[str, Any], probe_metrics: dict[str, Any]) -> dict[str, Any]:
    if not (probes.available and targets):
        reason = probes.reason or "not available: no slot's LoRA dataset is labelled by a probe"
        return {"judge": "centroids", "probes": reason}
    return {"judge": "probes", "probes": probes.metrics, "probe_source": probe_metrics.get("source", ""),
            "targets": targets, "chance": chance_reference(probes, targets), "reference": "base"}


def score_compositions(compositions: dict[str, Any], composition_table: pd.DataFrame,
                       centroids: dict[str, np.ndarray], concept_probes: Probes,
                       concept_targets: dict[str, Any], probe_metrics: dict[str, Any],
                       segmentation: dict[str, Any], embedding: dict[str, Any],
                       composition: Composition) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per image and per concept, judged by the probes when there are some. Outputs: composition_scores (per
    image) and composition_metrics (per strategy: per-slot recall, all-present rate; the `base` strategy and
    the chance rates are the reference)."""
    scorer = _scorer(centroids, concept_probes, concept_targets, segmentation, embedding, composition.scoring)
    judge = _judge(concept_probes, concept_targets, probe_metrics)
    return score_table(scorer, compositions, composition_table, judge)


def tune_weights(
    lora_set: LoraSet,
    centroids: dict[str, np.ndarray],
    concept_probes: Probes,
    concept_targets: dict[str, Any],
    composition: Composition,
    diffusion: dict[str, Any],
    segmentation: dict[str, Any],
    embedding: dict[str, Any],
) -> tuple[dict[str, Any], Image.Image]:
    """The weight search on the first prompt. Outputs: tuned_weights (with the evidence) and a before/after
    grid."""
    base = make_base_model(diffusion)
    prompt = _requests(lora_set, composition, base.tokenizer)[0].prompt
    scorer = _scorer(centroids, concept_probes, concept_targets, segmentation, embedding, composition.scoring)
    with _composer(base, lora_set, composition) as composer:
        return search_weights(composer, scorer, prompt, lora_set.weights, composition.weight_search,
                              composition.sampling)


def composition_report(
    compositions: dict[str, Any],
    composition_scores: pd.DataFrame,
    metrics: dict[str, Any],
    tuned: dict[str, Any],
    lora_set: LoraSet,
) -> str:
    """A single HTML page (images embedded, opens from disk). Output: composition_report."""
    return render_report(compositions, composition_scores, metrics, tuned, lora_set)
