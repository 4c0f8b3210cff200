"""What the curation app shows and what its buttons change, without the web: the last run's clusters of
each kind with the curation file's decisions applied (`groups`), and each button as an edit of the file's
mapping (`edit`), checked by `curation.load_curation` before it is saved.

A cluster on the page has a *key* (its name before `names`: the pipeline's own, or the new name of a
split) and a *label* (what `names` calls it: the trigger and the LoRA's file name)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..clustering import NOISE
from ..curation import KINDS, apply_to_clusters, load_curation, stale_decisions
from ..faces.labelling import expression_clusters
from ..ids import safe_name
from ..pose.body import action_clusters

# per kind: the cluster (or label) table, its id column, how a labelled table becomes clusters, the images
SOURCES = {
    "characters": ("character_clusters", "instance_id", None, "character_instances"),
    "scenes": ("scene_clusters", "frame_id", None, "clean_backgrounds"),
    "poses": ("action_table", "instance_id", action_clusters, "character_instances"),
    "expressions": ("expression_table", "instance_id", expression_clusters, "face_crops"),
}
WHAT = {"characters": "character", "scenes": "scene", "poses": "action", "expressions": "expression"}


@dataclass
class Group:
    key: str
    label: str
    members: list[dict[str, Any]] = field(default_factory=list)  # id, why (assigned_by), similarity
    trained: bool = True


def fit_table(kind: str, table: pd.DataFrame) -> pd.DataFrame:
    """The pipeline's own clusters of a kind (before any curation): the stored cluster tables keep them in
    `fit_cluster`; the labelled tables (actions, expressions) are the fit."""
    as_clusters = SOURCES[kind][2]
    if as_clusters is not None:
        return as_clusters(table)
    out = table.copy()
    if "fit_cluster" in out:
        out["cluster"] = out.fit_cluster
    return out


def stale(kind: str, table: pd.DataFrame, curation: dict | None) -> list[str]:
    """The file's decisions about this kind that the last run cannot apply (`curation.stale_decisions`)."""
    decisions = getattr(load_curation(curation), kind)
    return stale_decisions(fit_table(kind, table), SOURCES[kind][1], decisions, WHAT[kind])


def groups(kind: str, table: pd.DataFrame, curation: dict | None) -> list[Group]:
    """The clusters as the page shows them: the fit with the file's decisions, largest first, the images
    left out (noise, excluded) last, each member with why it is where it is."""
    id_column = SOURCES[kind][1]
    decisions = getattr(load_curation(curation), kind)
    unnamed = copy.deepcopy(decisions)
    unnamed.names = {}
    fit = fit_table(kind, table)
    placed = apply_to_clusters(fit, id_column, unnamed, WHAT[kind])
    extra = fit.set_index(id_column)
    out = []
    for key, rows in sorted(placed.groupby("cluster"), key=lambda kv: (kv[0] == NOISE, -len(kv[1]), kv[0])):
        name = decisions.names.get(str(key), str(key))
        ticked = decisions.train is None or name in decisions.train
        group = Group(str(key), name, trained=key != NOISE and ticked)
        for item, why in zip(rows[id_column].astype(str), rows.assigned_by.astype(str), strict=True):
            similarity = extra.at[item, "similarity"] if "similarity" in extra else None
            group.members.append({"id": item, "why": why, "similarity": None if similarity is None
                                  else round(float(similarity), 3)})
        out.append(group)
    return out


def edit(curation: dict | None, kind: str, action: str, **args: Any) -> dict:
    """The file's mapping after one button (`name`, `merge`, `split`, `move`, `exclude`, `include`,
    `caption`, `tags`, `train`); the result is checked as a whole (`load_curation`), names by the safe-name
    rule. Raises ValueError naming what is wrong."""
    if kind not in KINDS:
        raise ValueError(f"Unknown kind '{kind}'; the kinds are {', '.join(KINDS)}")
    data = copy.deepcopy(curation or {})
    mine = data.setdefault(kind, {})
    ids = [str(i) for i in args.get("ids", [])]
    if action == "name":
        mine.setdefault("names", {})[args["key"]] = safe_name(args["name"], "A cluster's name")
    elif action == "merge":  # the source's key into the target's
        mine.setdefault("merge", {})[args["key"]] = args["into"]
    elif action in ("move", "split", "include"):  # images into a cluster (a new name: a split)
        target = safe_name(args["into"], "The cluster to put the images into")
        mine.setdefault("assign", {}).update(dict.fromkeys(ids, target))
        mine["exclude"] = [i for i in mine.get("exclude", []) if i not in ids]
    elif action == "exclude":  # images, or a whole cluster by its key
        gone = ids or [args["key"]]
        mine["exclude"] = list(dict.fromkeys([*mine.get("exclude", []), *gone]))
        mine["assign"] = {i: c for i, c in mine.get("assign", {}).items() if i not in gone}
    elif action == "caption":
        mine.setdefault("captions", {})[args["id"]] = str(args["text"]).strip()
    elif action == "tags":  # add / remove / replace a tag across the dataset
        tags = mine.setdefault("tags", {})
        if args.get("replace"):
            tags.setdefault("replace", {})[args["tag"]] = args["replace"]
        else:
            op = "add" if args.get("add") else "remove"
            tags[op] = list(dict.fromkeys([*tags.get(op, []), args["tag"]]))
    elif action == "train":  # tick or untick one cluster by its label; `all`: the current ticks
        ticked = list(mine["train"] if mine.get("train") is not None else args.get("all", []))
        mine["train"] = ([*ticked, args["label"]] if args["on"] and args["label"] not in ticked
                         else [t for t in ticked if t != args["label"] or args["on"]])
    else:
        raise ValueError(f"Unknown action '{action}'")
    load_curation(data)  # the whole file stays valid
    return data
