"""The tuned protocol through every command that shows results: table (markdown, json, the cost table), compare,
plot, report and export, on records and search records written by hand."""
import json

import pytest
from records import make_record, make_search

from harness.cli.commands import main
from harness.record.search import search_path, write_once
from harness.record.store import write_record


@pytest.fixture
def tuned_results(toy_env):
    """Three models on toy. a: default recipe 70%, its search chose lr 2e-5, where it scores 90%. b: default 80%,
    its search chose the default rate (its tuned cell is the default records). c: default 60%, no search. A search
    candidate of a's at 99% lies under <results>/search/ and must never show."""
    results = toy_env["results"]

    gold = [0, 1] * 50

    def write(model, variant, seeds, score):  # predictions that give the score (100 test examples)
        for seed, bump in zip(seeds, (0, 1, -1), strict=False):
            wrong = 100 - (score + bump)
            preds = [1 - y if i < wrong else y for i, y in enumerate(gold)]
            write_record(results, make_record("toy", model, seed, score + bump, clean=score + bump, variant=variant,
                                              gold=gold, preds=preds))

    write("a", "default", [42, 43, 44], 70)
    write("a", "learning_rate=2e-05", [42, 43, 44], 90)
    write("b", "default", [42, 43, 44], 80)
    write("c", "default", [42, 43, 44], 60)
    write_record(results / "search", make_record("toy", "a", 1000, 99.0, clean=99.0, variant="learning_rate=8e-05"))
    for model, chosen in (("a", {"learning_rate": 2e-5}), ("b", {"learning_rate": 4e-5})):
        assert write_once(search_path(results, "toy", model, "default"), make_search("toy", model, chosen))
    return results


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_the_tuned_table_shows_each_cell_at_its_chosen_setting(tuned_results, capsys):
    out = run(capsys, "table", "--protocol", "tuned", "--results", tuned_results, "--group", "all", "--suite", "all")
    assert "Variant `default`, protocol `tuned`" in out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    assert "90.00" in rows["a"] and "80.00" in rows["b"] and "c" not in rows  # a at 2e-5, b at the default
    assert "**90.00" in rows["a"]  # the marks apply as for any protocol
    assert "- a on toy: grid learning_rate {1e-05, 2e-05, 4e-05, 8e-05}" in out and "chose learning_rate=2e-05" in out
    assert "- c on toy: – (no search)." in out and "validation only" in out
    assert "99.00" not in out and "70.00" not in out  # no candidate's figure, no default-recipe figure for a
    data = json.loads(run(capsys, "table", "--protocol", "tuned", "--format", "json", "--results", tuned_results,
                          "--group", "all", "--suite", "all"))
    assert data[0]["protocol"] == "tuned" and "chose learning_rate=2e-05" in data[0]["notes"]
    # the other protocols are as they were: a's default 70%, its 2e-5 runs in their own section; no candidate
    clean = run(capsys, "table", "--results", tuned_results, "--group", "all", "--suite", "all")
    assert "70.00" in clean and "Variant `learning_rate=2e-05`" in clean and "99.00" not in clean


def test_compare_pairs_the_tuned_cells_of_two_models(tuned_results, capsys):
    out = run(capsys, "compare", "--task", "toy", "--models", "a", "b", "--protocol", "tuned", "--results",
              tuned_results)
    assert "protocol tuned, variant default" in out and "mean A 90.00, mean B 80.00" in out
    assert main(["compare", "--task", "toy", "--models", "a", "c", "--protocol", "tuned", "--results",
                 str(tuned_results)]) == 2
    err = capsys.readouterr().err
    assert "c on toy (variant default) has no tuned cell: no search" in err and "no records for toy/c" in err


def test_export_report_plot_and_cost_take_the_tuned_protocol(tuned_results, capsys):
    run(capsys, "export", "--format", "jsonl", "--protocol", "tuned", "--results", tuned_results)
    lines = [json.loads(ln) for ln in (tuned_results / "export" / "results.jsonl").read_text().splitlines()]
    assert {(ln["protocol"], ln["variant"], ln["model"]) for ln in lines} == {("tuned", "default", "a"),
                                                                              ("tuned", "default", "b")}
    assert {ln["value"] for ln in lines if ln["model"] == "a" and ln["metric"] == "accuracy"} == {0.9, 0.91, 0.89}
    out = run(capsys, "export", "--format", "model-index", "--model", "a", "--protocol", "tuned", "--results",
              tuned_results)
    assert "value: 90.0" in out and "protocol tuned (setting (e.g. learning rate) searched" in out
    run(capsys, "report", "--results", tuned_results, "--group", "all", "--suite", "all")
    html = (tuned_results / "report.html").read_text()
    assert '<button type="button" data-protocol="tuned"' in html  # the switch offers it ...
    assert '<div class="view" data-protocol="tuned"' in html  # ... and shows its leaderboard, with the searches
    assert "chose learning_rate=2e-05" in html and "c on toy: – (no search)" in html
    png = run(capsys, "plot", "--protocol", "tuned", "--results", tuned_results, "--group", "all", "--suite", "all")
    assert png.strip().endswith("plot-tuned-default.png")
    cost = run(capsys, "table", "--cost", "--results", tuned_results)
    assert "### Searches (`harness tune`)" in cost and "| toy | a | default | learning_rate {1e-05" in cost


def test_the_tuned_protocol_without_any_search_is_one_line(toy_env, capsys):
    write_record(toy_env["results"], make_record("toy", "a", 42, 70.0, clean=70.0))
    assert main(["table", "--protocol", "tuned", "--results", str(toy_env["results"])]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no search records under" in err and "harness tune" in err
