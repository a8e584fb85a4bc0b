"""harness compare: the seed-aware test at procedure level, McNemar per checkpoint, on every metric."""
import numpy as np
import pytest
from records import make_record

from harness.aggregate.compare import compare_models
from harness.cli.commands import main
from harness.errors import UserError
from harness.record.store import write_record


def _runs(model, accuracy, seeds, gold, rng, **kwargs):
    """Records whose test predictions are right on a random `accuracy` share of the examples, per seed."""
    out = []
    for s in seeds:
        right = rng.random(len(gold)) < accuracy
        preds = [g if ok else 1 - g for g, ok in zip(gold, right, strict=True)]
        acc = 100 * float(np.mean(right))
        out.append(make_record("assin2", model, s, acc, clean=acc, preds=preds, gold=gold, **kwargs))
    return out


def test_compare_prints_the_procedure_level_and_the_checkpoint_level():
    rng = np.random.default_rng(0)
    gold = [0, 1] * 200
    records = _runs("a", 0.9, (1, 2, 3), gold, rng) + _runs("b", 0.7, (1, 2, 3), gold, rng)
    text = compare_models(records, "assin2", "a", "b", "clean")
    lines = text.splitlines()
    assert lines[0] == ("assin2: A = a vs B = b; protocol clean, variant default, precision fp32 (cpu); "
                        "400 test examples; accuracy in %")
    assert "Procedure level: does A's fine-tuning beat B's?" in text
    assert "-> significant: A is better at 0.05" in text
    assert "Checkpoint level: do these two checkpoints" in text and "says nothing about another seed" in text
    accs = {r.model.name + str(r.seed): r.protocols["clean"].test["accuracy"] for r in records}
    row = next(ln for ln in lines if ln.strip().startswith("1 "))
    assert row.split()[:3] == ["1", f"{100 * accs['a1']:.2f}", f"{100 * accs['b1']:.2f}"]
    assert float(row.split()[5]) < 1e-6  # 0.9 vs 0.7 on 400 examples: the checkpoints differ
    mean_a = np.mean([accs["a1"], accs["a2"], accs["a3"]])
    assert f"mean A {100 * mean_a:.2f}" in text


def test_compare_same_procedure_is_not_significant_at_procedure_level():
    """Two models of one procedure, whose seeds differ by 3 points: A's seeds reach 78, 81, 84% and B's 76, 79,
    82% of 2,000 test examples, every run right on the easiest examples (a shared difficulty). On the test
    examples alone the 2-point gap is a z of about 9 (a test that resamples examples, as compare's did before
    the seed-aware one, calls it significant every time), but another seed moves a model by 3 points: the
    procedure-level verdict is "not significant", and compare says the seeds hold the variance."""
    difficulty = np.random.default_rng(1).random(2000)  # each example's rank: the same for every run
    gold = [0] * 2000

    def runs(model, accuracies, seeds):
        right = np.stack([difficulty < acc for acc in accuracies])  # right exactly on the examples easier than acc
        return right, [make_record("assin2", model, s, 100 * r.mean(), clean=100 * r.mean(), preds=(~r).astype(int),
                                   gold=gold) for s, r in zip(seeds, right, strict=True)]

    right_a, records_a = runs("a", (0.78, 0.81, 0.84), (1, 2, 3))
    right_b, records_b = runs("b", (0.76, 0.79, 0.82), (4, 5, 6))
    per_example = right_a.mean(axis=0) - right_b.mean(axis=0)  # what a test on the examples alone sees
    assert per_example.mean() / (per_example.std(ddof=1) / len(gold) ** 0.5) > 8
    text = compare_models(records_a + records_b, "assin2", "a", "b", "clean")
    assert "-> not significant at 0.05" in text
    variance = next(ln for ln in text.splitlines() if "variance of the difference" in ln)
    assert float(variance.split("seeds ")[1].split(" +")[0]) > 5  # points²: 3² / 3 per side
    assert "no seed in common: run the same seeds for both models to compare checkpoints" in text


def test_compare_with_one_seed_says_only_the_checkpoint_level_is_possible():
    rng = np.random.default_rng(2)
    gold = [0, 1] * 100
    records = _runs("a", 0.9, (1,), gold, rng) + _runs("b", 0.6, (1, 2, 3), gold, rng)
    text = compare_models(records, "assin2", "a", "b", "clean")
    assert "not possible: it needs at least 2 seeds of each model" in text
    assert "only the checkpoint-level test below is possible" in text
    assert "significant" not in text.split("Checkpoint level")[0]
    assert len([ln for ln in text.splitlines() if ln.strip().startswith("1 ")]) == 1  # the McNemar row


def test_compare_refuses_different_test_sets():
    recs = [make_record("t", "a", 1, 90.0, gold=[0, 1, 0, 1]), make_record("t", "b", 1, 90.0, gold=[0, 1, 1, 1])]
    with pytest.raises(UserError, match="tested on other examples"):
        compare_models(recs, "t", "a", "b", "published")


def test_compare_one_section_per_variant_and_precision_and_lists_what_exists():
    rng = np.random.default_rng(3)
    gold = [0, 1] * 50
    records = (_runs("a", 0.8, (1, 2), gold, rng) + _runs("b", 0.8, (1, 2), gold, rng)
               + _runs("a", 0.8, (1, 2), gold, rng, variant="limit100")
               + _runs("b", 0.8, (1, 2), gold, rng, variant="limit100", precision="bf16", device_type="cuda"))
    text = compare_models(records, "assin2", "a", "b", "clean")
    assert [ln for ln in text.splitlines() if ln.startswith("assin2:")] == [
        "assin2: A = a vs B = b; protocol clean, variant default, precision fp32 (cpu); 100 test examples; "
        "accuracy in %"]  # limit100: a in fp32, b in bf16, never compared
    with pytest.raises(UserError) as err:
        compare_models(records, "assin2", "a", "b", "clean", variant="limit100")
    assert str(err.value) == ("a and b have no records in variant 'limit100' on assin2 of the same variant and "
                              "precision: a: default (fp32: 2 records); limit100 (fp32: 2 records); "
                              "b: default (fp32: 2 records); limit100 (bf16: 2 records)")
    with pytest.raises(UserError, match=r"no records for assin2/zz \(models with records on assin2: a, b\)"):
        compare_models(records, "assin2", "a", "zz", "clean")
    with pytest.raises(UserError, match=r"no complete records for task 'imdb' \(tasks with records: assin2\)"):
        compare_models(records, "imdb", "a", "b", "clean")


def test_compare_cli_defaults_to_the_clean_protocol(tmp_path, capsys):
    for s in (1, 2):
        write_record(tmp_path, make_record("assin2", "a", s, 90.0, clean=90.0))
        write_record(tmp_path, make_record("assin2", "b", s, 90.0, clean=90.0))
    assert main(["compare", "--task", "assin2", "--models", "a", "b", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "protocol clean, variant default" in out and "not significant" in out
    assert main(["compare", "--task", "assin2", "--models", "a", "zz", "--results", str(tmp_path)]) == 2


def test_compare_on_the_main_metric_of_a_regression_task():
    """A regression task is compared on its main metric (Pearson) at both levels, with no McNemar; the
    seed-aware test tells a clearly better model from a worse one and not two draws of the same one."""
    from harness.metrics import pearson

    rng = np.random.default_rng(0)
    gold = np.round(rng.uniform(1, 5, 300), 1)

    def runs(model, noise, seeds):
        out = []
        for s in seeds:
            pred = np.round(gold + rng.normal(0, noise, 300), 3)
            out.append(make_record("sts", model, s, 0, preds=pred, gold=gold, task_type="regression", main="pearson",
                                   test={"pearson": pearson(pred, gold)}))
        return out

    records = runs("a", 0.4, (1, 2, 3)) + runs("b", 1.5, (1, 2, 3))
    text = compare_models(records, "sts", "a", "b", "published")
    lines = text.splitlines()
    assert lines[0].endswith("300 test examples; pearson in %") and "McNemar" not in text
    assert "no per-example test for a regression task" in text and "-> significant: A is better" in text
    row = next(ln for ln in lines if ln.strip().startswith("1 "))
    assert float(row.split()[1]) == pytest.approx(100 * records[0].protocols["published"].test["pearson"], abs=0.005)
    same = compare_models(runs("a", 0.8, (1, 2, 3)) + runs("b", 0.8, (4, 5, 6)), "sts", "a", "b", "published")
    assert "-> not significant" in same
    mse = compare_models(records, "sts", "a", "b", "published", metric="mse")
    assert "(lower is better)" in mse and "significant: A is better" in mse and "mse" in mse.splitlines()[0]
    with pytest.raises(UserError, match="--metric accuracy does not fit sts, a regression task"):
        compare_models(records, "sts", "a", "b", "published", metric="accuracy")


def test_compare_a_three_class_task_on_macro_f1():
    """A task whose main metric is macro-F1 is compared on it (bootstrap path), McNemar beside."""
    from harness.metrics import macro_f1

    rng = np.random.default_rng(5)
    gold = rng.choice(3, size=400, p=[0.7, 0.2, 0.1])

    def runs(model, acc, seeds):
        out = []
        for s in seeds:
            pred = np.where(rng.random(400) < acc, gold, rng.integers(0, 3, 400))
            out.append(make_record("rte", model, s, 0, preds=pred, gold=gold, main="macro_f1",
                                   test={"macro_f1": macro_f1(pred, gold), "accuracy": float(np.mean(pred == gold))}))
        return out

    text = compare_models(runs("a", 0.9, (1, 2, 3)) + runs("b", 0.5, (1, 2, 3)), "rte", "a", "b", "published")
    assert text.splitlines()[0].endswith("macro_f1 in %") and "McNemar_p" in text
    assert "the difference of the mean Macro-F1 over seeds" in text and "significant: A is better" in text
