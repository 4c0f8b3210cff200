"""The curation web app (FastAPI + Jinja2 + a little JavaScript): one page per kind, every button an edit
of the film's curation file (`view.edit`), saved through the catalog; a rerun button runs `kedro run
--from-nodes` on the nodes that read the file. Images are served by id from the catalog's own image
datasets, never from a path the client gives; every name and caption is escaped by Jinja2's autoescape."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..curation import KINDS, tag_frequency
from .view import SOURCES, edit, groups, stale

log = logging.getLogger(__name__)
# the nodes that read the curation file: a rerun starts there (and runs everything downstream)
READERS = ("cluster_characters_node", "cluster_scenes_node", "build_pose_dataset_node",
           "build_expression_datasets_node")
DATASETS = {"characters": "character.lora_datasets", "scenes": "background.lora_datasets",
            "poses": "pose.lora_datasets", "expressions": "expression.lora_datasets"}
ID = re.compile(r"[A-Za-z0-9_.\-]{1,120}")
PAGE = 200  # images per cluster shown at first; the rest on demand
THUMB = 128


class Project:
    """The Kedro project's catalog (the latest version of every dataset), reloaded after each rerun."""

    def __init__(self, root: Path, env: str | None = None, film_path: str | None = None,
                 to_outputs: list[str] | None = None):
        self.root, self.env, self.film_path = Path(root).resolve(), env, film_path
        self.to_outputs = to_outputs  # where a rerun stops (None: everything downstream, export included)
        self.reload()

    def reload(self) -> None:
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        bootstrap_project(self.root)
        params = {"film_path": self.film_path} if self.film_path else {}
        with KedroSession.create(project_path=self.root, env=self.env, runtime_params=params) as session:
            context = session.load_context()
            self.catalog = context.catalog
            mlflow_config = getattr(context, "mlflow", None)  # kedro-mlflow's, when its hook is on
            self.tracking_uri = mlflow_config.server.mlflow_tracking_uri if mlflow_config else None
        self._cache: dict[str, Any] = {}

    def load(self, name: str, default: Any = None) -> Any:
        if name not in self._cache:
            try:
                self._cache[name] = self.catalog.load(name)
            except Exception:  # not made yet (the pipeline that makes it has not run): shown as empty
                if default is None:
                    raise
                self._cache[name] = default
        return self._cache[name]

    def lora_runs(self) -> dict[str, str]:
        """`{LoRA name: its latest MLflow run's path in the MLflow UI}` (`#/experiments/<id>/runs/<id>`);
        empty where tracking is off or nothing was trained yet."""
        import mlflow

        if "lora_runs" not in self._cache:
            found = {}
            try:
                client = mlflow.MlflowClient(self.tracking_uri)
                experiments = [e.experiment_id for e in client.search_experiments()]
                for run in client.search_runs(experiments, "tags.kind = 'lora'", order_by=["start_time ASC"]):
                    found[run.data.tags.get("key", run.info.run_name)] = \
                        f"#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
            except Exception as err:  # no store yet, or a server that does not answer: no links
                log.info("No MLflow runs to link to (%s)", err)
            self._cache["lora_runs"] = found
        return self._cache["lora_runs"]

    def curation(self) -> dict | None:
        return self.catalog.load("curation")

    def save_curation(self, data: dict) -> None:
        self.catalog.save("curation", data)


class Runner:
    """One `kedro run` at a time, in the background; its log's tail for the page."""

    def __init__(self):
        self.process: subprocess.Popen | None = None
        self.log: list[str] = []
        self.lock = threading.Lock()

    def start(self, project: Project) -> None:
        with self.lock:
            if self.process and self.process.poll() is None:
                raise RuntimeError("A run is already going: wait for it to end")
            args = [str(Path(sys.executable).parent / "kedro"), "run", "--from-nodes", ",".join(READERS)]
            if project.env:
                args += ["--env", project.env]
            if project.film_path:
                args += ["--params", f"film_path={project.film_path}"]
            if project.to_outputs:
                args += ["--to-outputs", ",".join(project.to_outputs)]
            self.log = [" ".join(args)]
            self.process = subprocess.Popen(args, cwd=project.root, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True)
            threading.Thread(target=self._follow, args=(self.process, project), daemon=True).start()

    def _follow(self, process: subprocess.Popen, project: Project) -> None:
        for line in process.stdout:
            self.log = [*self.log[-200:], line.rstrip()]
        process.wait()
        if process.returncode == 0:
            project.reload()

    def status(self) -> dict:
        running = bool(self.process and self.process.poll() is None)
        code = None if running or not self.process else self.process.returncode
        return {"running": running, "returncode": code, "log": self.log[-40:]}


def thumbnail(image: np.ndarray) -> bytes:
    picture = Image.fromarray(image)
    picture.thumbnail((THUMB, THUMB))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def make_app(project: Project, mlflow_ui: str = "http://127.0.0.1:5000", viz: str = "http://127.0.0.1:4141"):
    from fastapi import Body, FastAPI, HTTPException
    from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
    from jinja2 import Environment, PackageLoader, select_autoescape
    from kedro.io import DatasetError

    app = FastAPI(title="animation-lora curation", docs_url=None, redoc_url=None)
    pages = Environment(loader=PackageLoader("animation_lora.curate"), autoescape=select_autoescape())
    runner = Runner()

    def check_kind(kind: str) -> str:
        if kind not in KINDS:
            raise HTTPException(404, f"No page '{kind}'; the pages are {', '.join(KINDS)}")
        return kind

    def kind_groups(kind: str):
        table = project.load(SOURCES[kind][0], default=False)
        if table is False:
            return None, []
        return groups(kind, table, project.curation()), stale(kind, table, project.curation())

    @app.get("/")
    def home():
        return RedirectResponse("/characters")

    @app.get("/{kind}", response_class=HTMLResponse)
    def page(kind: str, show_all: str = ""):
        check_kind(kind)
        found, not_applied = kind_groups(kind)
        datasets = project.load(DATASETS[kind], default={}) or {}
        curation = project.curation() or {}
        captions = {i: c for d in datasets.values() for i, c in d.captions.items()}
        captions |= curation.get(kind, {}).get("captions", {})  # edits not yet run
        frequencies = {name: tag_frequency(d.captions) for name, d in datasets.items()}
        # where each image comes from, a purity signal beside its similarity: its track, or a plate's shot
        index, column, key = (("frame_index", "shot", "frame_id") if kind == "scenes"
                              else ("instance_index", "track", "instance_id"))
        table = project.load(index, default=False)
        origin = ({str(i): f"{column} {v}" for i, v in zip(table[key], table[column], strict=True)}
                  if table is not False and column in table else {})
        return pages.get_template("kind.html").render(
            kinds=KINDS, kind=kind, groups=found, stale=not_applied,
            pictured=set(project.load(SOURCES[kind][3], default={}) or {}),
            page_size=None if show_all else PAGE, captions=captions, origin=origin,
            frequencies=frequencies, film=project.catalog.get("curation").film.name,
            runs={name: f"{mlflow_ui}/{path}" for name, path in project.lora_runs().items()},
            # kedro-viz selects a node by name from its URL (`sn`): the node that applies these decisions
            viz=f"{viz}/?pid=__default__&sn={dict(zip(KINDS, READERS, strict=True))[kind]}",
            reader=dict(zip(KINDS, READERS, strict=True))[kind],
            curation_path=os.path.relpath(project.catalog.get("curation").path, project.root))

    @app.get("/image/{kind}/{item}")
    def image(kind: str, item: str):
        check_kind(kind)
        if not ID.fullmatch(item):
            raise HTTPException(400, "Not an image id")
        images = project.load(SOURCES[kind][3], default={}) or {}
        if item not in images:  # only ids the catalog's own folder holds: no path from the client
            raise HTTPException(404, f"No image '{item}' among the {kind}")
        loaded = images[item]() if callable(images[item]) else images[item]
        return Response(thumbnail(np.asarray(loaded)), media_type="image/png",
                        headers={"Cache-Control": "max-age=3600"})

    @app.post("/api/{kind}/{action}")
    def decide(kind: str, action: str, args: dict = Body(...)):
        check_kind(kind)
        try:
            data = edit(project.curation(), kind, action, **args)
        except (ValueError, KeyError, TypeError) as err:
            raise HTTPException(400, str(err)) from err
        project.save_curation(data)
        return {"saved": str(project.catalog.get("curation").path), kind: data.get(kind, {})}

    @app.post("/api/rerun")
    def rerun():
        try:
            runner.start(project)
        except RuntimeError as err:
            raise HTTPException(409, str(err)) from err
        return runner.status()

    @app.get("/api/run")
    def run_status():
        return runner.status()

    @app.exception_handler(DatasetError)
    def unreadable(request, err: DatasetError):  # e.g. a curation file made for another film: say so
        return PlainTextResponse(str(err), status_code=409)

    app.state.runner = runner
    return app
