"""Issue 22, in a real browser (headless Chromium driven by Playwright): on the tiny demo film after
preprocessing and the background, pose and expression pipelines, a person renames character_0 to marco,
moves an image of another cluster into it (the tiny film clusters right: one is moved on purpose), excludes
one, replaces a tag across the characters' datasets, unticks a scene and presses rerun; the new kohya
folders are then marco's (the moved image in, the excluded one out, the tag replaced in every caption) and
the unticked scene has none. Screenshots of every page go to $CURATION_SCREENSHOTS when it is set (the
README's pictures: `make curation-screenshots`)."""

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import yaml
from kedro.framework.session import KedroSession

from tests.conftest import TINY_PARAMS, run_session

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
KEEP_ALL = {"preprocessing": {"character_dataset": {"target_size": 500}},
            "background": {"scene_dataset": {"target_size": 500, "min_images": 1}}}
UNTIL = ["character.lora_datasets", "background.lora_datasets"]  # the rerun stops at the datasets


def catalog(project):
    with KedroSession.create(project_path=project) as session:
        return session.load_context().catalog


@pytest.fixture
def served(kedro_project):
    """The app on a free loopback port over a project that ran preprocessing, background, pose, expression."""
    pytest.importorskip("playwright")
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    import uvicorn

    from animation_lora.curate.app import Project, make_app
    from tests.conftest import deep_merge

    params = deep_merge(TINY_PARAMS, KEEP_ALL)  # the app's rerun (a `kedro run`) reads them from conf
    (kedro_project / "conf" / "local" / "parameters.yml").write_text(yaml.safe_dump(params))
    run_session(kedro_project, "preprocessing", runtime_params=params)
    for pipeline in ("background", "pose", "expression"):
        run_session(kedro_project, pipeline, runtime_params=params)
    server = uvicorn.Server(uvicorn.Config(make_app(Project(kedro_project, to_outputs=UNTIL)),
                                           host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.1)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield kedro_project, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def group(page, label: str):
    return page.locator(f"section.group[data-label='{label}']")


def test_curating_in_the_browser_changes_what_the_pipelines_make(served):
    from playwright.sync_api import sync_playwright

    project, url = served
    before = catalog(project)
    characters, scenes = before.load("character.lora_datasets"), before.load("background.lora_datasets")
    assert {"character_0", "character_1"} <= set(characters) and len(scenes) >= 2, (list(characters), scenes)
    moved, excluded = sorted(characters["character_1"].images)[0], sorted(characters["character_0"].images)[0]
    framing = characters["character_0"].captions[excluded].split(", ")[-1]
    unticked = sorted(scenes)[-1]
    shots = Path(os.environ.get("CURATION_SCREENSHOTS", project / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/characters")
        for kind in ("characters", "scenes", "poses", "expressions"):
            page.goto(f"{url}/{kind}")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(shots / f"curate_{kind}.png"))
        page.goto(f"{url}/characters")

        def act(click):  # every button saves, then the page reloads
            with page.expect_navigation():
                click()

        first = group(page, "character_0")
        first.locator("input.name").fill("marco")
        act(lambda: group(page, "character_0").locator("button[data-act=name]").click())
        page.locator(f"figure[data-id='{moved}']").click()
        page.select_option("#target", label="marco")
        act(lambda: page.locator("#bar button[data-act=move]").click())
        page.locator(f"figure[data-id='{excluded}']").click()
        act(lambda: page.locator("#bar button[data-act=exclude]").click())
        marco = group(page, "marco")
        marco.locator("summary").click()
        marco.locator("input.tag").fill(framing)
        marco.locator("input.replacement").fill("whole figure")
        act(lambda: group(page, "marco").locator("button[data-act=tag-replace]").click())
        page.goto(f"{url}/scenes")
        act(lambda: group(page, unticked).locator("input.train").uncheck())
        assert not group(page, unticked).locator("input.train").is_checked()
        page.click("#rerun")
        page.wait_for_function("document.getElementById('message').textContent.startsWith('run finished')"
                               " || document.getElementById('message').className === 'error'",
                               timeout=600_000)
        assert page.locator("#message").text_content().startswith("run finished"), \
            page.locator("#runlog").text_content()[-3000:]
        page.goto(f"{url}/characters")
        page.screenshot(path=str(shots / "curate_characters_after.png"))
        browser.close()

    after = catalog(project)
    characters, scenes = after.load("character.lora_datasets"), after.load("background.lora_datasets")
    assert "marco" in characters and "character_0" not in characters
    marco = characters["marco"]
    assert moved in marco.images and excluded not in marco.images
    assert all(c.startswith("marco, ") and framing not in c.split(", ") for c in marco.captions.values())
    assert unticked not in scenes and scenes  # the other scenes keep their datasets
