"""Issue 22: the curation app (FastAPI, through Starlette's TestClient) on a project whose last run made
character clusters: pages, every button as a saved decision, names and captions escaped, images only by id
from the catalog, loopback only unless asked."""

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from starlette.testclient import TestClient

from animation_lora.curate.__main__ import check_host
from animation_lora.curate.app import Project, make_app


@pytest.fixture
def app(kedro_project):
    """The project after a run that clustered five instances: character_0 (3), character_1 (1), noise (1)."""
    ids = ["f000001_0", "f000002_0", "f000003_0", "f000004_0", "f000005_0"]
    clusters = pd.DataFrame({"instance_id": ids, "cluster": ["character_0"] * 3 + ["character_1", "noise"],
                             "similarity": [0.9, 0.8, 0.7, 0.9, 0.1],
                             "assigned_by": ["hdbscan"] * 4 + ["no face"]})
    images = {i: np.full((40, 20, 4), 60 * k, np.uint8) for k, i in enumerate(ids)}
    bootstrap_project(kedro_project)
    with KedroSession.create(project_path=kedro_project) as session:
        catalog = session.load_context().catalog
        catalog.save("character_clusters", clusters)
        catalog.save("character_instances", images)
    project = Project(kedro_project)
    return TestClient(make_app(project)), project


def saved(project) -> dict:
    return yaml.safe_load(project.catalog.get("curation").path.read_text())


def test_the_page_shows_clusters_and_the_images_left_out_with_why(app):
    client, _ = app
    page = client.get("/characters")
    assert page.status_code == 200
    assert page.text.index("character_0") < page.text.index("character_1") < page.text.index("left out")
    assert "no face" in page.text and page.text.count('<img loading="lazy"') == 5
    assert "f000002_0 · hdbscan · similarity 0.8" in page.text  # why it is there, how close to the centre
    picture = client.get("/image/characters/f000002_0")
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert client.get("/scenes").status_code == 200  # not made yet: says so, no error
    assert client.get("/nonsense").status_code == 404


def test_every_button_is_a_decision_in_the_curation_file(app):
    client, project = app
    named = client.post("/api/characters/name", json={"key": "character_0", "name": "marco"})
    assert named.status_code == 200
    client.post("/api/characters/move", json={"ids": ["f000003_0"], "into": "character_1"})
    client.post("/api/characters/include", json={"ids": ["f000005_0"], "into": "character_0"})
    client.post("/api/characters/exclude", json={"ids": ["f000002_0"]})
    client.post("/api/characters/tags", json={"tag": "standing", "replace": "idle"})
    client.post("/api/characters/train", json={"label": "character_1", "on": False,
                                                "all": ["marco", "character_1"]})
    decisions = saved(project)["characters"]
    assert decisions == {"names": {"character_0": "marco"},
                         "assign": {"f000003_0": "character_1", "f000005_0": "character_0"},
                         "exclude": ["f000002_0"], "tags": {"replace": {"standing": "idle"}},
                         "train": ["marco"]}
    page = client.get("/characters").text
    marco, lucia = page.index("<h2>marco</h2>"), page.index("<h2>character_1</h2>")
    assert page.index('data-id="f000005_0"', marco) < lucia  # included, shown in marco
    assert page.index('data-id="f000003_0"', lucia) < page.index("left out")
    assert page.index('data-id="f000002_0"') > page.index("left out")


def test_bad_names_are_refused_and_what_is_shown_is_escaped(app):
    client, project = app
    refused = client.post("/api/characters/name", json={"key": "character_0", "name": "<b>x</b>"})
    assert refused.status_code == 400 and "letters, digits" in refused.json()["detail"]
    assert not project.catalog.get("curation").path.exists()  # nothing saved
    client.post("/api/characters/caption", json={"id": "f000001_0", "text": "<script>alert(1)</script>"})
    page = client.get("/characters").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_images_come_only_from_the_catalog_by_id(app):
    client, _ = app
    assert client.get("/image/characters/f999999_0").status_code == 404
    assert client.get("/image/characters/..%2F..%2Fconf%2Fbase%2Fcatalog.yml").status_code in (400, 404)
    assert client.get("/image/characters/%2Fetc%2Fpasswd").status_code in (400, 404)


def test_the_app_binds_loopback_unless_told():
    assert check_host("127.0.0.1", False) == "127.0.0.1" and check_host("::1", False) == "::1"
    with pytest.raises(SystemExit, match="Refusing.*0.0.0.0"):
        check_host("0.0.0.0", False)
    assert check_host("0.0.0.0", True) == "0.0.0.0"


def test_decisions_the_run_cannot_apply_are_shown(app):
    client, project = app
    project.save_curation({"characters": {"assign": {"f999999_0": "character_0"},
                                          "names": {"character_7": "x"}}})
    page = client.get("/characters").text
    assert "2 decision(s) this run cannot apply" in page
    assert "no character image `f999999_0`" in page and "no character cluster `character_7`" in page
