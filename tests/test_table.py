from records import make_record

from harness import table as tb

TASKS = [("imdb", "IMDB"), ("assin2", "Assin2")]
MODELS = [("big", "Big"), ("small", "Small")]


def test_golden_markdown_single_seed():
    records = [make_record("imdb", "big", 42, 93.0), make_record("assin2", "big", 42, 88.0),
               make_record("imdb", "small", 42, 92.0), make_record("assin2", "small", 42, 89.5),
               make_record("imdb", "extra", 42, 50.0, display="Extra")]
    table = tb.build_table(records, "published", TASKS, MODELS)
    assert tb.to_markdown(table) == (
        "| Models | IMDB | Assin2 | Average |\n"
        "|--------|------|--------|---------|\n"
        "| Big | **93.00** | 88.00 | 90.50 |\n"
        "| Small | 92.00 | **89.50** | **90.75** |\n"
        "| Extra | 50.00 | – | – |"
    )


def test_several_seeds_bold_only_when_significant():
    recs = []
    for seed, (b, s) in enumerate([(93.0, 90.0), (93.2, 90.1), (92.8, 89.9)]):
        recs += [make_record("imdb", "big", seed, b), make_record("imdb", "small", seed, s)]
    for seed, (b, s) in enumerate([(88.0, 88.5), (89.0, 87.5), (87.0, 88.2)]):
        recs += [make_record("assin2", "big", seed, b), make_record("assin2", "small", seed, s)]
    table = tb.build_table(recs, "published", TASKS, MODELS)
    assert table.marks[("big", "imdb")] == "best"  # 93.0 vs 90.0 with tiny spread
    assert table.marks[("small", "assin2")] == "tied" and table.marks[("big", "assin2")] == "tied"
    big = table.rows[0]
    assert big.cells["imdb"].n == 3 and round(big.cells["imdb"].half, 3) == 0.497  # t(.975,2)*0.2/sqrt(3)
    assert big.average.n == 3 and abs(big.average.mean - 90.5) < 1e-9
    md = tb.to_markdown(table)
    assert "**93.00 ± 0.50 (n=3)**" in md and "*88.07 ± 1.27 (n=3)* ≈" in md  # sd 0.513 by hand


def test_row_missing_a_task_has_no_average_and_protocol_matters():
    recs = [make_record("imdb", "big", 1, 90.0, clean=88.0)]
    table = tb.build_table(recs, "clean", TASKS, MODELS)
    assert table.rows[0].cells["imdb"].mean == 88.0 and table.rows[0].average is None
    assert tb.build_table([make_record("imdb", "big", 1, 90.0)], "clean", TASKS, MODELS).rows == []


def test_published_comparison_flags_outside_ci():
    recs = [make_record("imdb", "big", s, v) for s, v in enumerate([91.0, 91.2, 90.8])]
    table = tb.build_table(recs, "published", TASKS, MODELS)
    rows = tb.published_rows(table, {"imdb": {"big": 93.58}})
    assert len(rows) == 1 and rows[0]["published_inside_ci"] is False
    assert abs(rows[0]["difference"] - (91.0 - 93.58)) < 1e-9
    assert "**no**" in tb.published_markdown(rows)


def test_exports():
    recs = [make_record("imdb", "big", 1, 90.0), make_record("assin2", "big", 1, 80.0)]
    table = tb.build_table(recs, "published", TASKS, MODELS)
    csv_text = tb.to_csv(table)
    assert csv_text.splitlines()[0] == "variant,protocol,model,column,mean,ci95_half,n,mark,metric"
    assert "default,published,big,average,85.0000,,1,best,accuracy" in csv_text
    latex = tb.to_latex(table)
    assert r"\textbf{90.00}" in latex and latex.strip().endswith(r"\end{tabular}")
    import json

    obj = json.loads(json.dumps(tb.to_json_obj(table, [])))
    assert obj["rows"][0]["average"]["mean"] == 85.0
