"""A person's decisions about the clusters and datasets, as data: one curation file per film (the catalog's
`curation`, `data/01_raw/curation/<film>.yml`), read by the pipelines after their own fit.

Per kind (characters, scenes, poses, expressions), keyed by stable ids (`ids.py`: instance ids for
characters, poses and expressions, frame ids for scenes) and cluster names:

    characters:
      merge:   {character_2: character_0}     # character_2's images join character_0 (or a new name)
      assign:  {f000012_0: character_1}       # move an image (from noise: include it; to a new name: split)
      exclude: [f000013_1, character_3]       # an image, or a whole cluster, left out (noise, "curation")
      names:   {character_0: marco}           # the trigger and the LoRA's file name (the safe-name rule)
      captions: {f000012_0: "marco, full body, red scarf"}   # one image's whole caption
      tags:    {add: [cartoon], remove: [blurry], replace: {"red scarf": scarf}}   # across the dataset
      train:   [marco]                        # the ticked clusters (after names); absent: the pipeline's

Applied in this order: assignments, merges (of the pipeline's clusters or of splits), exclusions, then
`names` renames the result; `train` and caption edits use the final names. A decision about an id or a
cluster the run does not have (parameters changed, the film re-sampled) is never applied and never dropped
in silence: it is logged as a warning and listed by `stale_decisions`."""

from __future__ import annotations

import logging
from dataclasses import field
from typing import Any

import pandas as pd

from .clustering import NOISE, apply_names
from .ids import safe_name
from .params import block, parse

log = logging.getLogger(__name__)
KINDS = ("characters", "scenes", "poses", "expressions")
CURATED = "curation"  # `assigned_by` of a row a decision placed


@block
class TagEdits:
    add: list[str] = field(default_factory=list)  # appended to every caption (after the trigger)
    remove: list[str] = field(default_factory=list)  # tags dropped from every caption
    replace: dict[str, str] = field(default_factory=dict)  # tag -> tag, in every caption


@block
class Decisions:
    """One kind's decisions (see the module's docstring)."""

    merge: dict[str, str] = field(default_factory=dict)
    assign: dict[str, str] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)
    tags: TagEdits = field(default_factory=TagEdits)
    train: list[str] | None = None


@block
class Curation:
    film: str = ""  # the film's file name, as the app saw it (a file for another film is not applied)
    characters: Decisions = field(default_factory=Decisions)
    scenes: Decisions = field(default_factory=Decisions)
    poses: Decisions = field(default_factory=Decisions)
    expressions: Decisions = field(default_factory=Decisions)


def load_curation(values: dict[str, Any] | None, where: str = "curation") -> Curation:
    """The file's mapping as a `Curation` (None or empty: no decisions); a misspelt key is an error naming
    its path in the file (`curation.characters.rename: unknown key …`)."""
    try:
        return parse(Curation, values or {}, where)
    except ValueError as err:  # a file a person edits, not a parameter block
        raise ValueError(str(err).replace("Invalid parameters: ", "Invalid curation file: ", 1)) from None


def _cluster_of(clusters: pd.DataFrame, id_column: str) -> dict[str, str]:
    return dict(zip(clusters[id_column].astype(str), clusters.cluster.astype(str), strict=True))


def apply_to_clusters(clusters: pd.DataFrame, id_column: str, decisions: Decisions, what: str,
                      ) -> pd.DataFrame:
    """The cluster table (`id_column`, cluster, …; `assigned_by` says `curation` where a decision placed a
    row) after the merges, assignments, exclusions and names of `decisions`; a decision about an id or a
    cluster the table does not have is left out with a warning."""
    out = clusters.copy()
    if "assigned_by" not in out:
        out["assigned_by"] = ""
    if "fit_cluster" not in out:  # the pipeline's own cluster, which the decisions are about
        out["fit_cluster"] = out.cluster
    for problem in stale_decisions(clusters, id_column, decisions, what):
        log.warning("Curation of the %ss: %s", what, problem)
    ids = set(out[id_column].astype(str))
    for item, cluster in decisions.assign.items():
        if item in ids:
            safe_name(cluster, f"The cluster `{cluster}` that curation assigns `{item}` to")
            out.loc[out[id_column].astype(str) == item, ["cluster", "assigned_by"]] = [cluster, CURATED]
    known = set(out.cluster.astype(str)) - {NOISE}  # a split is a cluster too
    for source, target in decisions.merge.items():
        if source in known:
            safe_name(target, f"The cluster `{target}` that curation merges `{source}` into")
            out.loc[out.cluster == source, ["cluster", "assigned_by"]] = [target, CURATED]
    for item in decisions.exclude:
        rows = (out[id_column].astype(str) == item) | (out.cluster.astype(str) == item)
        out.loc[rows, ["cluster", "assigned_by"]] = [NOISE, "excluded (curation)"]
    present = set(out.cluster.astype(str))
    return apply_names(out, {c: n for c, n in decisions.names.items() if c in present})


def stale_decisions(clusters: pd.DataFrame, id_column: str, decisions: Decisions, what: str) -> list[str]:
    """Every decision that names an id or a cluster `clusters` (the pipeline's own, before curation) does not
    have, as a sentence."""
    ids = set(clusters[id_column].astype(str))
    names = set(clusters.cluster.astype(str)) - {NOISE}
    splits = set(decisions.assign.values())
    problems = [f"merge `{s}` -> `{t}`: no {what} cluster `{s}`" for s, t in decisions.merge.items()
                if s not in names | splits]
    problems += [f"assign `{i}`: no {what} image `{i}` in this run" for i in decisions.assign if i not in ids]
    after = names | set(decisions.merge.values()) | set(decisions.assign.values())  # splits are clusters too
    problems += [f"exclude `{i}`: no {what} image or cluster `{i}` in this run" for i in decisions.exclude
                 if i not in ids and i not in after]
    problems += [f"names `{c}`: no {what} cluster `{c}`" for c in decisions.names if c not in after]
    return problems


def trained(names: list[str], decisions: Decisions, what: str) -> list[str]:
    """The clusters that get a LoRA: `names` (the pipeline's choice), or the ticked ones when the curation
    ticks; a ticked name no cluster has is left out with a warning."""
    if decisions.train is None:
        return names
    missing = [n for n in decisions.train if n not in names]
    if missing:
        log.warning("Curation ticks %s %s that this run has no dataset for (the %ss: %s)", what, missing,
                    what, names)
    return [n for n in decisions.train if n in names]


def edit_caption(item: str, caption: str, decisions: Decisions) -> str:
    """One image's caption after the curation: its own text if the user wrote one, else the pipeline's with
    the dataset-wide tag edits (the first tag, the trigger, stays first)."""
    if item in decisions.captions:
        return decisions.captions[item].strip()
    edits = decisions.tags
    tags = [t.strip() for t in caption.split(",") if t.strip()]
    tags = tags[:1] + [edits.replace.get(t, t) for t in tags[1:] if t not in edits.remove]
    tags += [t for t in edits.add if t not in tags]
    return ", ".join(dict.fromkeys(tags))


def tag_frequency(captions: dict[str, str]) -> dict[str, int]:
    """How many captions hold each tag (what kohya records as `ss_tag_frequency`), most frequent first."""
    counts = pd.Series([t.strip() for c in captions.values() for t in set(c.split(",")) if t.strip()])
    return {str(k): int(v) for k, v in counts.value_counts().items()}
