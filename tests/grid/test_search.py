"""harness tune's search engine (grid/search.py, grid/search_worker.py): the choice on validation only, ties,
pruning, resume, no candidate run twice. Quick tests drive the real engine (Optuna, its journal, the claims, the
records on disk) with a trainer that writes hand-made records; the slow ones train tiny models in real processes."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import fake_trainer, harness
from records import curve_record

from harness.api import tuning
from harness.grid import search as search_mod
from harness.grid import search_worker
from harness.grid.search_worker import work
from harness.record.search import read_search, search_path, search_root
from harness.record.store import read_record, record_path, write_record
from harness.registry.load import local_name

quiet = lambda line: None  # noqa: E731


def resolve(toy_env, model, **kwargs):
    kwargs = {"results": toy_env["results"], "limit": 16, "epochs": 3, **kwargs}
    return tuning.resolve("toy", str(model), **kwargs).spec


def by_lr(table):
    """curves(point, n) from {learning rate: (validation curve, test curve)}."""
    return lambda point, n: dict(zip(("validation", "test"), table[point["learning_rate"]], strict=True))


def test_the_choice_is_made_on_validation_and_test_is_never_read(toy_env, tiny_encoder):
    # 2e-5 is best on validation; 8e-5 on test, by far: the choice must be 2e-5, with 2e-5's validation score.
    spec = resolve(toy_env, tiny_encoder)
    curves = {1e-5: ([0.5, 0.6, 0.6], [0.5, 0.5, 0.5]), 2e-5: ([0.6, 0.9, 0.8], [0.3, 0.3, 0.3]),
              4e-5: ([0.5, 0.7, 0.7], [0.6, 0.6, 0.6]), 8e-5: ([0.5, 0.55, 0.5], [0.95, 0.99, 0.97])}
    record = work(spec, fake_trainer(spec, by_lr(curves)), quiet)
    assert record.choice.settings == {"learning_rate": 2e-5} and record.choice.mean == 0.9  # epoch 2, on validation
    scores = {c.settings["learning_rate"]: c.mean for c in record.candidates}
    assert scores == {1e-5: 0.6, 2e-5: 0.9, 4e-5: 0.7, 8e-5: 0.55}
    assert [c.settings["learning_rate"] for c in record.candidates] == [1e-5, 2e-5, 4e-5, 8e-5]  # grid order
    assert record.direction == "maximize" and record.metric == "accuracy" and record.search_seeds == [1000]
    # the candidates' records are ordinary records in their own variants, under <results>/search/
    for c in record.candidates:
        (path,) = c.records
        assert path == f"search/toy/{spec.model}/{c.variant}/seed1000.json"
        assert read_record(toy_env["results"] / path).variant == c.variant
    assert read_search(search_path(spec.results, "toy", spec.model, spec.base_variant)) == record


def test_the_objective_is_the_mean_over_search_seeds(toy_env, tiny_encoder):
    spec = resolve(toy_env, tiny_encoder, search_seeds=2, grid=["lr=1e-5,2e-5"])
    # per seed: 1e-5 scores 0.8 then 0.4 (mean 0.6); 2e-5 0.7 and 0.7 (mean 0.7): the mean decides, not the best seed
    values = {(1e-5, 1000): 0.8, (1e-5, 1001): 0.4, (2e-5, 1000): 0.7, (2e-5, 1001): 0.7}
    seeds = iter([1000, 1001] * 2)  # each candidate trains its two seeds in order
    calls = []

    def curves(point, n):
        v = values[(point["learning_rate"], next(seeds))]
        return {"validation": [v], "test": [0.5]}

    record = work(spec, fake_trainer(spec, curves, calls), quiet)
    assert sorted(seed for _, seed in calls) == [1000, 1000, 1001, 1001]
    assert {c.settings["learning_rate"]: c.scores for c in record.candidates} == {
        1e-5: {"1000": 0.8, "1001": 0.4}, 2e-5: {"1000": 0.7, "1001": 0.7}}
    assert record.choice.settings == {"learning_rate": 2e-5} and record.choice.mean == pytest.approx(0.7)


def test_a_tie_goes_to_the_smaller_learning_rate_then_to_grid_order(toy_env, tiny_encoder):
    spec = resolve(toy_env, tiny_encoder, grid=["lr=4e-5,1e-5,2e-5"])
    curves = {4e-5: ([0.8], [0.9]), 1e-5: ([0.8], [0.5]), 2e-5: ([0.7], [0.5])}
    record = work(spec, fake_trainer(spec, by_lr(curves)), quiet)
    assert record.choice.settings == {"learning_rate": 1e-5}  # tied with 4e-5, first in the grid: the smaller wins
    assert "tied with learning_rate=4e-05" in record.choice.why
    # no learning rate among the searched fields: grid order breaks the tie
    spec = resolve(toy_env, tiny_encoder, grid=["epochs=3,2"], epochs=None, results=toy_env["results"] / "b")
    record = work(spec, fake_trainer(spec, lambda point, n: {"validation": [0.8] * point["epochs"],
                                                              "test": [0.5] * point["epochs"]}), quiet)
    assert record.choice.settings == {"epochs": 3}


def test_a_lower_is_better_metric_is_minimized(toy_env, tiny_encoder):
    spec = resolve(toy_env, tiny_encoder, grid=["lr=1e-5,2e-5"])
    spec.metric, spec.direction = "accuracy", "minimize"  # as for MSE: the smaller validation score wins
    record = work(spec, fake_trainer(spec, by_lr({1e-5: ([0.3], [0.5]), 2e-5: ([0.2], [0.5])})), quiet)
    assert record.choice.settings == {"learning_rate": 2e-5}


def test_failed_and_pruned_candidates_are_never_chosen(toy_env, tiny_encoder):
    spec = resolve(toy_env, tiny_encoder, grid=["lr=1e-5,2e-5,4e-5"])

    def curves(point, n):
        if point["learning_rate"] == 4e-5:
            return {"status": "failed"}
        return {"validation": [0.6 if point["learning_rate"] == 1e-5 else 0.7], "test": [0.5]}

    record = work(spec, fake_trainer(spec, curves), quiet)
    states = {c.settings["learning_rate"]: c.state for c in record.candidates}
    assert states == {1e-5: "complete", 2e-5: "complete", 4e-5: "failed"}
    assert record.choice.settings == {"learning_rate": 2e-5} and "1 pruned, failed or unfinished" in record.choice.why
    # a pruned candidate whose partial score beats every complete one is not chosen either
    pruned = search_worker.read_candidate(spec, {"learning_rate": 2e-5})[0]
    pruned.state, pruned.mean, pruned.scores = "pruned", 0.99, {"1000": 0.99}  # a mean it should not have
    complete = search_worker.read_candidate(spec, {"learning_rate": 1e-5})[0]
    assert search_worker.choose([pruned, complete], spec).settings == {"learning_rate": 1e-5}
    assert search_worker.choose([pruned], spec) is None


def test_pruning_stops_a_candidate_worse_than_the_median_after_an_epoch(toy_env, tiny_encoder):
    spec = resolve(toy_env, tiny_encoder, prune=True)
    calls = []
    # the third candidate trained is bad from its first epoch on; two have finished before it (the pruner's start-up)
    curves = lambda point, n: ({"validation": [0.2, 0.2, 0.2], "test": [0.9, 0.9, 0.9]} if n == 3 else  # noqa: E731
                               {"validation": [0.6, 0.7, 0.8], "test": [0.5, 0.5, 0.5]})
    record = work(spec, fake_trainer(spec, curves, calls), quiet)
    bad = calls[2][0]
    (pruned,) = [c for c in record.candidates if c.state == "pruned"]
    assert pruned.settings == bad and "worse than the median" in pruned.reason and pruned.mean is None
    on_disk = read_record(toy_env["results"] / pruned.records[0])
    assert on_disk.status == "pruned" and len(on_disk.fits[0].epochs) == 1  # stopped after its first epoch
    assert record.choice.settings != bad
    # without --prune the same curves run to the end
    spec = resolve(toy_env, tiny_encoder, results=toy_env["results"] / "b")
    record = work(spec, fake_trainer(spec, curves), quiet)
    assert all(c.state == "complete" for c in record.candidates)


def test_an_interrupted_search_resumes_training_only_what_is_missing(toy_env, tiny_encoder):
    spec = resolve(toy_env, tiny_encoder)
    curves = lambda point, n: {"validation": [point["learning_rate"] * 1e4], "test": [0.5]}  # noqa: E731
    calls = []
    train = fake_trainer(spec, curves, calls)

    def interrupted(point, seed, on_epoch):
        if len(calls) == 2:  # Ctrl-C in the third candidate, before its record
            raise KeyboardInterrupt
        return train(point, seed, on_epoch)

    with pytest.raises(KeyboardInterrupt):
        work(spec, interrupted, quiet)
    assert len(calls) == 2 and not search_path(spec.results, "toy", spec.model, spec.base_variant).exists()
    done = {tuple(p.items()) for p, _ in calls}
    calls.clear()
    record = work(spec, train, quiet)
    assert len(calls) == 2 and not {tuple(p.items()) for p, _ in calls} & done  # the other two, each once
    assert [c.state for c in record.candidates] == ["complete"] * 4
    assert record.choice.settings == {"learning_rate": 8e-5}
    calls.clear()
    assert work(spec, train, quiet) == record and calls == []  # done: nothing trained, the same record


def test_a_candidate_another_live_worker_holds_is_waited_for_not_trained(toy_env, tiny_encoder, monkeypatch):
    from harness.grid import claims

    monkeypatch.setattr(search_worker, "POLL_S", 0.05)
    spec = resolve(toy_env, tiny_encoder, grid=["lr=1e-5"])
    point = {"learning_rate": 1e-5}
    held = claims.try_claim(search_worker.candidate_folder(spec, point))  # another worker's claim (alive: this pid)
    calls = []

    def finish():  # that worker writes its record a little later, then lets go
        time.sleep(0.5)
        write_record(search_root(spec.results), curve_record("toy", spec.model, spec.variants[0], 1000, [0.7], [0.5]))
        held.release()

    threading.Thread(target=finish).start()
    record = work(spec, fake_trainer(spec, lambda p, n: {"validation": [0.1], "test": [0.1]}, calls), quiet)
    assert calls == [] and record.candidates[0].mean == 0.7


def test_the_search_record_is_written_once(toy_env, tiny_encoder):
    spec = resolve(toy_env, tiny_encoder, grid=["lr=1e-5"])
    record = work(spec, fake_trainer(spec, lambda p, n: {"validation": [0.7], "test": [0.5]}), quiet)
    path = search_path(spec.results, "toy", spec.model, spec.base_variant)
    from harness.record.search import write_once

    assert write_once(path, record) is False  # a second worker's attempt leaves the first record alone
    assert read_search(path) == record


def test_another_search_of_a_searched_cell_is_refused(toy_env, tiny_encoder, capsys):
    from harness.cli.commands import main

    spec = resolve(toy_env, tiny_encoder, grid=["lr=1e-5"])
    work(spec, fake_trainer(spec, lambda p, n: {"validation": [0.7], "test": [0.5]}), quiet)
    before = sorted(toy_env["results"].rglob("*"))
    code = main(["tune", "--task", "toy", "--model", str(tiny_encoder), "--results", str(toy_env["results"]),
                 "--limit", "16", "--epochs", "3", "--grid", "lr=2e-5"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "was searched already, with grid learning_rate {1e-05}" in err
    assert sorted(toy_env["results"].rglob("*")) == before


def test_tpe_draws_the_trials_asked_for_from_the_grid(toy_env, tiny_encoder):
    spec = resolve(toy_env, tiny_encoder, sampler="tpe", trials=3, grid=["lr=1e-5,2e-5,4e-5,8e-5", "epochs=2,3"],
                   epochs=None)
    calls = []
    record = work(spec, fake_trainer(spec, lambda p, n: {"validation": [0.1 * n] * p["epochs"],
                                                          "test": [0.5] * p["epochs"]}, calls), quiet)
    import optuna

    study = optuna.load_study(study_name=record.study, storage=search_mod._storage(spec))
    assert len(study.trials) == 3 and all(t.state.is_finished() for t in study.trials)
    drawn = {tuple(sorted(t.params.items())) for t in study.trials}
    assert {tuple(sorted(c.settings.items())) for c in record.candidates} == drawn  # the points TPE drew, no other
    assert len(calls) == len(drawn) and record.sampler == "tpe" and record.trials == 3
    assert record.choice.settings == calls[-1][0]  # the last one trained scored best (0.1 * n)


def test_any_storage_url_optuna_takes(toy_env, tiny_encoder, tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    spec = resolve(toy_env, tiny_encoder, grid=["lr=1e-5,2e-5"], storage=url)
    record = work(spec, fake_trainer(spec, by_lr({1e-5: ([0.6], [0.5]), 2e-5: ([0.7], [0.5])})), quiet)
    assert record.storage == url and (tmp_path / "studies.db").is_file()
    assert not (spec.folder / "study.journal").exists()
    assert record.choice.settings == {"learning_rate": 2e-5}


# ------------------------------------------------------------------ real training, real processes

def tune_cmd(toy_env, model, *extra):
    return ["tune", "--task", "toy", "--model", str(model), "--mirror", str(toy_env["mirror"]), "--results",
            str(toy_env["results"]), "--limit", "16", "--epochs", "1", "--seeds", "1", *extra]


def trained_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ": training search seed" in ln]


@pytest.mark.slow
def test_two_workers_on_one_study_train_each_candidate_once(toy_env, tiny_encoder):
    proc = harness(*tune_cmd(toy_env, tiny_encoder, "--jobs", "2"), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = sorted((toy_env["results"] / "logs").rglob("worker*.log"))
    text = "\n".join(p.read_text() for p in logs)
    assert len(logs) == 2 and all(trained_lines(p.read_text()) for p in logs)  # both workers trained
    lines = trained_lines(text)
    assert len(lines) == 4 and len(set(lines)) == 4  # 4 candidates, each trained by one worker only
    name = local_name(tiny_encoder)
    final = [ln for ln in text.splitlines() if ln.startswith(f"toy/{name} seed 42:")]
    assert len(final) == 1  # the final seed ran once
    record = read_search(search_path(toy_env["results"], "toy", name, "epochs=1_limit16"))
    assert [c.state for c in record.candidates] == ["complete"] * 4
    assert "chosen:" in proc.stdout


@pytest.mark.slow
def test_a_killed_search_resumes_and_trains_only_what_was_missing(toy_env, tiny_encoder):
    argv = tune_cmd(toy_env, tiny_encoder, "--grid", "lr=1e-5,2e-5,3e-5")  # no default rate: every one named
    name = local_name(tiny_encoder)
    folders = [toy_env["results"] / "search" / "toy" / name / f"epochs=1_learning_rate={lr}_limit16"
               for lr in ("1e-05", "2e-05", "3e-05")]
    proc = subprocess.Popen([sys.executable, "-m", "harness", *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline:  # kill it in its second candidate: one record written, another claimed
        done = [f for f in folders if (f / "seed1000.json").exists()]
        claimed = [f for f in folders if (f / "claim.0").exists() and not (f / "seed1000.json").exists()]
        if len(done) == 1 and claimed:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(done) == 1 and claimed, "the search finished before it could be killed"
    first = read_record(done[0] / "seed1000.json").created_at
    rerun = harness(*argv, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    lines = trained_lines(rerun.stderr)
    finished_lr = done[0].name.split("learning_rate=")[1].split("_")[0]  # e.g. 1e-05
    assert len(lines) == 2 and not any(f"learning_rate={finished_lr}:" in ln for ln in lines), rerun.stderr[-3000:]
    assert read_record(done[0] / "seed1000.json").created_at == first  # the finished candidate was not trained again
    assert all((f / "seed1000.json").exists() for f in folders)
    assert (claimed[0] / "claim.1").exists()  # the killed worker's claim was taken over


@pytest.mark.slow
def test_the_choice_is_validations_when_test_rewards_another_candidate(toy_env, tiny_decoder, tmp_path):
    """A real search on a task whose test labels are the validation rule reversed: the learning candidate wins on
    validation and loses on test; the chosen one must be the learner."""
    from conftest import toy_rows, write_parquet

    flipped = toy_rows(40, 3)
    flipped["label"] = [1 - y for y in flipped["label"]]
    write_parquet(toy_env["mirror"] / "tester" / "toy", "test", flipped)
    proc = harness("tune", "--task", "toy", "--model", tiny_decoder, "--mirror", toy_env["mirror"], "--results",
                   toy_env["results"], "--epochs", "4", "--batch-size", "8", "--grid", "lr=1e-9,3e-3", "--seeds", "1",
                   timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    name = local_name(tiny_decoder)
    record = read_search(search_path(toy_env["results"], "toy", name, "batch_size=8_epochs=4"))
    tests = {c.settings["learning_rate"]: read_record(toy_env["results"] / c.records[0]).protocols["clean"].main_score
             for c in record.candidates}
    means = {c.settings["learning_rate"]: c.mean for c in record.candidates}
    assert means[3e-3] > means[1e-9] and tests[3e-3] < tests[1e-9]  # validation and test disagree
    assert record.choice.settings == {"learning_rate": 3e-3}
    final = read_record(record_path(toy_env["results"], "toy", name, record.choice.variant, 42))
    assert final.protocols["clean"].main_score < 0.5  # what tuned reports: the chosen setting's test, honestly low


@pytest.mark.slow
def test_workers_as_slurm_jobs_share_one_study(slurm, toy_env, tiny_encoder, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", str(slurm.conf))
    proc = harness(*tune_cmd(toy_env, tiny_encoder, "--jobs", "2", "--executor", "slurm", "--gpus", "0", "--cpus",
                             "1", "--mem", "1G", "--time", "10"), env={"SLURM_CONF": str(slurm.conf)}, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "submitted 2 worker jobs" in proc.stderr
    outs = [p.read_text() for p in (toy_env["results"] / "logs").rglob("*_log.err")]
    lines = [ln for text in outs for ln in trained_lines(text)]
    assert len(lines) == 4 and len(set(lines)) == 4  # every candidate once, over both jobs
    name = local_name(tiny_encoder)
    record = read_search(search_path(toy_env["results"], "toy", name, "epochs=1_limit16"))
    assert Path(record_path(toy_env["results"], "toy", name, record.choice.variant, 42)).is_file()


def test_the_study_lives_in_a_journal_beside_the_search_record(toy_env, tiny_encoder):
    import optuna

    spec = resolve(toy_env, tiny_encoder, grid=["lr=1e-5,2e-5"])
    record = work(spec, fake_trainer(spec, lambda p, n: {"validation": [0.7], "test": [0.5]}), quiet)
    journal = search_mod.search_record.search_dir(spec.results, "toy", spec.model, spec.base_variant) / "study.journal"
    assert record.storage == str(journal.relative_to(spec.results)) and journal.is_file()
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name=record.study, storage=storage)
    assert sorted(t.params["learning_rate"] for t in study.trials) == [1e-5, 2e-5]
    assert record.study.startswith(f"toy/{spec.model}/{spec.base_variant}/")
