"""The tuned protocol's cells (aggregate/tuned.py): the chosen setting's records, relabelled, never the default
recipe's where a cell has no search, never a search seed's."""
from records import make_record, make_search

from harness.aggregate.tuned import tuned_cells


def runs(model, variant, seeds, clean):
    return [make_record("toy", model, s, clean, clean=clean, variant=variant) for s in seeds]


def test_a_tuned_cell_is_the_chosen_settings_clean_figures_under_the_base_variant():
    records = (runs("a", "default", [42, 43, 44], 70.0) + runs("a", "learning_rate=2e-05", [42, 43, 44], 90.0)
               + runs("a", "learning_rate=2e-05", [1000], 99.0))  # a search seed's run, in the ordinary tree
    cells = tuned_cells(records, [make_search("toy", "a", {"learning_rate": 2e-5})])
    assert [(r.seed, r.variant) for r in cells.records] == [(42, "default"), (43, "default"), (44, "default")]
    assert all(r.protocols["tuned"].test["accuracy"] == 0.9 for r in cells.records)
    assert all(set(r.protocols) == {"tuned"} for r in cells.records)  # no published or clean figure under "default"
    assert all(r.variant == "learning_rate=2e-05" for r in records[3:])  # the records themselves are left alone
    assert cells.missing == []


def test_cells_without_a_search_are_missing_not_filled_with_the_default_recipe():
    records = runs("a", "default", [42], 70.0) + runs("b", "default", [42], 80.0) + runs("c", "limit16", [42], 60.0)
    cells = tuned_cells(records, [make_search("toy", "a", {"learning_rate": 4e-5})])
    assert [(r.model.name, r.protocols["tuned"].test["accuracy"]) for r in cells.records] == [("a", 0.7)]  # default
    assert [(m.model, m.variant, m.why) for m in cells.missing] == [("b", "default", "no search")]
    # c's records are of a variant no search started from: not a tuned table's cell at all


def test_a_search_without_final_runs_or_without_a_choice_is_missing():
    searches = [make_search("toy", "a", {"learning_rate": 2e-5}), make_search("toy", "b", None)]
    cells = tuned_cells(runs("a", "default", [42], 70.0) + runs("b", "default", [42], 80.0), searches)
    assert cells.records == []
    assert {m.model: m.why for m in cells.missing} == {
        "a": "searched, but no final run yet in variant learning_rate=2e-05",
        "b": "its search chose nothing: every candidate was pruned or failed"}
