"""`kedro run --pipelines=training` on the tiny demo's datasets, through KedroSession."""

import json
import pathlib
import sqlite3

import pandas as pd
import pytest
from safetensors import safe_open

from animation_lora.datasets import read_lora
from animation_lora.hpo import network_alpha
from animation_lora.lora_format import LORA_TYPES
from tests.conftest import run_session


def best_complete_trial(trials: pd.DataFrame) -> dict:
    """The searched parameters of the best COMPLETE trial (pruned trials have no value), alpha as trained."""
    complete = trials[trials.state == "COMPLETE"]
    assert len(complete), "no trial completed"
    row = complete.loc[complete.value.idxmin()]
    searched = {
        k[len("param_") :]: v.item() if hasattr(v, "item") else v
        for k, v in row.items()
        if k.startswith("param_") and v == v
    }
    return network_alpha(searched, {})


@pytest.mark.slow
def test_search_then_one_lora_per_type_tracked_in_mlflow(kedro_project):
    for pipeline in ("preprocessing", "background", "pose", "expression", "training"):
        run_session(kedro_project, pipeline)
    models = kedro_project / "data" / "06_models"
    best = json.loads(next((models / "best_hyperparameters.json").glob("*/*.json")).read_text())
    trials = pd.read_parquet(next((models / "hpo_trials.parquet").glob("*/*.parquet")))
    assert len(trials) == 3
    assert best_complete_trial(trials) == {k: best[k] for k in best_complete_trial(trials)}
    names = {}  # the LoRA's name: its MLflow run is "<name> LoRA"
    for kind in ("character", "background"):
        lora = read_lora(next((models / f"{kind}_lora.safetensors").glob("*/*")))
        names[kind] = lora.metadata["ss_output_name"]
        assert lora.metadata["ss_network_dim"] == str(best["network_dim"])
        assert float(lora.metadata["ss_learning_rate"]) == best["learning_rate"]
        assert float(lora.metadata["ss_text_encoder_lr"]) == 0.8 * best["learning_rate"]
        assert lora.trigger.startswith("scene_" if kind == "background" else "character_")
        # the LoRA's own name from its dataset's sidecar, not the dataset folder's name ("character_lora")
        assert lora.metadata["ss_output_name"] == lora.trigger
        assert lora.modules("lora_unet_") and lora.modules("lora_te_text_model_encoder_layers_")
        history = pd.read_parquet(next((models / f"{kind}_training_history.parquet").glob("*/*")))
        assert history.val_loss.notna().sum() >= 2
    # the character LoRAs train on captions that name the action and expression of each instance
    (tagged,) = (kedro_project / "data" / "05_model_input" / "character_tagged_lora").glob("*/*/images")
    captions = [p.read_text() for p in tagged.glob("*.txt")]
    assert any(w in c for c in captions for w in (", running", ", walking", ", standing", ", jumping"))
    for kind, word in (("pose", " pose"), ("expression", " expression")):  # the searched values transfer
        lora = read_lora(next((models / f"{kind}_lora.safetensors").glob("*/*")))
        assert lora.trigger.endswith(word) and lora.metadata["ss_network_dim"] == str(best["network_dim"])
        assert lora.modules("lora_unet_")
    with sqlite3.connect(kedro_project / "mlflow.db") as db:
        (training_run,) = db.execute("select run_uuid from runs where name = 'training'").fetchall()
        children = dict(
            db.execute(
                "select r.name, r.status from runs r join tags t on t.run_uuid = r.run_uuid "
                "where t.key = 'mlflow.parentRunId' and t.value = ?",
                training_run,
            ).fetchall()
        )
        # one child run per trial (its real end state) and one per trained LoRA
        expected_trials = {
            f"trial {n}": {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}[s]
            for n, s in zip(trials.number, trials.state, strict=True)
        }
        # every selected character and scene has its LoRA (the main one among them), each its own run
        trained = {p.stem for kind in LORA_TYPES
                   for p in (models / f"{kind}_loras").glob("*/*/*.safetensors")}
        assert set(names.values()) <= trained and len(trained) > len(names)  # the tiny film: 2 + 3 + … LoRAs
        # per-name training keeps every name's history (one table, a `name` column), the main LoRA's included
        by_name = {kind: next((models / f"{kind}_training_history_by_name.parquet").glob("*/*"))
                   for kind in LORA_TYPES}
        by_name = {kind: pd.read_parquet(path) for kind, path in by_name.items()}
        assert set().union(*(set(h.name) for h in by_name.values())) == trained
        assert all(h.loss.notna().any() for h in by_name.values() if len(h))
        assert children == {**expected_trials, **{f"{name} LoRA": "FINISHED" for name in trained}}
        # MLflow 3's UI opens a model-training experiment on its runs (not on an empty GenAI traces page)
        kind = db.execute("select value from experiment_tags where key = 'mlflow.experimentKind'").fetchall()
        assert kind == [("custom_model_development",)]
        for name in names.values():
            (run_id,) = db.execute("select run_uuid from runs where name = ?", (f"{name} LoRA",)).fetchone()
            params = dict(db.execute("select key, value from params where run_uuid = ?", (run_id,)))
            assert float(params["learning_rate"]) == best["learning_rate"]  # trained with, not the default
            assert int(params["network_dim"]) == best["network_dim"]
            assert params["lr_scheduler"] == best["lr_scheduler"]
            # the bucket histogram, as in the file's ss_bucket_info (kohya's)
            buckets = {k: int(v) for k, v in params.items() if k.startswith("bucket_")}
            with safe_open(str(next(models.glob(f"*_loras/*/*/{name}.safetensors"))), "pt") as f:
                info = json.loads(f.metadata()["ss_bucket_info"])["buckets"].values()
            assert buckets == {f"bucket_{b['resolution'][0]}x{b['resolution'][1]}": b["count"] for b in info}
            assert buckets and all(n > 0 for n in buckets.values())
            steps = db.execute(
                "select count(distinct step) from metrics where run_uuid = ? and key = 'loss'", (run_id,)
            ).fetchone()[0]
            assert steps >= 2  # a live curve, one point per step
            artifacts = db.execute("select artifact_uri from runs where run_uuid = ?", (run_id,)).fetchone()[
                0
            ]
            assert any(
                p.suffix == ".safetensors" for p in pathlib.Path(artifacts.replace("file://", "")).rglob("*")
            )
        keys = db.execute("select distinct key from metrics where run_uuid = ?", training_run)
        metrics = {k for (k,) in keys}
        assert {"character.loss", "character.val_loss", "background.loss"} <= metrics
        (artifacts_logged,) = db.execute(
            "select artifact_uri from runs where run_uuid = ?", training_run
        ).fetchone()
    root = artifacts_logged.replace("file://", "")

    logged = {p.name for p in pathlib.Path(root).rglob("*") if p.is_file()}
    assert {"character_lora.safetensors", "background_lora.safetensors", "hpo_convergence.png"} <= logged
    # the curation app links every trained LoRA to its run
    from animation_lora.curate.app import Project

    assert set(Project(kedro_project).lora_runs()) >= trained
