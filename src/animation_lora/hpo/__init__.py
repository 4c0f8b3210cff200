"""Hyper-parameter search with Optuna (the brief asks for 50 trials on the character LoRA, a convergence
monitor, and best_hyperparameters.json reused by the other LoRA types).

The study lives in persistent storage (SQLite under data/06_models by default, or any RDB URL such as
PostgreSQL) so several workers on several machines share one study and a killed search resumes. A worker
joins by running the same `OPTUNA_STORAGE=postgresql://user:pw@host/db kedro run --pipelines=training --params
training.search.storage=env:OPTUNA_STORAGE` (same parameters and data; a URL with a password given as a
parameter is refused: parameters are logged); trials are counted across workers up to exactly `n_trials`
finished (complete or pruned) ones. Each trial's sampler is seeded by (seed, trial number), so a restart or
another worker never replays a trial. A live trial sends a heartbeat (`heartbeat_interval`); a killed
worker's trial is failed by the next worker that starts one and retried (Optuna's retry callback). The
study's name carries the dataset's and the search space's fingerprint: new preprocessing or a changed space
starts a new study (logged). Once done, every worker (or `optuna.load_study(...).best_trial`) has the best
parameters; the node writes them to best_hyperparameters.json.

- `search`: the `training.search` block (`Search`), `run_search`, `best_hyperparameters`
- `report`: `trials_table`, `convergence_plot`"""

from .report import convergence_plot, trials_table
from .search import (
    BEST_KEYS,
    Convergence,
    ConvergenceMonitor,
    Dimension,
    Search,
    best_hyperparameters,
    network_alpha,
    open_study,
    run_search,
    search_fingerprint,
)

__all__ = [
    "BEST_KEYS",
    "Convergence",
    "ConvergenceMonitor",
    "Dimension",
    "Search",
    "best_hyperparameters",
    "convergence_plot",
    "network_alpha",
    "open_study",
    "run_search",
    "search_fingerprint",
    "trials_table",
]
