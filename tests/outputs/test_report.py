"""The HTML report: the table's numbers and marks, details per cell, hostile names, and a real browser."""
import os
import shutil
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from harness.aggregate import table as tb
from harness.cli.commands import main
from harness.outputs import table_text as tt
from harness.outputs.report import VIEWS, build_view, render_report
from harness.record import predictions, protocols
from harness.record.schema import (
    SCHEMA_VERSION,
    EpochMetrics,
    Fit,
    HarnessInfo,
    ModelInfo,
    PeakMemory,
    RunRecord,
    SplitMetrics,
    TaskInfo,
    Timings,
    Tokens,
)
from harness.record.store import read_record, write_record
from harness.registry.load import local_name

TASKS = [("imdb", "IMDB"), ("assin2", "Assin2")]


MODELS = [("big", "Big model"), ("small", "Small model")]


PUBLISHED = {"assin2": {"big": 88.97, "small": 85.78}}


def sweep_record(task, model, seed, level, epochs=3, display=None, task_display=None):
    """A complete record of a 3-epoch run whose protocols are chosen by protocols.protocols, as a real run's are:
    test and validation scores drift apart so that the two protocols pick different numbers."""
    rng = np.random.default_rng(zlib.crc32(f"{task}/{model}/{seed}".encode()))
    gold = [0, 1] * 20
    eps = []
    for e in range(1, epochs + 1):
        test = min(0.99, level / 100 + 0.01 * e + rng.normal(0, 0.01))
        val = min(0.99, level / 100 + rng.normal(0, 0.02))
        eps.append({"epoch": e, "train_loss": 0.7 - 0.1 * e,
                    "test": {"metrics": {"accuracy": test, "macro_f1": test - 0.03}, "loss": 0.6},
                    "validation": {"metrics": {"accuracy": val, "macro_f1": val - 0.02}, "loss": 0.6}})
    fit = Fit(train_set="train", validation_source="split", train_examples=400, validation_examples=40,
              epochs=[EpochMetrics(epoch=e["epoch"], train_loss=e["train_loss"], test=SplitMetrics(**e["test"]),
                                   validation=SplitMetrics(**e["validation"]),
                                   test_predictions=predictions.encode_ids(gold)) for e in eps],
              train_s=12.0, eval_s=3.0, train_tokens_real=9000, train_tokens_processed=10000, eval_tokens_real=900,
              eval_tokens_processed=1000, steps=75)
    return RunRecord(
        schema_version=SCHEMA_VERSION, status="complete", created_at="2026-01-01T00:00:00+00:00",
        task=TaskInfo(name=task, display_name=task_display or task, hub_id=f"tester/{task}"),
        model=ModelInfo(name=model, display_name=display or model, family="encoder", source=f"tester/{model}"),
        variant="default", seed=seed, hyperparameters={"learning_rate": 4e-5, "epochs": epochs}, overrides={},
        limit=None, dataset_sizes={"train": 400, "validation": 40, "test": len(gold)},
        test_labels=predictions.encode_ids(gold), fits=[fit],
        protocols=protocols.protocols([fit]),
        timings=Timings(load_s=1.0, tokenize_s=1.0, train_s=12.0, eval_s=3.0, total_s=20.0),
        tokens=Tokens(train_real=9000, train_processed=10000, eval_real=900, eval_processed=1000,
                      padding_efficiency=0.9),
        peak_memory=PeakMemory(bytes=2 ** 30, kind="process peak RSS"), device="cpu", packages={"torch": "2.13.0"},
        harness=HarnessInfo(version="0.1.0", git_commit="0" * 40, git_dirty=False), data_cache=None,
        precision="fp32", device_type="cpu")


@pytest.fixture(scope="module")
def toy_sweep():
    """The records of a 2-model x 2-task x 3-seed sweep (big is clearly better on imdb, a tie on assin2)."""
    levels = {("imdb", "big"): 92, ("imdb", "small"): 84, ("assin2", "big"): 86, ("assin2", "small"): 86}
    return [sweep_record(t, m, s, level) for (t, m), level in levels.items() for s in (42, 43, 44)]


@pytest.fixture(scope="module")
def toy_html(toy_sweep, tmp_path_factory):
    """The toy sweep's page (rendered once: each figure costs matplotlib about half a second)."""
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_report(toy_sweep, TASKS, MODELS, PUBLISHED, path.parent), encoding="utf-8")
    return path


BASELINE_ROW = "(trivial baseline)"


class Cells(HTMLParser):
    """(protocol, metric, model, column) -> {"sort", "mark", "mean", "paper"} for every leaderboard cell."""

    def __init__(self):
        super().__init__()
        self.cells, self.view, self.model, self.cell, self.field, self.dialogs = {}, None, None, None, None, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "div" and "view" in classes:
            self.view = (a["data-protocol"], a["data-metric"])
        elif tag == "tr" and "data-model" in a:
            self.model = a["data-model"]
        elif tag == "tr" and "baseline" in classes:  # the reference row, under the models'
            self.model = BASELINE_ROW
        elif tag == "td" and self.model:
            self.cell = self.cells.setdefault((*self.view, self.model, a["data-col"]),
                                              {"sort": a.get("data-sort", ""), "mark": a.get("data-mark", ""),
                                               "mean": "", "paper": ""})
        elif tag == "span" and self.cell is not None and ("mean" in classes or "paper" in classes):
            self.field = "mean" if "mean" in classes else "paper"
        elif tag == "dialog":
            self.dialogs.append(a["id"])

    def handle_endtag(self, tag):
        if tag == "span":
            self.field = None
        elif tag == "td":
            self.cell = None
        elif tag in ("tbody", "tfoot"):
            self.model = None

    def handle_data(self, data):
        if self.cell is not None and self.field:
            self.cell[self.field] += data.strip()


def parse(html: str) -> Cells:
    parser = Cells()
    parser.feed(html)
    return parser


def test_the_page_shows_the_tables_numbers_and_marks_for_every_protocol_and_metric(toy_sweep, toy_html, tmp_path):
    html = toy_html.read_text(encoding="utf-8")
    page = parse(html)
    checked = 0
    for protocol in ("published", "clean"):
        for metric in tb.METRICS:
            table = tb.build_table(toy_sweep, protocol, TASKS, MODELS, metric=metric)
            for row in table.rows:
                for col in ("imdb", "assin2", "average"):
                    cell = row.average if col == "average" else row.cells[col]
                    shown = page.cells[(protocol, metric, row.model, col)]
                    assert float(shown["sort"]) == cell.mean and shown["mean"] == f"{cell.mean:.2f}"
                    assert shown["mark"] == table.marks.get((row.model, col), "")
                    ref = PUBLISHED.get(col, {}).get(row.model) if metric == "accuracy" else None
                    assert shown["paper"] == ("" if ref is None else f"paper {ref:.2f}")
                    checked += 1
    assert checked == 2 * len(tb.METRICS) * 2 * 3
    # The marks the toy data was built for: a clear winner on imdb, a tie on assin2.
    assert page.cells[("published", "accuracy", "big", "imdb")]["mark"] == "best"
    assert page.cells[("published", "accuracy", "small", "assin2")]["mark"] in ("tied", "")
    # A registered task without any result: its column is left out; as in the CLI table, no row has an average.
    imdb = [r for r in toy_sweep if r.task.name == "imdb" and r.model.name == "big"]
    wider = parse(render_report(imdb, TASKS + [("hatebr", "HateBr")], MODELS, PUBLISHED, tmp_path))
    assert {key[3] for key in wider.cells} == {"imdb"}
    assert sorted(page.dialogs) == sorted(f"v0-d-{m}--{t}" for m in ("big", "small") for t in ("imdb", "assin2"))
    assert "<link" not in html and "src=\"http" not in html and "@import" not in html  # nothing fetched


def test_the_page_opens_on_each_tasks_main_metric_with_the_trivial_baseline_as_a_reference_row(tmp_path):
    """As `harness table`: protocol clean, each column its task's main metric, named in its header; under the
    models, what a predictor that never reads the text scores, in every view."""
    import re

    from records import make_record

    from harness import metrics

    gold = [0] * 7 + [1, 2, 2]  # 3 unbalanced classes, as ASSIN's entailment
    scores = [1.0, 2.0, 3.0, 4.0, 5.0, 1.5, 2.5, 3.5, 4.5, 3.0]
    records = [make_record("rte", "m", s, 0, gold=gold, preds=gold, main="macro_f1",
                           test={"macro_f1": 0.30, "accuracy": 0.70}, clean_test={"macro_f1": 0.5 + s / 100,
                                                                                   "accuracy": 0.8})
               for s in (1, 2)]
    records += [make_record("sts", "m", s, 0, gold=scores, preds=scores, main="pearson", task_type="regression",
                            test={"pearson": 0.6, "spearman": 0.6, "mse": 0.5},
                            clean_test={"pearson": 0.6 + s / 100, "spearman": 0.6, "mse": 0.5})
                for s in (1, 2)]
    html = render_report(records, [("rte", "RTE"), ("sts", "STS")], [("m", "M")], {}, tmp_path)
    first = re.search(r'<div class="view" data-protocol="(\w+)" data-metric="(\w+)">', html)  # the one not hidden
    assert first.groups() == ("clean", "main")
    page = parse(html)
    assert page.cells[("clean", "main", "m", "rte")]["mean"] == "51.50"  # macro-F1, not accuracy
    assert page.cells[("clean", "main", "m", "sts")]["mean"] == "61.50"  # Pearson
    view = html[first.start():html.index('<div class="view"', first.end())]
    assert ">RTE (Macro-F1)<" in view and ">STS (Pearson)<" in view and "macro-f1" not in html
    baseline = 100 * metrics.trivial_baseline("macro_f1", np.array(gold), 3)
    assert page.cells[("clean", "main", BASELINE_ROW, "rte")]["mean"] == f"{baseline:.2f}"
    assert page.cells[("clean", "main", BASELINE_ROW, "sts")]["mean"] == "0.00"
    assert page.cells[("published", "accuracy", BASELINE_ROW, "rte")]["mean"] == "70.00"  # the majority class
    assert "Test scores, each column" in view  # the columns hold two metrics, each named above


def test_the_metric_buttons_are_the_metrics_the_records_have(tmp_path):
    """A page of regressions offers no accuracy (a button that would show Pearson again); beside classification,
    it does."""
    from records import make_record

    scores = [1.0, 2.0, 3.0, 4.0, 5.0, 1.5, 2.5, 3.5, 4.5, 3.0]
    sts = [make_record("sts", "m", s, 0, gold=scores, preds=scores, main="pearson", task_type="regression",
                       test={"pearson": 0.6, "spearman": 0.6, "mse": 0.5},
                       clean_test={"pearson": 0.6, "spearman": 0.6, "mse": 0.5}) for s in (1, 2)]
    html = render_report(sts, [("sts", "STS")], [("m", "M")], {}, tmp_path)
    assert 'data-metric="main"' in html and 'data-metric="accuracy"' not in html
    assert 'data-metric="macro_f1"' not in html
    gold = [0] * 7 + [1, 2, 2]
    rte = [make_record("rte", "m", s, 0, gold=gold, preds=gold, main="macro_f1",
                       test={"macro_f1": 0.30, "accuracy": 0.70}) for s in (1, 2)]
    html = render_report(sts + rte, [("rte", "RTE"), ("sts", "STS")], [("m", "M")], {}, tmp_path)
    assert 'data-metric="accuracy"' in html and 'data-metric="macro_f1"' in html


def test_records_of_two_precisions_get_a_section_each_never_one_pooled_cell(tmp_path):
    """As `harness table`: one section per (variant, precision), named in its heading."""
    import re

    from records import make_record

    scores = [1.0, 2.0, 3.0, 4.0, 5.0, 1.5, 2.5, 3.5, 4.5, 3.0]
    records = [make_record("sts", "m", s, 0, gold=scores, preds=scores, main="pearson", task_type="regression",
                           test={"pearson": p, "spearman": p, "mse": 0.5},
                           clean_test={"pearson": p, "spearman": p, "mse": 0.5}, precision=precision)
               for s, p, precision in ((1, 0.6, "fp32"), (2, 0.6, "fp32"), (3, 0.8, "bf16"), (4, 0.8, "bf16"))]
    html = render_report(records, [("sts", "STS")], [("m", "M")], {}, tmp_path)
    headings = re.findall(r"<h2>Variant <code>default</code>, precision (.*?)</h2>", html)
    assert headings == ["bf16 (cpu)", "fp32 (cpu)"]
    assert ">80.00<" in html and ">60.00<" in html and ">70.00<" not in html  # each its own mean


def test_a_detail_view_holds_every_seed_settings_cost_and_provenance(toy_sweep, toy_html):
    html = toy_html.read_text(encoding="utf-8")
    start = html.index('<dialog class="detail" id="v0-d-big--imdb"')
    detail = html[start:html.index("</dialog>", start)]
    records = sorted((r for r in toy_sweep if r.task.name == "imdb" and r.model.name == "big"),
                     key=lambda r: r.seed)
    for r in records:  # relative to where the results folder is: the page names no path of the machine
        assert f"<code>{toy_html.parent.name}/imdb/big/default/seed{r.seed}.json</code>" in detail
        for protocol in ("published", "clean"):
            assert f">{tb.record_score(r, protocol, 'macro_f1'):.2f}<" in detail
    assert str(toy_html.parent) not in html
    assert detail.count("<svg") == 1 and ">4e-05<" in detail and ">2.13.0<" in detail
    assert "1.00 GiB (process peak RSS)" in detail and ">75<" in detail and "tester/imdb @ –" in detail


def test_the_legend_and_published_comparison_come_from_the_table(toy_sweep, toy_html):
    html = toy_html.read_text(encoding="utf-8")
    table = tb.build_table(toy_sweep, "clean", TASKS, MODELS, metric="macro_f1")
    legend = tt.legend(table)
    assert legend.startswith("Macro-F1 (%) on test, protocol *clean*")
    assert "Macro-F1 (%) on test, protocol <em>clean</em>" in html
    assert "Test Macro-F1 (%), protocol" in html and "macro-f1" not in html  # named as every table names it
    page = parse(html)  # balanced labels: the trivial accuracy is 50 on both tasks, and so on their Average
    assert [page.cells[("published", "accuracy", BASELINE_ROW, c)]["mean"] for c in ("imdb", "assin2", "average")] \
        == ["50.00", "50.00", "50.00"]
    rows = tb.published_rows(tb.build_table(toy_sweep, "published", TASKS, MODELS), PUBLISHED)
    assert len(rows) == 2 and all(f"{r['difference']:+.2f}" in html for r in rows)
    assert html.count("The published table reports accuracy only.") == 2  # the macro-F1 view of each protocol


def test_any_mark_kind_is_shown_even_one_the_page_does_not_know(toy_sweep):
    table = tb.build_table(toy_sweep, "published", TASKS, MODELS)
    table.marks = {("big", "imdb"): "best", ("small", "imdb"): "untested best", ("big", "assin2"): "tied"}
    view = build_view(table, {}, [("imdb", "IMDB"), ("assin2", "Assin2")], "v0", set())
    cells = {(model, c.col): c for model, _, row in view.rows for c in row}
    assert (cells[("big", "imdb")].mark_class, cells[("big", "imdb")].mark_tag) == ("best", "")
    assert (cells[("big", "assin2")].mark_class, cells[("big", "assin2")].mark_tag) == ("tied", "≈")
    assert cells[("small", "imdb")].mark_class == "other mark-untested-best"
    assert cells[("small", "imdb")].mark_tag == "untested best"
    assert cells[("small", "assin2")].mark_class == ""


def test_names_holding_markup_are_shown_as_text(tmp_path):
    evil = "<script>alert(1)</script>"
    records = [sweep_record("t1", "m1", s, 80, display=f"Model {evil}", task_display=f"Task {evil}") for s in (1, 2)]
    html = render_report(records, [("t1", f"Task {evil}")], [("m1", f"Model {evil}")], {}, tmp_path)
    assert evil not in html and html.count("<script") == 1  # only the page's own script
    assert "Model &lt;script&gt;alert(1)&lt;/script&gt;" in html and "Task &lt;script&gt;" in html


def test_a_protocol_without_results_says_so(tmp_path):
    from records import make_record

    records = [make_record("imdb", "big", s, 90.0 + s) for s in (1, 2)]  # no clean result (no validation)
    page = parse(html := render_report(records, TASKS, MODELS, {}, tmp_path))
    assert {key[:2] for key in page.cells} == {("published", m) for m in VIEWS}
    assert html.count("No run has a result under this protocol.") == len(VIEWS)
    assert html.count("<figure class=\"card figure\">") == len(VIEWS)  # figures only where there are results


def test_report_cli_writes_the_page_and_reports_mistakes(toy_sweep, tmp_path, capsys):
    for r in toy_sweep[:3]:
        write_record(tmp_path / "results", r)
    mask = os.umask(0o022)
    try:
        assert main(["report", "--results", str(tmp_path / "results")]) == 0
    finally:
        os.umask(mask)
    page = tmp_path / "results" / "report.html"
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert page.stat().st_mode & 0o777 == 0o644  # readable by others, as a page on a shared folder must be
    assert capsys.readouterr().out.strip() == str(page)
    assert main(["report", "--results", str(tmp_path / "nothing")]) == 2
    assert "no results folder" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["report", "--results", str(tmp_path / "results"), "--output", str(tmp_path / "file" / "r.html")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (pip install playwright) is missing")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


def open_page(browser, path: Path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: problems.append(f"a script opened a {d.type}: {d.message}"))
    offline = ("file:", "data:")
    page.on("request", lambda r: None if r.url.startswith(offline) else problems.append(f"fetched {r.url}"))
    page.goto(path.as_uri())
    return page, problems


def board_order(page) -> list[str]:
    return page.eval_on_selector_all(".view:not([hidden]) table.board tbody tr",
                                     "rows => rows.map(r => r.dataset.model)")


def shown_mean(page, model: str, col: str) -> str:
    return page.locator(f'.view:not([hidden]) tr[data-model="{model}"] td[data-col="{col}"] .mean').inner_text()


def check_in_browser(browser, html: Path, records, tasks, models, shot: Path):
    page, problems = open_page(browser, html)
    try:
        published = {p: tb.build_table(records, p, tasks, models) for p in ("published", "clean")}
        first_task = next(t for t, _ in tasks if any(t in r.cells for r in published["published"].rows))
        # The page opens as `harness table` does: protocol clean, each task's main metric (accuracy here).
        assert page.locator('button[aria-pressed="true"]').all_inner_texts() == ["clean", "Main metric"]
        opened = published["clean"].rows[0]
        assert shown_mean(page, opened.model, first_task) == f"{opened.cells[first_task].mean:.2f}"
        page.locator('button[data-protocol="published"]').click()
        # Sorting: a click on a task's header orders the rows by that task, best first; another click reverses.
        header = page.locator(f'.view:not([hidden]) th[data-col="{first_task}"] button')
        header.click()
        rows = [r for r in published["published"].rows if first_task in r.cells]
        # Ties keep the table's order in both directions (a stable sort), rows without the task go last.
        for direction in (-1, 1):
            expected = [r.model for r in sorted(rows, key=lambda r: direction * r.cells[first_task].mean)]
            expected += [r.model for r in published["published"].rows if first_task not in r.cells]
            assert board_order(page) == expected
            header.click()
        # The protocol switch shows the clean protocol's numbers.
        row = published["published"].rows[0]
        assert shown_mean(page, row.model, first_task) == f"{row.cells[first_task].mean:.2f}"
        page.locator('button[data-protocol="clean"]').click()
        clean = next(r for r in published["clean"].rows if r.model == row.model)
        assert shown_mean(page, row.model, first_task) == f"{clean.cells[first_task].mean:.2f}"
        assert page.locator(".view:not([hidden])").count() == len({r.variant for r in records})
        # The metric switch too (clean protocol, macro-F1), then back to accuracy.
        page.locator('button[data-metric="macro_f1"]').click()
        f1 = tb.build_table(records, "clean", tasks, models, metric="macro_f1")
        f1_row = next(r for r in f1.rows if r.model == row.model)
        assert shown_mean(page, row.model, first_task) == f"{f1_row.cells[first_task].mean:.2f}"
        page.locator('button[data-metric="accuracy"]').click()
        # A cell's detail view opens with one line per seed, and closes.
        page.locator(f'.view:not([hidden]) tr[data-model="{row.model}"] td[data-col="{first_task}"] button').click()
        dialog = page.locator("dialog[open]")
        assert dialog.count() == 1 and dialog.is_visible()
        assert dialog.locator("table.seeds tbody tr").count() == row.cells[first_task].n
        assert dialog.locator("svg").count() == 1  # the per-epoch curves
        page.screenshot(path=str(shot.with_name(shot.stem + "-detail.png")))
        dialog.locator("button.close").click()
        assert page.locator("dialog[open]").count() == 0
        page.locator('button[data-protocol="published"]').click()
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        assert problems == []
    finally:
        page.close()


def test_the_page_works_in_headless_chromium(browser, toy_sweep, toy_html, tmp_path):
    check_in_browser(browser, toy_html, toy_sweep, TASKS, MODELS, tmp_path / "report.png")


def test_markup_in_names_stays_text_in_the_browser(browser, tmp_path):
    evil = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    records = [sweep_record("t1", "m1", s, 80, display=f"Model {evil}") for s in (1, 2)]
    html = tmp_path / "report.html"
    html.write_text(render_report(records, [("t1", "T1")], [("m1", f"Model {evil}")], {}, tmp_path), encoding="utf-8")
    page, problems = open_page(browser, html)
    assert page.locator('.view:not([hidden]) tr[data-model="m1"] th').inner_text() == f"Model {evil}"
    assert page.locator("img").count() == 0 and problems == []
    page.close()


@pytest.mark.slow
def test_report_on_real_tiny_runs(toy_env, tiny_encoder, tiny_decoder, tmp_path, request):
    """2 tiny models x 2 toy tasks x 3 seeds, really trained; then `harness report` on their records."""
    results = toy_env["results"]
    # The toy task's published figure names the tiny BERT as records name a local folder (folder + path hash).
    toy = toy_env["registry"] / "tasks" / "toy.yaml"
    toy.write_text(toy.read_text().replace("{tiny-bert: 90.0}", f"{{{local_name(Path(tiny_encoder))}: 90.0}}"))
    for model in (tiny_encoder, tiny_decoder):
        for task in ("toy", "toybool"):
            assert main(["run", "--task", task, "--model", str(model), "--mirror", str(toy_env["mirror"]),
                         "--results", str(results), "--epochs", "2", "--limit", "24", "--seeds", "3"]) == 0
    assert main(["report", "--results", str(results)]) == 0
    html = (results / "report.html").read_text(encoding="utf-8")
    page = parse(html)
    records = [read_record(p) for p in sorted(results.rglob("seed*.json"))]
    assert len(records) == 12
    from harness.api.views import axes

    shown = axes(records, sorted({r.variant for r in records}))
    tasks, models = shown.tasks, shown.rows
    assert ("toy", "Toy") in tasks
    for protocol in ("published", "clean"):
        table = tb.build_table(records, protocol, tasks, models, variant=records[0].variant)
        for row in table.rows:
            for task, cell in row.cells.items():
                assert page.cells[(protocol, "accuracy", row.model, task)]["mean"] == f"{cell.mean:.2f}"
    bert = local_name(Path(tiny_encoder))
    assert page.cells[("published", "accuracy", bert, "toy")]["paper"] == "paper 90.00"  # toy's published figure
    assert len(page.dialogs) == 4
    assert 'class="changed"><th>epochs</th><td>2 <span class="tag">changed</span>' in html  # --epochs 2 is flagged
    for r in records:  # every record's path is listed, relative to where the results folder is
        assert f"{results.name}/{r.task.name}/{r.model.name}/{r.variant}/seed{r.seed}.json" in html
    assert str(results.parent) not in html
    try:
        browser = request.getfixturevalue("browser")
    except pytest.skip.Exception:
        return  # the page itself is checked above; the browser checks skip where there is no Chromium
    check_in_browser(browser, results / "report.html", records, tasks, models, tmp_path / "tiny.png")
