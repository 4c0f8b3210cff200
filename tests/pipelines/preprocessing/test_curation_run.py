"""Issue 22: a curation file changes what the pipelines make. Preprocessing runs on the tiny film; then a
person's decisions (as the app saves them) and a rerun from the first node that reads them: the kohya
folder is the named character's, the moved image in it, the excluded one gone, the tag replaced in every
caption, and the unticked character has no dataset."""

import pytest
from kedro.framework.session import KedroSession

from tests.conftest import run_session

pytestmark = pytest.mark.slow
KEEP_ALL = {"preprocessing": {"character_dataset": {"target_size": 500}}}  # every member in its dataset


def catalog(project):
    with KedroSession.create(project_path=project) as session:
        return session.load_context().catalog


def test_the_curation_file_renames_moves_excludes_retags_and_unticks(kedro_project):
    run_session(kedro_project, "preprocessing", runtime_params=KEEP_ALL)
    before = catalog(kedro_project).load("character.lora_datasets")
    assert {"character_0", "character_1"} <= set(before)
    first, second = sorted(before["character_0"].images), sorted(before["character_1"].images)
    framing = before["character_0"].captions[first[0]].split(", ")[-1]  # e.g. `full body`
    catalog(kedro_project).save("curation", {"characters": {
        "names": {"character_0": "marco"}, "assign": {second[0]: "character_0"}, "exclude": [first[0]],
        "tags": {"replace": {framing: "whole figure"}}, "train": ["marco"]}})

    run_session(kedro_project, "preprocessing", runtime_params=KEEP_ALL,
                from_nodes=["cluster_characters_node"])
    after = catalog(kedro_project).load("character.lora_datasets")
    assert list(after) == ["marco"]  # character_1 unticked: no dataset, no LoRA
    marco = after["marco"]
    assert marco.trigger == "marco" and second[0] in marco.images and first[0] not in marco.images
    assert all(c.startswith("marco, ") for c in marco.captions.values())
    assert not any(framing in c.split(", ") for c in marco.captions.values())
    assert any("whole figure" in c for c in marco.captions.values())
    clusters = catalog(kedro_project).load("character_clusters").set_index("instance_id")
    assert clusters.at[first[0], "assigned_by"] == "excluded (curation)"
    assert clusters.at[second[0], "fit_cluster"] == "character_1"  # what the decisions were about
