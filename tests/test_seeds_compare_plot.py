import numpy as np
import pytest
from records import make_record

from harness.cli import main
from harness.compare import compare_models
from harness.errors import UserError
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


def test_compare_on_the_main_metric_of_a_regression_task():
    rng = np.random.default_rng(0)
    gold = np.round(rng.uniform(1, 5, 300), 1)
    good = [np.round(gold + rng.normal(0, 0.4, 300), 3) for _ in range(2)]
    bad = [np.round(gold + rng.normal(0, 1.5, 300), 3) for _ in range(2)]
    reg = dict(task_type="regression", main="pearson", gold=gold)
    records = [make_record("sts", "a", s, 0, preds=good[i], test={"pearson": 0.9}, **reg) for i, s in enumerate((1, 2))]
    records += [make_record("sts", "b", s, 0, preds=bad[i], test={"pearson": 0.6}, **reg) for i, s in enumerate((1, 2))]
    lines = compare_models(records, "sts", "a", "b", "published", "default").splitlines()
    assert lines[0].endswith("metric pearson") and "Pearson_A" in lines[1] and "McNemar" not in lines[1]
    from harness.metrics import pearson

    assert float(lines[2].split()[1]) == pytest.approx(100 * pearson(good[0], gold), abs=0.005)
    assert "on Pearson" in lines[-1] and "-> significant" in lines[-1]
    same = compare_models(records[:2] + [make_record("sts", "b", s, 0, preds=good[i], test={"pearson": 0.9}, **reg)
                                         for i, s in enumerate((1, 2))], "sts", "a", "b", "published", "default")
    assert "difference +0.00 points" in same and "not significant" in same
    mse = compare_models(records, "sts", "a", "b", "published", "default", metric="mse").splitlines()
    assert "(lower is better)" in mse[-1] and "difference -" in mse[-1]
    with pytest.raises(UserError, match="metric 'accuracy' does not fit sts, a regression task"):
        compare_models(records, "sts", "a", "b", "published", "default", metric="accuracy")


def test_paired_bootstrap_on_a_metric_holds_its_size_and_finds_a_real_difference():
    """Under the null (two models from one distribution) p < 0.05 about 5% of the time or less; with a real
    gap almost always. Checked by simulation on macro-F1 of a 3-class task."""
    from harness.compare import paired_bootstrap_metric_p

    rng = np.random.default_rng(1)
    gold = rng.choice(3, size=200, p=[0.6, 0.3, 0.1])

    def model(acc):
        return np.where(rng.random((2, 200)) < acc, gold, rng.integers(0, 3, (2, 200)))

    null = [paired_bootstrap_metric_p(model(0.7), model(0.7), gold, "macro_f1", rounds=400, seed=i)[1] < 0.05
            for i in range(60)]
    real = [paired_bootstrap_metric_p(model(0.9), model(0.6), gold, "macro_f1", rounds=400, seed=i)[1] < 0.05
            for i in range(20)]
    assert np.mean(null) <= 0.12 and np.mean(real) >= 0.95
