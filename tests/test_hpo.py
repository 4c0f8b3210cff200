"""The Optuna search's storage, worker sharing, resume, pruning and convergence monitor, with a cheap
objective (the real one trains a LoRA: tests/pipelines/training)."""

import multiprocessing
import time

import optuna
import pytest

from animation_lora.hpo import best_hyperparameters, convergence_plot, network_alpha, run_search, trials_table

SPACE = {
    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "network_dim": {"type": "categorical", "choices": [2, 4, 8]},
    "network_alpha_ratio": {"type": "categorical", "choices": [0.5, 1.0]},
}


def search(tmp_path, n_trials, **extra):
    return {
        "n_trials": n_trials,
        "study_name": "s",
        "storage": f"sqlite:///{tmp_path}/optuna.db",
        "pruner": "median",
        "seed": 0,
        "convergence": {"patience": 100, "rel_tol": 0.0},
        "space": SPACE,
        **extra,
    }


def quadratic(params, report):
    for step in range(3):
        if report(step, (params["learning_rate"] - 0.01) ** 2 + step * 1e-6):
            break
    return (params["learning_rate"] - 0.01) ** 2


def worker(tmp_path, n):
    run_search(quadratic, search(tmp_path, n))


def test_two_workers_share_one_study_without_duplicates(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    run_search(quadratic, search(tmp_path, 1))  # create the schema before two processes race for it
    procs = [ctx.Process(target=worker, args=(tmp_path, 12)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/optuna.db")
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    ran = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert 12 <= len(ran) <= 13  # the total asked for (a worker's last trial may overlap the other's)
    # a trial a worker asked for after the other filled the study fails at once, marked as surplus
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert all(t.user_attrs.get("surplus") and not t.params for t in failed)


def test_a_killed_search_resumes_to_the_requested_total(tmp_path):
    study, _ = run_search(quadratic, search(tmp_path, 3))
    assert len(study.trials) == 3
    study, _ = run_search(quadratic, search(tmp_path, 7))
    assert len(study.trials) == 7 and len(trials_table(study)) == 7
    best = best_hyperparameters(study, {"network_dim": 4, "max_train_epochs": 1})
    assert set(best) == {
        "learning_rate",
        "network_dim",
        "network_alpha",
        "optimizer_type",
        "lr_scheduler",
        "gradient_accumulation_steps",
        "max_train_epochs",
    }
    assert best["network_alpha"] in (best["network_dim"] * 0.5, best["network_dim"] * 1.0)
    assert convergence_plot(study).size == (600, 350)


def test_the_convergence_monitor_stops_a_flat_search(tmp_path):
    flat = search(tmp_path, 50, convergence={"patience": 5, "rel_tol": 0.01})
    study, monitor = run_search(lambda p, r: 1.0, flat)
    assert monitor.stopped_at == 5 and len(study.trials) == 6


def test_the_pruner_stops_bad_trials_early(tmp_path):
    def slow_bad(params, report):
        for step in range(10):
            if report(step, params["learning_rate"]):
                return params["learning_rate"]
        return params["learning_rate"]

    study, _ = run_search(slow_bad, search(tmp_path, 12))
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and all(len(t.intermediate_values) < 10 for t in pruned)


def test_an_unreachable_database_is_a_clear_error_not_a_hang(tmp_path):
    start = time.time()
    with pytest.raises(ConnectionError, match=r"training\.search\.storage.*cannot be reached"):
        run_search(quadratic, search(tmp_path, 1, storage="postgresql://user:pw@127.0.0.1:9/nothing"))
    assert time.time() - start < 30


def test_network_alpha_ratio_is_relative_to_the_searched_or_trained_dim():
    assert network_alpha({"network_alpha_ratio": 0.5, "network_dim": 8}, {"network_dim": 32}) == {
        "network_dim": 8,
        "network_alpha": 4.0,
    }
    assert network_alpha({"network_alpha_ratio": 0.5}, {"network_dim": 32}) == {"network_alpha": 16.0}
    assert network_alpha({"network_alpha_ratio": 1.0}, {}) == {"network_alpha": 4.0}  # TrainConfig's dim
    assert network_alpha({"learning_rate": 0.1}, {}) == {"learning_rate": 0.1}


def test_bad_search_parameters_are_named(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"`training\.search\.pruner`: Input should be 'median', 'hyperband' "
        r"or 'none' \(got 'hyper'\)",
    ):
        run_search(quadratic, search(tmp_path, 1, pruner="hyper"))
    with pytest.raises(ValueError, match=r"`training\.search\.space\.learning_rate\.type`: Input should be"):
        run_search(quadratic, search(tmp_path, 1, space={"learning_rate": {"type": "loguniform"}}))
    with pytest.raises(ValueError, match=r"`training\.search\.n_trial`: unknown key; known keys: .*n_trials"):
        run_search(quadratic, search(tmp_path, 1, n_trial=3))


def test_a_restarted_search_does_not_replay_its_trials(tmp_path):
    study, _ = run_search(quadratic, search(tmp_path, 2))
    study, _ = run_search(quadratic, search(tmp_path, 4))
    drawn = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(drawn) == 4 and len(set(drawn)) == 4
    again, _ = run_search(quadratic, search(tmp_path / "b", 4))  # same seed, fresh study: same draws
    assert [tuple(sorted(t.params.items())) for t in again.trials] == drawn


def test_a_changed_dataset_starts_a_new_study(tmp_path, caplog):
    first, _ = run_search(quadratic, search(tmp_path, 2), dataset_fingerprint="aaa")
    same, _ = run_search(quadratic, search(tmp_path, 2), dataset_fingerprint="aaa")
    assert same.study_name == first.study_name and len(same.trials) == 2
    with caplog.at_level("INFO", logger="animation_lora.hpo"):
        other, _ = run_search(quadratic, search(tmp_path, 2), dataset_fingerprint="bbb")
    assert other.study_name != first.study_name and other.study_name.startswith("s-")
    said = f"changed since study '{first.study_name}': starting the new study '{other.study_name}'"
    assert said in caplog.text


def test_a_silent_trial_is_failed_and_retried(tmp_path):
    # no pruner: whether the retry is pruned would depend on which trials finished first (timing)
    cfg = search(tmp_path, 3, heartbeat_interval=1, pruner="none")
    study, _ = run_search(quadratic, search(tmp_path, 1, heartbeat_interval=1, pruner="none"))
    storage = study._storage
    dead = storage.create_new_trial(study._study_id)  # a worker killed mid-trial: RUNNING, no heartbeat
    lr = optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    storage.set_trial_param(dead, "learning_rate", 0.02, lr)
    storage.record_heartbeat(dead)
    # stale after the grace period (2 heartbeat intervals); SQLite's now() has whole seconds, so a heartbeat
    # 2.5 s old can read as 2 s (not stale yet) and the dead trial would be failed only mid-search
    time.sleep(3.5)
    study, _ = run_search(quadratic, cfg)
    states = [t.state.name for t in study.trials]
    assert states.count("FAIL") == 1 and study.trials[1].state.name == "FAIL"
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == 1]
    assert len(retried) == 1 and retried[0].params["learning_rate"] == 0.02
    assert retried[0].state.name == "COMPLETE"
    assert states.count("COMPLETE") == 3


def test_the_storage_url_comes_from_the_environment_and_errors_hide_its_password(monkeypatch, tmp_path):
    """Issue 25, 1: `storage: env:NAME` reads the URL (and its password) from the environment; an unreachable
    database's error shows the URL with *** for the password."""
    from animation_lora.hpo.search import Search, open_study, storage_url
    from animation_lora.params import parse

    monkeypatch.delenv("OPTUNA_TEST_URL", raising=False)
    with pytest.raises(ValueError, match=r"`training\.search\.storage` is 'env:OPTUNA_TEST_URL': environment "
                                         r"variable OPTUNA_TEST_URL is not set"):
        storage_url("env:OPTUNA_TEST_URL")
    monkeypatch.setenv("OPTUNA_TEST_URL", f"sqlite:///{tmp_path}/study.db")
    assert storage_url("env:OPTUNA_TEST_URL") == f"sqlite:///{tmp_path}/study.db"
    spec = dict(storage="postgresql://optuna:pw7391xq@127.0.0.1:1/optuna", study_name="s", n_trials=1,
                convergence={"patience": 2, "rel_tol": 0.01}, space={})
    with pytest.raises(ConnectionError, match=r"'postgresql://optuna:\*\*\*@127\.0\.0\.1:1/optuna'") as err:
        open_study(parse(Search, spec, "training.search"))
    assert "pw7391xq" not in str(err.value) and err.value.__cause__ is None
