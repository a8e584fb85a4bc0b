"""harness export: one model's results in the Hub's formats (model-index, .eval_results/), or every
record as JSON lines; --push uploads them (harness/outputs/publish.py). The formats: harness/outputs/hub_formats.py."""
from __future__ import annotations

import sys
from pathlib import Path

from harness.errors import UserError


def run(args, results: Path) -> int:
    """The results of one model in a Hub format, or every record as JSON lines; --push uploads."""
    from harness import results as results_api
    from harness.aggregate import pooling
    from harness.files import write_atomic
    from harness.outputs import hub_formats, publish
    from harness.registry.load import load_models, load_tasks

    records, paths, problems = results_api.read(results)
    for w in problems:
        print(f"warning: {w}", file=sys.stderr)
    df = results_api.frame(records, paths)
    tasks = load_tasks()
    model = _export_model(args.model, df, load_models()) if args.model else None
    if args.format != "jsonl" and model is None:
        raise UserError(f"--format {args.format} describes one model: pass --model NAME")
    if model is not None:
        keep = [i for i, r in enumerate(records) if r.model.name == model]
        records, paths, df = [records[i] for i in keep], [paths[i] for i in keep], df[df.model == model]
    if df.empty:
        raise UserError(f"no complete records under '{results}': run `harness run` first")
    pooling.check(df)
    out = Path(args.output) if args.output else results / "export"
    if args.format == "jsonl":
        text = "\n".join(hub_formats.jsonl_lines(records, paths)) + "\n"
        target = out if args.output else out / f"{model or 'results'}.jsonl"
        _write(write_atomic, target, text)
        print(f"{len(text.splitlines())} lines -> {target}")
        if args.push:
            print(f"pushed: {publish.push_files(args.push, {target.name: text}, repo_type='dataset')}")
        return 0
    variant = _export_variant(args.variant, df, model)
    summaries = hub_formats.cell_summaries(df, model, args.protocol, variant, tasks)
    if args.format == "model-index":
        results_list = hub_formats.model_index_results(summaries, args.protocol)
        text = hub_formats.model_index_yaml(df[df.model == model].model_display.iloc[0], results_list)
        target = out if args.output else out / model / "model-index.yaml"
        _write(write_atomic, target, text)
        sys.stdout.write(text)
        print(f"(written to {target})", file=sys.stderr)
        if args.push:
            import yaml

            print(f"pushed: {publish.push_model_index(args.push, yaml.safe_load(text)['model-index'])}")
        return 0
    files = hub_formats.eval_results_files(hub_formats.eval_result_entries(summaries, args.protocol, variant))
    folder = (out if args.output else out / model) / ".eval_results"
    for name, text in files.items():
        _write(write_atomic, folder / name, text)
        print(f"{folder / name}")
    if args.push:
        print(f"pushed: {publish.push_files(args.push, {f'.eval_results/{n}': t for n, t in files.items()})}")
    return 0


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


def _write(write_atomic, path: Path, text: str) -> None:
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise UserError(f"cannot write '{path}': {exc.strerror}") from None
