"""harness sweep: the grid, resumable; local processes, submitit and a real SLURM cluster; bad sweep input."""
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ADVICE, write_file

from harness.cli.commands import main
from harness.config import RunConfig
from harness.grid import executors
from harness.grid.capacity import Footprint, cell_bytes, cells_for, footprint
from harness.grid.executors import slurm_command_preview
from harness.grid.plan import SweepSpec, cell_argv, plan
from harness.registry.load import load_models, local_name


def test_sweep_failure_summary_keeps_the_whole_error_line(tmp_path):
    error = "harness: error: the Hugging Face hub (x) is unreachable " + "x" * 300 + " " + " ".join(ADVICE)
    log = tmp_path / "cell.log"
    log.write_text("some progress\n" + error + "\n")
    assert executors._last_line(log) == error
    log.write_text("Traceback ...\n" + "y" * 5000 + "\n")  # a foreign line is still cut to a summary's size
    assert len(executors._last_line(log)) <= 300


def test_a_sweep_with_force_passes_it_to_each_run(toy_env, tiny_encoder, capsys):
    argv = ["sweep", "--tasks", "toy", "--models", str(tiny_encoder), "--results", str(toy_env["results"]),
            "--dry-run", "--executor", "slurm"]
    assert main(argv) == 0 and "--force" not in capsys.readouterr().out
    assert main(argv + ["--force"]) == 0 and "--force" in capsys.readouterr().out


def test_a_bare_sweep_leaves_out_the_smoke_test_model(tmp_path, capsys):
    models = load_models()
    assert models["minilm-l6"].smoke and not any(m.smoke for n, m in models.items() if n != "minilm-l6")
    assert main(["sweep", "--dry-run", "--results", str(tmp_path / "r")]) == 0
    captured = capsys.readouterr()
    assert "x 4 models x" in captured.err and "minilm" not in captured.out
    for name in ("bertimbau-large", "bertimbau-base", "ttl-460m", "ttl-160m"):
        assert f"/{name} seed 42" in captured.out
    assert main(["sweep", "--dry-run", "--models", "minilm-l6", "--results", str(tmp_path / "r")]) == 0
    assert "minilm-l6 seed 42" in capsys.readouterr().out  # still there when asked for
    assert main(["list"]) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if "smoke test" in ln]  # `harness list` says why
    assert line.split()[0] == "minilm-l6"


HOSTILE_SWEEP_FILES = {
    "not UTF-8": (b"tasks: [toy]\nmodels: [caf\xe9]\n", "line 2 is not UTF-8 text"),
    "duplicate key": ("tasks: [toy]\nseeds: 3\nseeds: 5\n", "line 3: duplicate key 'seeds'"),
    "a list": ("- toy\n", "expected a mapping of fields"),
    "seeds as text": ("seeds: three\n", "field 'seeds' must be int or list, got str 'three'"),
    "huge seeds": ("seeds: 99999999999\n", "--seeds must be from 1 to 10000"),
    "settings a list": ("settings: [1]\n", "field 'settings' must be dict"),
    "setting of the wrong type": ("settings: {epochs: many}\n", "epochs must be an integer, got 'many'"),
    "a rate YAML reads as text": ("settings: {learning_rate: 4e-5}\n", "write 4.0e-5"),
    "tasks a number": ("tasks: 5\n", "field 'tasks' must be str or list"),
    "slurm a list": ("slurm: [1]\n", "field 'slurm' must be dict"),
    "unknown slurm option": ("slurm: {gpu: 1}\n", "unknown field 'slurm.gpu'"),
    "negative slurm time": ("slurm: {time_min: -5}\n", "--time must be at least 1, got -5"),
    "unknown executor": ("executor: kubernetes\n", "field 'executor' must be one of"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_SWEEP_FILES))
def test_hostile_sweep_files(case, toy_env, tiny_encoder, tmp_path, capsys):
    text, message = HOSTILE_SWEEP_FILES[case]
    config = tmp_path / "sweep.yaml"
    write_file(config, text)
    code = main(["sweep", "--config", str(config), "--tasks", "toy", "--models", str(tiny_encoder),
                 "--results", str(toy_env["results"]), "--dry-run"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


@pytest.mark.parametrize("flags, message", [(["--time", "-5"], "--time must be at least 1"),
                                            (["--cpus", "0"], "--cpus must be at least 1"),
                                            (["--gpus", "-1"], "--gpus must be at least 0")])
def test_hostile_slurm_flags(flags, message, toy_env, tiny_encoder, capsys):
    code = main(["sweep", "--tasks", "toy", "--models", str(tiny_encoder), "--results", str(toy_env["results"]),
                 "--executor", "submitit-local", *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


def test_a_sweep_of_no_tasks_or_no_models_is_refused(toy_env, tiny_encoder, tmp_path, capsys):
    base = ["sweep", "--results", str(toy_env["results"]), "--dry-run"]
    for argv, message in ((["--tasks", " , ", "--models", str(tiny_encoder)], "--tasks (or the sweep file's 'tasks') "
                                                                                  "names no task"),
                          (["--tasks", "toy", "--models", ","], "names no model")):
        code = main(base + argv)
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    config = tmp_path / "sweep.yaml"
    config.write_text("models: []\n")
    assert main(base + ["--config", str(config), "--tasks", "toy"]) == 2
    assert "names no model" in capsys.readouterr().err


@pytest.mark.slow
def test_sweep_runs_the_grid_then_resumes_only_what_is_missing(toy_env, tiny_encoder, tiny_decoder, capsys):
    results = toy_env["results"]
    argv = ["sweep", "--tasks", "toy,toybool", "--models", f"{tiny_encoder},{tiny_decoder}", "--seeds", "1",
            "--limit", "24", "--epochs", "1", "--mirror", str(toy_env["mirror"]), "--results", str(results),
            "--jobs", "2"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "4 cells" in captured.err and "4 to run" in captured.err and "[4/4]" in captured.err
    assert len(list(results.rglob("seed42.json"))) == 4
    assert "| tiny-bert |" in captured.out  # ends with the table
    # an interrupted sweep: one record lost -> only that cell runs again
    victim = results / "toy" / local_name(tiny_decoder) / "epochs=1_limit24" / "seed42.json"
    victim.unlink()
    assert main(argv + ["--dry-run"]) == 0
    dry = capsys.readouterr()
    assert "3 done, 1 to run" in dry.err and dry.out.count("todo") == 1
    assert main(argv + ["--dry-run", "--executor", "slurm"]) == 0
    assert "-m harness run --task toy --model" in capsys.readouterr().out
    assert main(argv) == 0
    assert f"[1/1] toy/{local_name(tiny_decoder)} seed 42: ok" in capsys.readouterr().err
    assert victim.exists()


@pytest.mark.slow
def test_a_failed_cell_does_not_stop_the_others(toy_env, tiny_encoder, tmp_path, capsys):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "bert", "architectures": ["BertModel"]}')
    code = main(["sweep", "--tasks", "toy", "--models", f"{broken},{tiny_encoder}", "--limit", "16", "--epochs", "1",
                 "--mirror", str(toy_env["mirror"]), "--results", str(toy_env["results"])])
    err = capsys.readouterr().err
    assert code == 1
    assert "1 of 2 cells failed" in err and "broken-model" in err
    assert len(list(toy_env["results"].rglob("seed42.json"))) == 1


@pytest.mark.slow
def test_submitit_local_executor_runs_the_slurm_code_path(toy_env, tiny_encoder, capsys):
    code = main(["sweep", "--tasks", "toy", "--models", str(tiny_encoder), "--seed", "1,2", "--limit", "16",
                 "--epochs", "1", "--mirror", str(toy_env["mirror"]), "--results", str(toy_env["results"]),
                 "--executor", "submitit-local"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in toy_env["results"].rglob("seed*.json")) == ["seed1.json", "seed2.json"]


def test_slurm_job_command_lines(tmp_path):
    spec = SweepSpec(tasks=["assin2"], models=["ttl-160m"], seeds=[42, 43], run_args=["--limit", "10"])
    cells = plan(spec, tmp_path, "limit10", lambda m: type("M", (), {"name": m}))
    lines = slurm_command_preview(cells, spec, tmp_path)
    assert lines[0] == (f"{sys.executable} -m harness run --task assin2 --model ttl-160m --seed 42 "
                        f"--results {tmp_path} --limit 10")
    assert cell_argv(cells[1], spec, tmp_path)[5:7] == ["--seed", "43"]


def test_slurm_executor_parameters(tmp_path):
    from harness.grid.executors import slurm_parameters

    params = slurm_parameters({"partition": "gpu", "gpus": 2, "time_min": 30, "mem": "16G"})
    assert params == {"timeout_min": 30, "slurm_mem": "16G", "gpus_per_node": 2, "cpus_per_task": 8,
                      "slurm_job_name": "poeta-harness", "slurm_partition": "gpu"}
    assert "gpus_per_node" not in slurm_parameters({"gpus": 0})
    import submitit

    # the names are the ones submitit accepts (an unknown one raises)
    ex = submitit.AutoExecutor(folder=str(tmp_path), cluster="debug")
    ex.update_parameters(**{k: v for k, v in params.items() if not k.startswith("slurm_")})


def test_cells_per_gpu_from_free_memory(tiny_decoder):
    gib = 2**30
    full = lambda n: cell_bytes(Footprint(total=n, trainable=n))  # noqa: E731
    assert full(162_000_000) == 162_000_000 * 16 + 4 * gib  # fp32 weights, gradient, AdamW's 2 moments; activations
    # 90% of 80 GiB = 72 GiB usable
    assert cells_for(80 * gib, [full(162_000_000)]) == 8  # 6.4 GiB each: 11 fit, capped at 8
    assert cells_for(80 * gib, [full(162_000_000), full(468_000_000)]) == 6  # the largest decides: 11.0 GiB each
    assert cells_for(10 * gib, [full(468_000_000)]) == 1  # never fewer than one


def test_capacity_counts_lora_qlora_and_precision(tiny_decoder):
    """LoRA: gradient and AdamW state only for adapters and head; QLoRA: 4-bit backbone linears; fp32: wider
    activations. The meta-device counts match a real wrapped model's."""
    import torch
    from transformers import AutoTokenizer

    from harness.model import adapters
    from harness.model.loading import load_model
    from harness.registry.load import local_model

    full = footprint(str(tiny_decoder), None, RunConfig())
    lora_cfg = RunConfig(peft="lora", lora_r=4)
    lora = footprint(str(tiny_decoder), None, lora_cfg)
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tiny_decoder)
    real = load_model(local_model(tiny_decoder), str(tiny_decoder), None, 2, ["A", "B"], tok, RunConfig(), False)
    wrapped, info = adapters.prepare(real, lora_cfg)
    assert (lora.trainable, lora.total) == (info.trainable_parameters, info.total_parameters)
    assert full.trainable == full.total == info.base_parameters
    assert lora.trainable < full.trainable / 2 and lora.total > full.total
    qlora = footprint(str(tiny_decoder), None, RunConfig(peft="qlora", lora_r=4))
    assert 0 < qlora.quantized < qlora.total and qlora.trainable == lora.trainable
    assert cell_bytes(qlora) < cell_bytes(lora) < cell_bytes(full)
    assert cell_bytes(lora) - cell_bytes(Footprint(lora.total, 0)) == 12 * lora.trainable
    assert cell_bytes(full, bf16=False) - cell_bytes(full) == 4 * 2**30


def test_sweep_file_and_bad_sweep_input(toy_env, tmp_path, capsys):
    bad = tmp_path / "sweep.yaml"
    bad.write_text("tasks: [toy]\nmodles: [x]\n")
    assert main(["sweep", "--config", str(bad), "--results", str(toy_env["results"])]) == 2
    assert "unknown field 'modles'" in capsys.readouterr().err
    assert main(["sweep", "--tasks", "nope", "--results", str(toy_env["results"])]) == 2
    assert main(["sweep", "--jobs", "zero", "--tasks", "toy", "--models", "minilm-l6",
                 "--results", str(toy_env["results"])]) == 2


@pytest.mark.slow
def test_sweep_on_a_real_slurm_cluster(slurm, toy_env, tiny_encoder, tiny_decoder, monkeypatch, capsys):
    monkeypatch.setenv("SLURM_CONF", str(slurm.conf))
    results = toy_env["results"]
    code = main(["sweep", "--tasks", "toy,toybool", "--models", f"{tiny_encoder},{tiny_decoder}", "--limit", "16",
                 "--epochs", "1", "--mirror", str(toy_env["mirror"]), "--results", str(results),
                 "--executor", "slurm", "--gpus", "0", "--cpus", "1", "--mem", "1G", "--time", "10"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "submitted 4 jobs" in captured.err
    assert len(list(results.rglob("seed42.json"))) == 4
    assert "| tiny-bert |" in captured.out and "| tiny-llama |" in captured.out
    assert list((results / "logs").rglob("*_log.out"))  # submitit's per-job logs


def test_the_test_cluster_stops_exactly_what_it_started(slurm):
    """A job still running when the cluster stops: its slurmstepd (which ignores SIGTERM), srun and
    program must not outlive the test, nor the daemons; found here by command line, independently
    of how stop() finds them."""
    from slurm_cluster import _command, _parent, alive

    out = subprocess.run(["sbatch", "--wrap", "srun sleep 300", "--mem", "100M", "-c", "1",
                          "--output", str(slurm.dir / "job-%j.out")],  # not slurm-<id>.out in the checkout
                         env=slurm.env, capture_output=True, text=True, check=True)
    job = out.stdout.split()[-1]
    deadline = time.time() + 30
    steps = []
    while time.time() < deadline and len(steps) < 2:  # the batch step and step 0 (srun's)
        time.sleep(0.5)
        steps = [int(p.name) for p in Path("/proc").iterdir()  # this cluster's (other sessions may run one)
                 if p.name.isdigit() and _command(int(p.name)).startswith(f"slurmstepd: [{job}.")
                 and slurm.ours(int(p.name))]
    assert len(steps) == 2, "the job never started its steps"
    started = set(steps)
    for _ in range(4):  # the steps' descendants: the job script, srun, sleep
        started |= {int(p.name) for p in Path("/proc").iterdir()
                    if p.name.isdigit() and _parent(int(p.name)) in started}
    started |= set(slurm.pids.values())
    assert any("srun" in _command(pid) for pid in started) and any("sleep 300" in _command(pid) for pid in started)
    slurm.stop()
    left = {pid: _command(pid) for pid in started if alive(pid)}
    assert left == {}


def test_a_tuned_sweep_plans_one_search_per_task_and_model(toy_env, tiny_encoder, capsys):
    argv = ["sweep", "--tune", "--tasks", "toy,toybool", "--models", str(tiny_encoder), "--limit", "16",
            "--results", str(toy_env["results"]), "--grid", "lr=1e-5,2e-5", "--prune", "--dry-run",
            "--executor", "slurm"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "2 cells (2 tasks x 1 models x one search each, 3 final seeds)" in captured.err
    name = local_name(tiny_encoder)
    (row,) = [ln.split() for ln in captured.out.splitlines() if f"toy/{name}" in ln and "tune" in ln]
    assert row[:3] == ["todo", f"toy/{name}", "tune"]
    assert row[-1] == f"{toy_env['results']}/search/toy/{name}/limit16/search.json"
    (job,) = [ln for ln in captured.out.splitlines() if "--task toy " in ln and "-m harness" in ln]
    assert "-m harness tune --task toy" in job and "--seed 42,43,44" in job
    assert "--grid lr=1e-5,2e-5" in job and "--prune" in job and "--limit 16" in job
    assert not toy_env["results"].exists()


@pytest.mark.parametrize("flags, message", [
    (["--grid", "lr=1e-5"], "--grid is a search flag: add --tune"),
    (["--tune", "--force"], "--force does not combine with --tune"),
    (["--tune", "--grid", "lr=0"], "--grid point learning_rate=0"),
])
def test_search_flags_in_a_sweep_are_checked_before_anything_runs(flags, message, toy_env, tiny_encoder, capsys):
    code = main(["sweep", "--tasks", "toy", "--models", str(tiny_encoder), "--results", str(toy_env["results"]),
                 *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not toy_env["results"].exists()


@pytest.mark.slow
def test_a_tuned_sweep_runs_each_search_then_resumes_nothing(toy_env, tiny_encoder, capsys):
    argv = ["sweep", "--tune", "--tasks", "toy,toybool", "--models", str(tiny_encoder), "--seeds", "1", "--limit",
            "16", "--epochs", "1", "--grid", "lr=1e-4,1e-3", "--mirror", str(toy_env["mirror"]), "--results",
            str(toy_env["results"]), "--jobs", "2"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "[2/2]" in captured.err and "protocol `tuned`" in captured.out and "| tiny-bert |" in captured.out
    assert len(list((toy_env["results"] / "search").rglob("search.json"))) == 2
    assert main(argv + ["--dry-run"]) == 0
    assert "2 done, 0 to run" in capsys.readouterr().err
