import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli.commands import main
from harness.config import RunConfig
from harness.grid.capacity import Footprint, cell_bytes, cells_for, footprint
from harness.grid.executors import slurm_command_preview
from harness.grid.plan import SweepSpec, cell_argv, plan
from harness.registry.load import local_name


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


@pytest.fixture
def slurm(tmp_path_factory):
    import slurm_cluster

    why = slurm_cluster.missing()
    if why:
        pytest.skip(f"no SLURM test cluster: {why}")
    cluster = slurm_cluster.Cluster(tmp_path_factory.mktemp("slurm"))
    cluster.start()
    yield cluster
    cluster.stop()


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
