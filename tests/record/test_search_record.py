"""The search record (record/search.py; the file named apart from tests/grid/test_search.py) and the records a
search writes: JSON both ways, checked on reading; a candidate's state and score from its records, read on
validation only; pruned records."""
import json

import pytest
from records import curve_record, make_search

from harness.record import search
from harness.record.schema import Cost, Timings
from harness.record.serialize import from_dict, to_json
from harness.record.store import is_complete, write_record


def a_search(**changes):
    return make_search("t", "m", {"learning_rate": 2e-5}, **changes)


def test_a_search_record_reads_back_as_written(tmp_path):
    record = a_search()
    path = search.search_path(tmp_path, "t", "m", "default")
    assert search.write_once(path, record) and search.read_search(path) == record
    assert path == tmp_path / "search" / "t" / "m" / "default" / "search.json"
    assert search.read_searches(tmp_path) == ([record], [])


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(schema_version=2), "not a search record of version 1"),
    (lambda d: d["candidates"][0].update(state="great"), "state 'great' is not one of"),
    (lambda d: d.pop("choice"), "missing field 'choice'"),
    (lambda d: d.update(search_seeds="1000"), "search.search_seeds: expected a list"),
])
def test_a_malformed_search_record_is_refused_naming_the_field(tmp_path, change, message):
    data = json.loads(search.to_json(a_search()))
    change(data)
    with pytest.raises(ValueError, match=message):
        search.from_dict(data)
    path = tmp_path / "search" / "t" / "m" / "default" / "search.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    records, warnings = search.read_searches(tmp_path)
    assert records == [] and len(warnings) == 1 and str(path) in warnings[0]


def test_the_score_is_validation_at_the_epoch_validation_picks():
    # validation peaks at epoch 2, test at epoch 3: the score is epoch 2's validation, never a test value
    record = curve_record("t", "m", "v", 1000, validation=[0.5, 0.9, 0.7], test=[0.5, 0.6, 0.99])
    assert search.validation_score(record) == 0.9
    assert search.validation_score(curve_record("t", "m", "v", 1, [], [], status="failed", reason="x")) is None


def test_a_candidates_state_and_mean_come_from_its_records(tmp_path):
    def found(*records):
        return {r.seed: (r, tmp_path / "search" / f"seed{r.seed}.json") for r in records}

    a, b = (curve_record("t", "m", "v", s, [v], [0.1]) for s, v in ((1000, 0.6), (1001, 0.8)))
    c = search.candidate_of({"learning_rate": 1e-5}, "v", [1000, 1001], found(a, b), tmp_path)
    assert (c.state, c.mean, c.scores) == ("complete", pytest.approx(0.7), {"1000": 0.6, "1001": 0.8})
    assert c.records == ["search/seed1000.json", "search/seed1001.json"]
    half = search.candidate_of({}, "v", [1000, 1001], found(a), tmp_path)
    assert (half.state, half.mean) == ("incomplete", None)
    pruned = curve_record("t", "m", "v", 1001, [0.1], [0.9], status="pruned", reason="worse than the median")
    stopped = search.candidate_of({}, "v", [1000, 1001], found(a, pruned), tmp_path)
    assert (stopped.state, stopped.reason, stopped.mean) == ("pruned", "worse than the median", None)


def test_a_searchs_cost_sums_its_runs(tmp_path):
    runs = [curve_record("t", "m", "v", s, [0.5], [0.5]) for s in (1, 2, 3)]
    for r, energy in zip(runs, (0.25, 0.5, None), strict=True):
        r.timings = Timings(load_s=1, tokenize_s=0, train_s=10.0, eval_s=2.0, total_s=13)
        r.cost = Cost(country="DEU", tracker="codecarbon", energy_kwh=energy, emissions_kg=energy)
    cost = search.cost_of(runs)
    assert (cost.runs, cost.train_s, cost.eval_s, cost.energy_kwh, cost.unmeasured) == (3, 30.0, 6.0, 0.75, 1)


def test_a_pruned_record_is_written_as_a_result_and_reads_back(tmp_path):
    record = curve_record("t", "m", "v", 1000, [0.5], [0.5], status="pruned", reason="pruned after epoch 1")
    path = write_record(tmp_path, record)
    assert path.name == "seed1000.json" and not is_complete(path)  # not a complete run: never tabulated
    again = from_dict(json.loads(path.read_text()))
    assert (again.status, again.failure, again.fits[0].stopped) == ("pruned", "pruned after epoch 1",
                                                                     "pruned after epoch 1")
    data = json.loads(to_json(record))
    data["status"] = "stopped"
    with pytest.raises(ValueError, match="record.status: 'stopped' is not one of complete, failed, pruned"):
        from_dict(data)
