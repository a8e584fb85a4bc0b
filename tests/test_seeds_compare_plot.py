import numpy as np
from records import make_record

from harness.cli import main
from harness.compare import compare_models
from harness.store import write_record


def test_several_seeds_each_get_a_record_and_the_table_shows_the_interval(toy_env, tiny_encoder, capsys):
    results = toy_env["results"]
    code = main(["run", "--task", "toy", "--model", str(tiny_encoder), "--mirror", str(toy_env["mirror"]),
                 "--results", str(results), "--epochs", "1", "--limit", "24", "--seeds", "3"])
    assert code == 0
    assert sorted(p.name for p in results.rglob("seed*.json")) == ["seed42.json", "seed43.json", "seed44.json"]
    capsys.readouterr()
    assert main(["table", "--results", str(results), "--protocol", "clean"]) == 0
    assert "(n=3)" in capsys.readouterr().out


def test_compare_reports_mcnemar_per_seed_and_a_pooled_bootstrap(tmp_path):
    gold = [0, 1] * 50
    good = list(gold)
    bad = [1 - g if i % 4 == 0 else g for i, g in enumerate(gold)]  # wrong on 25 examples
    records = [make_record("assin2", "a", s, 100.0, clean=100.0, preds=good, gold=gold) for s in (1, 2)]
    records += [make_record("assin2", "b", s, 75.0, clean=75.0, preds=bad, gold=gold) for s in (1, 2)]
    text = compare_models(records, "assin2", "a", "b", "published", "default")
    lines = text.splitlines()
    assert lines[2].split()[:5] == ["1", "100.00", "75.00", "25", "0"]
    assert float(lines[2].split()[5]) < 1e-6  # 25 discordant pairs, all one way
    assert "difference +25.00 points" in lines[-1] and "-> significant" in lines[-1]


def test_compare_refuses_different_test_sets():
    import pytest

    from harness.errors import UserError

    recs = [make_record("t", "a", 1, 90.0, gold=[0, 1, 0, 1]), make_record("t", "b", 1, 90.0, gold=[0, 1, 1, 1])]
    with pytest.raises(UserError, match="different examples"):
        compare_models(recs, "t", "a", "b", "published", "default")


def test_compare_cli(tmp_path, capsys):
    for s in (1, 2):
        write_record(tmp_path, make_record("assin2", "a", s, 90.0))
        write_record(tmp_path, make_record("assin2", "b", s, 90.0))
    assert main(["compare", "--task", "assin2", "--models", "a", "b", "--protocol", "published",
                 "--results", str(tmp_path)]) == 0
    assert "not significant" in capsys.readouterr().out
    assert main(["compare", "--task", "assin2", "--models", "a", "zz", "--results", str(tmp_path)]) == 2


def test_plot_writes_a_png(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for model, base in (("bertimbau-base", 88.0), ("ttl-160m", 86.0)):
        for s in range(3):
            write_record(tmp_path, make_record("assin2", model, s, base + rng.normal(0, 0.5)))
    assert main(["plot", "--results", str(tmp_path)]) == 0
    png = tmp_path / "plot-published-default.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
