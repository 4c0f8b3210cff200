"""The one LoRA dataset builder all four LoRA types use: pick the images, caption them, and describe
the kohya sd-scripts dataset (`train_network.py --dataset_config`).

The brief's step: `prepare_training_data.py --target-size 300` with the subset keys num_repeats=1,
shuffle_caption=true, keep_tokens=3, caption_extension=".txt", color_aug=false, flip_aug=false."""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .backends.captioning import join_caption, make_captioner
from .clustering import NOISE, select_cluster
from .curation import Decisions, edit_caption, trained
from .image_loop import materialise
from .params import Count, block, parse

log = logging.getLogger(__name__)
CAPTION_BATCH = 64  # pictures prepared at once for the captioner


@dataclass
class TrainingSet:
    """What `KohyaDatasetFolder` writes: images + captions + the dataset TOML (image_dir set on save)."""

    name: str
    trigger: str
    images: dict[str, Any]  # id -> uint8 RGB array or a loader
    captions: dict[str, str]
    toml: dict[str, Any]
    report: pd.DataFrame = field(default_factory=pd.DataFrame)
    skipped: str = ""  # why there is nothing to teach (no detectable pose, no clear face)


def nothing_to_teach(name: str, reason: str) -> TrainingSet:
    """The dataset of a LoRA type the film gives no images for (a robot has no human pose, an animal no face):
    written like any other (so the run completes and a user can see why), skipped by training, and its slot
    left out of the composition."""
    log.warning("No %s LoRA dataset: %s", name, reason)
    return TrainingSet(name, "", {}, {}, {"datasets": []}, pd.DataFrame({"skipped": [reason]}), reason)


def select_images(
    ids: list[str],
    quality: np.ndarray,
    vectors: np.ndarray | None,
    target: int,
) -> tuple[list[str], int, str]:
    """Up to `target` images: the sharpest first, then each next one the farthest (in embedding space)
    from those already chosen, so near-identical frames do not crowd out variety. Fewer images than the
    target are all kept and repeated (kohya's num_repeats) up to about the target."""
    if not ids:
        raise ValueError("No images to build a LoRA dataset from")
    if len(ids) <= target:
        repeats = max(1, math.ceil(target / len(ids)))
        note = (
            f"only {len(ids)} images for a target of {target}: all kept, num_repeats={repeats}"
            if repeats > 1
            else "all kept"
        )
        return list(ids), repeats, note
    order = [int(np.argmax(quality))]
    if vectors is None:
        order = list(np.argsort(-quality)[:target])
    else:
        dist = np.linalg.norm(vectors - vectors[order[0]], axis=1)
        while len(order) < target:
            nxt = int(np.argmax(dist + 1e-6 * quality / max(quality.max(), 1e-9)))  # ties go to the sharper
            order.append(nxt)
            dist = np.minimum(dist, np.linalg.norm(vectors - vectors[nxt], axis=1))
    return (
        [ids[i] for i in sorted(order)],
        1,
        f"selected {target} of {len(ids)} (sharpness + embedding diversity)",
    )


@block
class DatasetParams:
    """A LoRA dataset's parameters: selection, captions, and the kohya dataset-TOML keys (same names)."""

    trigger_template: str = "{name}"
    caption_prefix: str = ""
    exclude_words: list[str] = field(default_factory=list)  # never in a caption of this LoRA
    target_size: Count = 40  # the brief: `prepare_training_data.py --target-size 300`
    resolution: int = 512
    batch_size: int = 1
    shuffle_caption: bool = True
    keep_tokens: int = 3
    color_aug: bool = False
    flip_aug: bool = False
    enable_bucket: bool = True
    min_bucket_reso: int | None = None  # None: derived from resolution (sd-scripts' 256 refuses small sets)
    max_bucket_reso: int | None = None
    bucket_reso_steps: int = 64
    bucket_no_upscale: bool = True


def has_alpha(image: Any) -> bool:
    return isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 4


def kohya_toml(params: DatasetParams, num_repeats: int, alpha_mask: bool = False) -> dict[str, Any]:
    """The dataset config as sd-scripts validates it: [general], [[datasets]], [[datasets.subsets]]
    (image_dir is added when the folder is written). `alpha_mask`: the images' alpha channel is the loss
    mask (sd-scripts' subset key, read with `--masked_loss`)."""
    subset = {
        "num_repeats": int(num_repeats),
        "shuffle_caption": params.shuffle_caption,
        "keep_tokens": params.keep_tokens,
        "caption_extension": ".txt",
        "color_aug": params.color_aug,
        "flip_aug": params.flip_aug,
        **({"alpha_mask": True} if alpha_mask else {}),
    }
    resolution = params.resolution
    dataset = {
        "resolution": resolution,
        "batch_size": params.batch_size,
        "enable_bucket": params.enable_bucket,
        # sd-scripts defaults to 256..1024, which refuses low-resolution (demo) sets: derive from resolution
        "min_bucket_reso": params.min_bucket_reso or max(64, resolution // 4 // 64 * 64),
        "max_bucket_reso": params.max_bucket_reso or resolution * 2,
        "bucket_reso_steps": params.bucket_reso_steps,
        "bucket_no_upscale": params.bucket_no_upscale,
        "subsets": [subset],
    }
    return {"general": {}, "datasets": [dataset]}


def build_lora_dataset(
    name: str,
    trigger: str,
    images: dict[str, Any],
    captions: dict[str, str],
    quality: dict[str, float],
    vectors: dict[str, np.ndarray] | None,
    params: DatasetParams | dict[str, Any],
) -> TrainingSet:
    """Select `params.target_size` images and describe the kohya dataset. Images may be arrays or loaders;
    RGBA arrays carry a loss mask in their alpha (the TOML then says `alpha_mask = true`)."""
    params = parse(DatasetParams, params, "dataset")
    ids = sorted(images)
    q = np.array([quality.get(i, 0.0) for i in ids], dtype=float)
    v = np.stack([vectors[i] for i in ids]) if vectors else None
    chosen, repeats, note = select_images(ids, q, v, params.target_size)
    if repeats > 1:
        log.warning("LoRA dataset '%s': %s", name, note)
    report = pd.DataFrame(
        {
            "id": ids,
            "selected": [i in set(chosen) for i in ids],
            "quality": q,
            "caption": [captions.get(i, "") for i in ids],
        }
    )
    report.attrs["note"] = note
    return TrainingSet(
        name=name,
        trigger=trigger,
        images={i: images[i] for i in chosen},
        captions={i: captions[i] for i in chosen},
        # one prepared picture says it: every image of a set comes through the same `prepare`
        toml=kohya_toml(params, repeats, bool(chosen) and has_alpha(materialise(images[chosen[0]]))),
        report=report.assign(note=note, num_repeats=repeats),
    )


def dataset_from_cluster(
    clusters: pd.DataFrame,
    embeddings: pd.DataFrame,
    id_column: str,
    images: dict[str, Any],
    quality: dict[str, float],
    wanted: str | None,
    what: str,
    params: DatasetParams,
    captioning: dict[str, Any],
    facts: Callable[[str], dict[str, str]] | None = None,
    exclude: list[str] | None = None,
    prepare: Callable[[Any], np.ndarray] = materialise,
    decisions: Decisions | None = None,
) -> TrainingSet:
    """The LoRA dataset of one cluster (named by `wanted`, or the largest, logged): its members' images
    (`prepare` turns an item of `images` into the RGB array trained on, or RGBA: alpha 0 for pixels not to
    learn, `alpha_mask`; the captioner sees the RGB), captioned `<trigger>, <prefix>, …`
    with `facts(member id)` (what varies from image to image: framing, view …; never a classifier's
    labels), never with a word of `params.exclude_words` or `exclude`, then as the curation's `decisions`
    edit them (`curation.edit_caption`); then the shared selection."""
    name = select_cluster(clusters, wanted, what)
    if wanted is None:
        log.info("No %s named in parameters: using the largest %s cluster, '%s'", what, what, name)
    members = list(clusters[clusters.cluster == name][id_column])
    emb = embeddings.set_index(id_column).loc[members]
    trigger = params.trigger_template.format(name=name)
    # prepared when needed, never all at once: a feature's cluster has thousands of members
    pictures = {i: functools.partial(prepare, images[i]) for i in members}
    captioner, captions = make_captioner(captioning), []
    for start in range(0, len(members), CAPTION_BATCH):
        batch = [pictures[i]() for i in members[start:start + CAPTION_BATCH]]
        captions += captioner(
            [p[..., :3] if has_alpha(p) else p for p in batch],
            [facts(i) if facts else {} for i in members[start:start + CAPTION_BATCH]],
            trigger,
            params.caption_prefix,
            [*params.exclude_words, *(exclude or [])],
        )
    if decisions is not None:
        captions = [edit_caption(i, c, decisions) for i, c in zip(members, captions, strict=True)]
    return build_lora_dataset(
        name,
        trigger,
        pictures,
        dict(zip(members, captions)),
        {i: quality.get(i, 0.0) for i in members},
        dict(zip(emb.index, emb.embedding)),
        params,
    )


def drop_images(data: TrainingSet, reasons: dict[str, str]) -> TrainingSet:
    """The set without the images named in `reasons` (the report says why: `dropped`); kohya's num_repeats
    stays. Dropping every image is an error naming the first reason."""
    gone = [k for k in data.images if k in reasons]
    if not gone:
        return data
    if len(gone) == len(data.images):
        raise ValueError(f"LoRA dataset '{data.name}': every image was dropped (first: '{gone[0]}', "
                         f"{reasons[gone[0]]})")
    report = data.report.copy()
    report["dropped"] = [reasons[i] if i in set(gone) else "" for i in report["id"]]
    report.loc[report.dropped != "", "selected"] = False
    keep = [k for k in data.images if k not in reasons]
    return TrainingSet(data.name, data.trigger, {k: data.images[k] for k in keep},
                       {k: data.captions[k] for k in keep}, data.toml, report)


def selected_clusters(
    clusters: pd.DataFrame, wanted: list[str] | None, min_images: int, what: str
) -> list[str]:
    """The clusters that each get their own LoRA: those named in `wanted`, or every cluster with at least
    `min_images` members (largest first). A name that is no cluster is an error listing the clusters."""
    counts = clusters[clusters.cluster != NOISE].cluster.value_counts()
    if wanted is not None:
        unknown = sorted(set(wanted) - set(counts.index))
        if unknown:
            raise ValueError(f"No {what} cluster named {unknown}; the clusters are {sorted(counts.index)}")
        return list(wanted)
    chosen = [str(c) for c, n in counts.items() if n >= min_images]
    if not chosen:
        select_cluster(clusters, None, what)  # no cluster at all: the error that names the cause
        raise ValueError(
            f"No {what} cluster has {min_images} images or more (sizes {counts.to_dict()}): lower "
            f"`min_images` or name the {what}s to train"
        )
    return chosen


def main_and_each(
    main: str | None, each: list[str] | None, min_images: int, **kwargs
) -> tuple[TrainingSet, dict[str, TrainingSet]]:
    """The main dataset (`main`, or the largest cluster) and `{name: dataset}` of every selected cluster
    (`each`, or every cluster with `min_images` or more), the main one among them; `kwargs` go to
    `dataset_from_cluster`. A curation that ticks clusters (`decisions.train`) trains those: the main one
    is the first ticked unless it is ticked itself; ticking none is a dataset with nothing to teach."""
    decisions, what = kwargs.get("decisions"), kwargs["what"]
    names = selected_clusters(kwargs["clusters"], each, min_images, what)
    if decisions is not None and decisions.train is not None:
        names = trained(sorted(set(kwargs["clusters"].cluster) - {NOISE}), decisions, what)
        if not names:
            return nothing_to_teach(what, f"the curation file ticks no {what} to train"), {}
        main = main if main in names else names[0]
    first = dataset_from_cluster(wanted=main, **kwargs)
    others = {n: dataset_from_cluster(wanted=n, **kwargs) for n in names if n != first.name}
    return first, {first.name: first, **others}


def with_tags(data: TrainingSet, tags: dict[str, list[str]]) -> TrainingSet:
    """The dataset with each image's caption followed by its tags (what varies from image to image: the
    action, the expression), so that the trigger binds to what stays — the identity — not to a pose or a
    smile; tags already in the caption are not repeated."""
    captions = {}
    for key, caption in data.captions.items():
        trigger, _, rest = caption.partition(",")  # the caption's own tags, through the same de-duplication
        captions[key] = join_caption(trigger, rest, tags.get(key, []), [])
    report = data.report.copy()
    if "id" in report:
        report["caption"] = [captions.get(i, c) for i, c in zip(report["id"], report["caption"], strict=True)]
    return dataclasses.replace(data, captions=captions, report=report)
