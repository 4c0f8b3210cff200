"""Issue 22: a person's decisions as data (`animation_lora.curation`, the catalog's `curation` file) applied
after the pipelines' own fit: merge, split, move, exclude, include, rename, caption edits, ticks; a decision
about something the run does not have is reported, never applied."""

import logging

import numpy as np
import pandas as pd
import pytest
import yaml

from animation_lora.clustering import NOISE
from animation_lora.curation import (
    apply_to_clusters,
    edit_caption,
    load_curation,
    stale_decisions,
    tag_frequency,
)
from animation_lora.datasets import CurationFile
from animation_lora.lora_dataset import DatasetParams, main_and_each


def clusters() -> pd.DataFrame:
    """Three clusters as the pipeline made them: a0-a3, b0-b2, c0-c1, and one image in noise."""
    rows = [(f"{c}{i}", f"character_{k}") for k, (c, n) in enumerate([("a", 4), ("b", 3), ("c", 2)])
            for i in range(n)] + [("n0", NOISE)]
    return pd.DataFrame(rows, columns=["instance_id", "cluster"]).assign(assigned_by="hdbscan")


def members(table: pd.DataFrame) -> dict[str, set[str]]:
    return {c: set(g.instance_id) for c, g in table.groupby("cluster")}


def decide(**characters) -> object:
    return load_curation({"characters": characters}).characters


def test_no_decisions_change_nothing():
    assert members(apply_to_clusters(clusters(), "instance_id", decide(), "character")) == members(clusters())


def test_merge_move_split_exclude_include_and_rename():
    decisions = decide(
        merge={"character_2": "character_0"},  # c0, c1 join the a's
        assign={"b2": "character_0",  # a wrongly clustered image moves
                "a3": "villain",  # a split: a new cluster
                "n0": "character_1"},  # an image the pipeline left out, included
        exclude=["a2"],
        names={"character_0": "marco", "character_1": "lucia"},
    )
    out = apply_to_clusters(clusters(), "instance_id", decisions, "character")
    assert members(out) == {"marco": {"a0", "a1", "b2", "c0", "c1"}, "lucia": {"b0", "b1", "n0"},
                            "villain": {"a3"}, NOISE: {"a2"}}
    assert set(out[out.assigned_by != "hdbscan"].instance_id) == {"c0", "c1", "b2", "a3", "n0", "a2"}
    assert out.set_index("instance_id").at["a2", "assigned_by"] == "excluded (curation)"


def test_a_split_can_be_merged_back_and_unticking_every_cluster_keeps_them_unticked():
    decisions = decide(assign={"a3": "villain", "b0": "villain"}, merge={"villain": "character_2"})
    assert members(apply_to_clusters(clusters(), "instance_id", decisions, "character"))["character_2"] == \
        {"a3", "b0", "c0", "c1"}
    from animation_lora.curate.view import edit

    data = edit(None, "characters", "train", label="character_0", on=False, all=["character_0"])
    data = edit(data, "characters", "train", label="character_1", on=False, all=[])
    assert data["characters"]["train"] == []


def test_a_whole_cluster_is_excluded():
    out = apply_to_clusters(clusters(), "instance_id", decide(exclude=["character_1"]), "character")
    assert members(out)[NOISE] == {"b0", "b1", "b2", "n0"} and "character_1" not in members(out)


def test_stale_decisions_are_reported_and_not_applied(caplog):
    decisions = decide(merge={"character_7": "character_0"}, assign={"f999999_0": "character_1"},
                       exclude=["gone"], names={"character_9": "bob"})
    with caplog.at_level(logging.WARNING, logger="animation_lora.curation"):
        out = apply_to_clusters(clusters(), "instance_id", decisions, "character")
    assert members(out) == members(clusters())
    stale = stale_decisions(clusters(), "instance_id", decisions, "character")
    assert len(stale) == 4 and all(s in caplog.text for s in stale)
    assert "`character_7`" in stale[0] and "`f999999_0`" in stale[1] and "`gone`" in stale[2]
    assert "`character_9`" in stale[3]


def test_names_keep_the_safe_name_rule_and_do_not_merge():
    with pytest.raises(ValueError, match="letters, digits"):
        apply_to_clusters(clusters(), "instance_id", decide(names={"character_0": "../marco"}), "character")
    with pytest.raises(ValueError, match="does not merge"):
        apply_to_clusters(clusters(), "instance_id", decide(names={"character_0": "x", "character_1": "x"}),
                          "character")


def test_a_misspelt_key_names_its_place_in_the_file():
    with pytest.raises(ValueError, match=r"curation file: `curation\.characters\.rename`: unknown key"):
        load_curation({"characters": {"rename": {"character_0": "marco"}}})


def test_caption_edits_one_image_and_tags_across_the_dataset():
    decisions = decide(captions={"a1": "marco, red scarf "},
                       tags={"add": ["cartoon"], "remove": ["blurry"], "replace": {"standing": "idle"}})
    assert edit_caption("a1", "marco, full body", decisions) == "marco, red scarf"
    assert edit_caption("a0", "marco, blurry, full body, standing", decisions) == \
        "marco, full body, idle, cartoon"
    assert edit_caption("a0", "marco, cartoon", decisions) == "marco, cartoon"  # never twice
    assert tag_frequency({"a": "marco, idle", "b": "marco, cartoon"}) == {"marco": 2, "idle": 1, "cartoon": 1}


def datasets(decisions):
    table = apply_to_clusters(clusters(), "instance_id", decisions, "character")
    ids = list(table.instance_id)
    images = {i: np.full((8, 8, 3), 200, np.uint8) for i in ids}
    embeddings = pd.DataFrame({"instance_id": ids, "embedding": list(np.eye(len(ids)))})
    return main_and_each(None, None, 2, clusters=table, embeddings=embeddings, id_column="instance_id",
                         images=images, quality={}, what="character", params=DatasetParams(),
                         captioning={"backend": "template", "template": {}}, decisions=decisions)


def test_ticks_choose_the_loras_and_caption_edits_reach_the_dataset():
    main, each = datasets(decide(names={"character_0": "marco"}, train=["character_1"],
                                 tags={"add": ["cartoon"]}))
    assert main.name == "character_1" and list(each) == ["character_1"]  # marco, the largest, unticked
    assert all(c.startswith("character_1, ") and c.endswith(", cartoon") for c in main.captions.values())
    main, each = datasets(decide(train=[]))
    assert each == {} and "ticks no character" in main.skipped
    main, each = datasets(decide())  # no ticks: every cluster of min_images or more, as without curation
    assert set(each) == {"character_0", "character_1", "character_2"}


def test_the_curation_file_is_per_film_kept_when_replaced_and_checked(tmp_path):
    film = tmp_path / "films" / "megamind.avi"
    data = CurationFile(str(tmp_path / "curation"), str(film))
    assert data.load() is None and data.path.name == "megamind.yml"
    data.save({"characters": {"names": {"character_0": "megamind"}}})
    data.save({"characters": {"names": {"character_0": "roxanne"}}})
    assert data.load() == {"film": "megamind.avi", "characters": {"names": {"character_0": "roxanne"}}}
    (old,) = data.history.iterdir()
    assert yaml.safe_load(old.read_text())["characters"]["names"]["character_0"] == "megamind"
    data.path.write_text(yaml.safe_dump({"film": "other.mp4"}))
    with pytest.raises(Exception, match=r"megamind\.yml.*made for the film 'other\.mp4'"):
        data.load()


def test_a_curation_file_for_another_version_of_the_film_is_refused(tmp_path):
    film = tmp_path / "film.mp4"
    film.write_bytes(b"version one")
    data = CurationFile(str(tmp_path / "curation"), str(film))
    data.save({"characters": {"exclude": ["f000012_0"]}})
    assert "film_sha256" in yaml.safe_load(data.path.read_text())
    assert data.load() == {"film": "film.mp4", "characters": {"exclude": ["f000012_0"]}}
    film.write_bytes(b"version two, re-encoded")  # frame 12 may now be another picture
    with pytest.raises(Exception, match=r"another version of 'film\.mp4'.*name frames of that version"):
        CurationFile(str(tmp_path / "curation"), str(film)).load()
