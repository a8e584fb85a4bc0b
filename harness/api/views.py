"""The API's functions that read records: table, cost_table, compare, plot, report (the commands that show
results) and export (the Hub's formats and JSON lines)."""
from __future__ import annotations

from pathlib import Path

from harness.api.common import DEMO_RESULTS, results_folder, say
from harness.errors import UserError
from harness.record.protocols import DEFAULT_PROTOCOL, TUNED


def complete_records(results: str | Path | None = None, variant: str | None = None) -> tuple[list, list[str]]:
    """The complete records under results (a warning on stderr for each unreadable file and failed run) and
    the variants to show: `variant`, or every one found, "default" first."""
    from harness.record.store import scan

    folder = results_folder(results)
    if not folder.is_dir():
        demo = f" (the demo's records are in {DEMO_RESULTS}: --results {DEMO_RESULTS})" \
            if Path(DEMO_RESULTS).is_dir() else ""
        raise UserError(f"no results folder '{folder}': run `harness run` first or pass --results DIR{demo}")
    records, warnings = scan(folder)
    for w in warnings:
        say(f"warning: {w}")
    for r in records:
        if r.status != "complete":
            say(f"warning: failed run not tabulated: {r.task.name}/{r.model.name} seed {r.seed} "
                 f"({r.variant}): {r.failure}")
    records = [r for r in records if r.status == "complete"]
    variants = sorted({r.variant for r in records}, key=lambda v: (v != "default", v))
    if variant:
        if variant not in variants:
            raise UserError(f"no records of variant '{variant}' (found: {', '.join(variants) or 'none'})")
        variants = [variant]
    if not variants:
        raise UserError(f"no complete records under '{folder}': run `harness run` first")
    return records, variants


def tuned(results: str | Path | None, records: list, paths: list | None = None):
    """The tuned protocol's cells of these complete records (aggregate/tuned.py), with the search records under
    results; refused where there is none."""
    from harness.aggregate.tuned import tuned_cells
    from harness.record.search import read_searches, search_root

    folder = results_folder(results)
    searches, warnings = read_searches(folder)
    for w in warnings:
        say(f"warning: {w}")
    if not searches:
        raise UserError(f"no search records under '{search_root(folder)}': the tuned protocol shows the cells a search "
                        f"chose a setting for; run `harness tune --task T --model M` first")
    return tuned_cells(records, searches, paths)


def protocol_records(results: str | Path | None, protocol: str, variant: str | None = None):
    """(records, variants to show, notes per variant) for a view of one protocol: the complete records; under the
    tuned protocol, its cells (relabelled to their searches' base variants) and a note per variant saying what each
    search chose."""
    records, variants = complete_records(results, None if protocol == TUNED else variant)
    if protocol != TUNED:
        return records, variants, None
    from harness.aggregate.groups import variant_order
    from harness.outputs.search_text import tuned_note

    cells = tuned(results, records)
    found = variant_order({s.base_variant for s in cells.searches})
    if variant and variant not in found:
        raise UserError(f"no search of variant '{variant}' (searched variants: {', '.join(found)})")
    variants = [variant] if variant else found
    if not any(r.variant in variants for r in cells.records):
        why = "; ".join(f"{m.model} on {m.task}: {m.why}" for m in cells.missing if m.variant in variants)
        raise UserError(f"no tuned cell has final runs yet ({why}): run `harness tune` again to finish them")
    return cells.records, variants, {v: tuned_note(cells, v) for v in variants}


def axes(records: list, variants: list[str], suite: str | None = None, metric: str | None = None,
         normalized: bool = False, group: str | None = None):
    """The rows, columns and records a table of these records shows (aggregate.columns.table_axes); a note on
    the choice (the default suite without records, so another shown) is said on stderr."""
    from harness.aggregate.columns import table_axes
    from harness.registry.load import load_models, load_tasks

    keys = [(r.task.name, r.model.name, r.variant) for r in records]
    shown = table_axes(load_tasks(), load_models(), keys, variants, suite, metric, normalized, group)
    if shown.note:
        say(f"harness: {shown.note}")
    shown.records = shown.keep(records)
    return shown


def table(results: str | Path | None = None, *, protocol: str = DEFAULT_PROTOCOL, format: str = "markdown",
          variant: str | None = None, suite: str | None = None, metric: str | None = None, normalized: bool = False,
          group: str | None = None, write: bool = False, output: str | Path | None = None) -> str:
    """The comparison table `harness table` prints: one section per (variant, precision), the suite's tasks
    (default ttl) as columns, the model group's models (default ttl) as rows. write: also write it where
    `harness table` does (<results>/table-<protocol>-<variant>.<ext>), or to `output`."""
    from harness import results as results_api
    from harness.files import write_or_fail
    from harness.outputs import table_files

    folder = results_folder(results)
    records, variants, notes = protocol_records(folder, protocol, variant)
    shown = axes(records, variants, suite, metric, normalized, group)
    text = results_api.render(results_api.frame(shown.records), shown, protocol, format, notes)  # as results.table
    if format == "markdown":
        text += f"\n{table_files.footer(shown.records, variant)}\n"
    if write or output:
        out = Path(output) if output else table_files.default_path(folder, protocol, variant, format)
        write_or_fail(out, text, "the table")
        if not output:
            table_files.remember(folder, out, protocol, variant, format, shown.records)
        say(f"(written to {out})")
        for w in table_files.stale(folder, shown.records, tuned=protocol == TUNED):
            say(f"warning: {w}")
    return text


def cost_table(results: str | Path | None = None, *, format: str = "markdown", variant: str | None = None,
               output: str | Path | None = None) -> str:
    """`harness table --cost`: per task, model and variant, what was trained and what it cost, and per search what
    its candidates cost in total; written to <results>/table-cost.<ext> (or `output`)."""
    from harness.files import write_or_fail
    from harness.outputs import cost_table as costs
    from harness.record.search import read_searches

    folder = results_folder(results)
    records, variants = complete_records(folder, variant)
    searches, warnings = read_searches(folder)
    for w in warnings:
        say(f"warning: {w}")
    searches = [s for s in searches if variant is None or s.base_variant == variant]
    text = costs.render(costs.cost_rows([r for r in records if r.variant in variants]), format,
                        costs.search_rows(searches))
    out = Path(output) if output else folder / f"table-cost.{costs.EXTENSIONS[format]}"
    write_or_fail(out, text, "the table")
    say(f"(written to {out})")
    return text


def compare(task: str, model_a: str, model_b: str, *, results: str | Path | None = None,
            protocol: str = DEFAULT_PROTOCOL, variant: str | None = None, metric: str | None = None) -> str:
    """`harness compare`: does A's fine-tuning beat B's on this task (the seed-aware test), and per checkpoint."""
    from harness.aggregate.compare import compare_models
    from harness.record.store import scan

    folder = results_folder(results)
    records, warnings = scan(folder) if folder.is_dir() else ([], [])
    for w in warnings:
        say(f"warning: {w}")
    if protocol == TUNED:  # A's and B's tuned cells, paired by their searches' base variant
        cells = tuned(folder, [r for r in records if r.status == "complete"])
        for m in cells.missing:
            if m.task == task and m.model in (model_a, model_b) and (variant is None or m.variant == variant):
                say(f"note: {m.model} on {task} (variant {m.variant}) has no tuned cell: {m.why}")
        records = cells.records
    return compare_models(records, task, model_a, model_b, protocol, variant, metric)


def plot(results: str | Path | None = None, *, protocol: str = DEFAULT_PROTOCOL, metric: str | None = None,
         variant: str | None = None, suite: str | None = None, group: str | None = None,
         output: str | Path | None = None) -> str:
    """`harness plot`: the figure of one variant's table (PNG); returns what it wrote."""
    from harness.aggregate import pooling
    from harness.aggregate.frame import frame
    from harness.aggregate.table import baselines, build_table
    from harness.outputs.plot import plot_table

    folder = results_folder(results)
    records, variants, _ = protocol_records(folder, protocol, variant)
    shown = axes(records, variants, suite, metric, False, group)
    variant = shown.variants[0]
    records = [r for r in shown.records if r.variant == variant]
    pooling.check(frame(records))
    table_ = build_table(records, protocol, shown.tasks, shown.rows, variant, metric=metric or "accuracy",
                         scoring=shown.columns.scoring)
    suffix = "" if metric in (None, "accuracy") else f"-{metric}"
    out = Path(output) if output else folder / f"plot-{protocol}-{variant}{suffix}.png"
    # published: each column's own metric's figures; the trivial baseline a line in each panel
    return plot_table(table_, shown.columns.published, out, baselines(table_, records))


def report(results: str | Path | None = None, *, suite: str | None = None, group: str | None = None,
           output: str | Path | None = None) -> Path:
    """`harness report`: one self-contained HTML page of every result (the tuned protocol too, where searches
    exist); returns where it was written."""
    from harness.aggregate.tuned import tuned_cells
    from harness.files import write_or_fail
    from harness.outputs.report import render_report
    from harness.record.search import read_searches

    folder = results_folder(results)
    records, variants = complete_records(folder, None)
    shown = axes(records, variants, suite, None, False, group)
    searches, warnings = read_searches(folder)
    for w in warnings:
        say(f"warning: {w}")
    cells = tuned_cells(shown.records, searches) if searches else None  # the tuned protocol, where searched
    out = Path(output) if output else folder / "report.html"
    html = render_report(shown.records, shown.tasks, shown.rows, shown.columns.published, folder, cells,
                         main=shown.columns.scoring)
    return write_or_fail(out, html, "the report")


def export(results: str | Path | None = None, *, format: str, model: str | None = None,
           protocol: str = DEFAULT_PROTOCOL, variant: str | None = None, output: str | Path | None = None,
           push: str | None = None) -> list[Path]:
    """`harness export`: one model's results in a Hub format (model-index, eval-results), or every record as
    JSON lines (jsonl); push: also upload to that Hub repository. Returns the files written."""
    import sys

    from harness import results as results_api
    from harness.aggregate import pooling
    from harness.files import write_or_fail
    from harness.outputs import hub_formats, publish
    from harness.registry.load import load_models, load_tasks

    folder = results_folder(results)
    records, paths, problems = results_api.read(folder)
    for w in problems:
        say(f"warning: {w}")
    if protocol == TUNED:
        done = [i for i, r in enumerate(records) if r.status == "complete"]
        cells = tuned(folder, [records[i] for i in done], [paths[i] for i in done])
        records, paths = cells.records, cells.paths
    df = results_api.frame(records, paths)
    model = _export_model(model, df, load_models()) if model else None
    if format != "jsonl" and model is None:
        raise UserError(f"--format {format} describes one model: pass --model NAME")
    if model is not None:
        keep = [i for i, r in enumerate(records) if r.model.name == model]
        records, paths, df = [records[i] for i in keep], [paths[i] for i in keep], df[df.model == model]
    if df.empty:
        raise UserError(f"no complete records under '{folder}': run `harness run` first")
    pooling.check(df)
    out = Path(output) if output else folder / "export"
    if format == "jsonl":
        text = "\n".join(hub_formats.jsonl_lines(records, paths, folder)) + "\n"
        target = write_or_fail(out if output else out / f"{model or 'results'}.jsonl", text, "the export")
        print(f"{len(text.splitlines())} lines -> {target}")
        if push:
            print(f"pushed: {publish.push_files(push, {target.name: text}, repo_type='dataset')}")
        return [target]
    variant = _export_variant(variant, df, model)
    summaries = hub_formats.cell_summaries(df, model, protocol, variant, load_tasks())
    if format == "model-index":
        entries = hub_formats.model_index_results(summaries, protocol)
        text = hub_formats.model_index_yaml(df[df.model == model].model_display.iloc[0], entries)
        target = write_or_fail(out if output else out / model / "model-index.yaml", text, "the export")
        sys.stdout.write(text)
        say(f"(written to {target})")
        if push:
            import yaml

            print(f"pushed: {publish.push_model_index(push, yaml.safe_load(text)['model-index'])}")
        return [target]
    files = hub_formats.eval_results_files(hub_formats.eval_result_entries(summaries, protocol, variant))
    where = (out if output else out / model) / ".eval_results"
    written = [write_or_fail(where / name, text, "the export") for name, text in files.items()]
    for path in written:
        print(path)
    if push:
        print(f"pushed: {publish.push_files(push, {f'.eval_results/{n}': t for n, t in files.items()})}")
    return written


def _export_model(name: str, df, models) -> str:
    """A model name as the records hold it (registry aliases resolved)."""
    for spec in models.values():
        if name in spec.aliases:
            name = spec.name
    found = sorted(set(df.model))
    if name not in found:
        raise UserError(f"no complete records of model '{name}' (found: {', '.join(found) or 'none'})")
    return name


def _export_variant(variant: str | None, df, model: str) -> str:
    found = sorted(set(df.variant), key=lambda v: (v != "default", v))
    if variant is None:
        return found[0]
    if variant not in found:
        raise UserError(f"no records of model '{model}' in variant '{variant}' (found: {', '.join(found)})")
    return variant
