"""The search for people: the trials as a table (`hpo_trials`) and the picture of the search, objective per
trial and the best so far (`hpo_convergence`)."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pandas as pd
from PIL import Image


def trials_table(study: optuna.Study) -> pd.DataFrame:
    rows = []
    for t in study.trials:
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "steps_reported": len(t.intermediate_values),
                "last_step": max(t.intermediate_values) if t.intermediate_values else 0,
                # JSON text: a Parquet struct column cannot be empty (no trial reported a value)
                "intermediate": json.dumps({str(k): v for k, v in sorted(t.intermediate_values.items())}),
                **{f"param_{k}": v for k, v in t.params.items()},
            }
        )
    return pd.DataFrame(rows)


def convergence_plot(study: optuna.Study, monitor_stop: int | None = None) -> Image.Image:
    """Objective per trial and the best so far: the picture of the search (a bare Figure drawn by Agg: no
    pyplot, so no process-wide backend is chosen)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    fig = Figure(figsize=(6, 3.5), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.subplots()
    if done:
        x = [t.number for t in done]
        y = [t.value for t in done]
        ax.scatter(x, y, label="trial validation loss", s=18)
        ax.step(x, np.minimum.accumulate(y), where="post", color="C1", label="best so far")
    pruned = [t.number for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    if pruned:
        ax.scatter(pruned, [min(y) if done else 0] * len(pruned), marker="x", color="grey", label="pruned")
    if monitor_stop is not None:
        ax.axvline(monitor_stop, color="C3", linestyle="--", label="converged")
    ax.set_xlabel("trial")
    ax.set_ylabel("validation loss")
    best = f": best {study.best_value:.4f} (trial {study.best_trial.number})" if done else ""
    ax.set_title(study.study_name + best)
    ax.legend(fontsize=8)
    fig.tight_layout()
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())
