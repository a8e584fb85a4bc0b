"""The `harness` command line. Heavy libraries (torch, transformers, datasets) are imported only
inside the commands that need them, so `harness --help` and `harness list` stay quick."""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import signal
import sys
from pathlib import Path

from .config import HELP, RunConfig
from .errors import RunFailed, UserError

RESULTS_ENV = "HARNESS_RESULTS"
DEFAULT_SEED = 42


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line (with a suggestion for a misspelled flag) and exit code 2."""

    def error(self, message):
        if message.startswith("unrecognized arguments:"):
            bad = message.split(":", 1)[1].split()[0]
            flags = [s for a in self._all_actions() for s in a.option_strings]
            close = difflib.get_close_matches(bad.split("=")[0], flags, n=1)
            if close:
                message += f"; did you mean {close[0]}?"
        raise UserError(f"{message} (see {self.prog} --help)")

    def _all_actions(self):
        for action in self._actions:
            yield action
            for sub in (getattr(action, "choices", None) or {}).values():
                if isinstance(sub, argparse.ArgumentParser):
                    yield from sub._actions


def _results_dir(args) -> Path:
    return Path(args.results or os.environ.get(RESULTS_ENV) or "results")


def _add_run_config_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("hyperparameters and speed knobs (defaults: the seed recipe, fast path)")
    for f in dataclasses.fields(RunConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            g.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                           help=f"{HELP[f.name]} (default: {f.default})")
        else:
            kind = {"float": float, "int": int, "str": str}[f.type if isinstance(f.type, str) else f.type.__name__]
            g.add_argument(flag, dest=f.name, type=kind, default=None, metavar=f.name.split("_")[-1].upper(),
                           help=f"{HELP[f.name]} (default: {f.default})")


def run_config_from(args) -> RunConfig:
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig) if getattr(args, f.name) is not None}
    return RunConfig(**given)


def parse_seeds(seed: str | None, seeds: int | None) -> list[int]:
    if seed is not None and seeds is not None:
        raise UserError("give --seed 1,2,3 or --seeds N, not both")
    if seeds is not None:
        if seeds < 1:
            raise UserError(f"--seeds must be at least 1, got {seeds}")
        return list(range(DEFAULT_SEED, DEFAULT_SEED + seeds))
    if seed is None:
        return [DEFAULT_SEED]
    try:
        out = [int(s) for s in seed.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seed takes integers separated by commas, got '{seed}'") from None
    if not out or any(s < 0 for s in out):
        raise UserError(f"--seed takes non-negative integers, got '{seed}'")
    return list(dict.fromkeys(out))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description="Fine-tune registered models on Portuguese classification tasks, "
                                                 "record every run, tabulate.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("list", help="the registered tasks and models, with their hub ids")

    p = sub.add_parser("run", help="fine-tune one model on one task (one record per seed)")
    p.add_argument("--task", required=True, help="a registered task (see harness list)")
    p.add_argument("--model", required=True, help="a registered model, or a local model folder")
    p.add_argument("--family", choices=["decoder", "encoder"], help="for a local folder: override the detected family")
    p.add_argument("--seed", help="seed(s), comma-separated (default 42)")
    p.add_argument("--seeds", type=int, help="run N seeds: 42, 43, ...")
    p.add_argument("--limit", type=int, help="a seeded, class-stratified subset of N examples per split (smoke runs)")
    p.add_argument("--mirror", help="a local hub mirror: DIR/<hub id>/ is tried before the hub (or $HARNESS_MIRROR)")
    p.add_argument("--results", help="results folder (default ./results or $HARNESS_RESULTS)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow a model entry that asks for it to run "
                                                                    "code from its repository")
    p.add_argument("--no-cache", action="store_true", help="tokenize again, do not read or write the cache")
    p.add_argument("--processes", "--num-gpus", type=int, dest="processes",
                   help="train the cell data-parallel on N processes, one per GPU (gloo on CPU); the same as "
                        "`torchrun --nproc_per_node N -m harness run ...` or `accelerate launch -m harness run ...`; "
                        "with --sharding fsdp the model is sharded over them instead of copied")
    _add_run_config_flags(p)

    p = sub.add_parser("sweep", help="the grid tasks x models x seeds, skipping cells already done; ends with the table")
    p.add_argument("--config", help="a sweep YAML file (tasks, models, seeds, limit, mirror, executor, jobs, settings, "
                                    "slurm); flags given here win")
    p.add_argument("--tasks", help="comma-separated (default: every registered task)")
    p.add_argument("--models", help="comma-separated names or folders (default: every registered model)")
    p.add_argument("--seed", help="seed(s), comma-separated")
    p.add_argument("--seeds", type=int, help="N seeds: 42, 43, ... (default 1)")
    p.add_argument("--limit", type=int, help="examples per split (smoke sweeps)")
    p.add_argument("--mirror", help="a local hub mirror (or $HARNESS_MIRROR)")
    p.add_argument("--results", help="results folder (default ./results or $HARNESS_RESULTS)")
    p.add_argument("--force", action="store_true", help="rerun cells whose record exists")
    p.add_argument("--dry-run", action="store_true", help="show the plan, run nothing")
    p.add_argument("--executor", choices=["local", "slurm", "submitit-local"], help="(default local)")
    p.add_argument("--jobs", help="local: cells at once (an integer, or 'auto' from free GPU memory; default 1)")
    p.add_argument("--partition", help="slurm partition")
    p.add_argument("--gpus", type=int, help="slurm: GPUs per job (default 1)")
    p.add_argument("--time", type=int, dest="time_min", help="slurm: minutes per job (default 240)")
    p.add_argument("--mem", help="slurm: memory per job, e.g. 32G")
    p.add_argument("--cpus", type=int, help="slurm: CPUs per job (default 8)")
    p.add_argument("--array-parallelism", type=int, help="slurm: jobs of the array running at once")
    p.add_argument("--trust-remote-code", action="store_true")
    _add_run_config_flags(p)

    p = sub.add_parser("table", help="the comparison table from every record")
    p.add_argument("--results", help="results folder (default ./results or $HARNESS_RESULTS)")
    p.add_argument("--protocol", choices=["published", "clean"], default="published")
    p.add_argument("--format", choices=["markdown", "csv", "latex", "json"], default="markdown")
    p.add_argument("--variant", help="only this variant (default: every variant found, 'default' first)")
    p.add_argument("--output", help="also write here (default: <results>/table-<protocol>.<ext>)")
    p.add_argument("--cost", action="store_true", help="the cost table instead: trainable parameters, peak memory, "
                                                       "training time, energy and emissions per task, model, variant")

    p = sub.add_parser("plot", help="a PNG: per task, one bar per model with CI error bars, published as markers")
    p.add_argument("--results", help="results folder (default ./results or $HARNESS_RESULTS)")
    p.add_argument("--protocol", choices=["published", "clean"], default="published")
    p.add_argument("--variant", help="which variant (default: 'default' if present, else the first found)")
    p.add_argument("--output", help="PNG path (default: <results>/plot-<protocol>-<variant>.png)")

    p = sub.add_parser("compare", help="paired test: do two models differ on the same test examples?")
    p.add_argument("--task", required=True)
    p.add_argument("--models", nargs=2, required=True, metavar=("A", "B"))
    p.add_argument("--protocol", choices=["published", "clean"], default="clean")
    p.add_argument("--variant", default="default")
    p.add_argument("--results", help="results folder (default ./results or $HARNESS_RESULTS)")
    return parser


# ------------------------------------------------------------------ commands

def cmd_list(args) -> int:
    from .registry import load_models, load_tasks

    tasks, models = load_tasks(), load_models()
    print("Tasks:")
    for t in tasks.values():
        rev = f" @ {t.revision}" if t.revision else ""
        val = "validation" if t.splits.get("validation") else f"validation carved ({t.validation_from_train['size']})" \
            if t.validation_from_train else "no validation"
        print(f"  {t.name:<12} {t.display_name:<12} {t.hub_id}{rev}  [{t.label.num_classes} classes, {val}]")
    print("Models:")
    for m in models.values():
        alias = f" (also {', '.join(m.aliases)})" if m.aliases else ""
        print(f"  {m.name:<16} {m.display_name:<20} {m.family:<8} {m.source}{alias}")
    return 0


def cmd_run(args) -> int:
    from .record import check_writable, write_record
    from .registry import load_models, load_tasks, resolve_model, resolve_task

    tasks, models = load_tasks(), load_models()
    task = resolve_task(args.task, tasks)
    model = resolve_model(args.model, models, args.family)
    cfg = run_config_from(args)
    seeds = parse_seeds(args.seed, args.seeds)
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be a positive number of examples per split, got {args.limit}")
    results = _results_dir(args)
    check_writable(results)
    if cfg.peft == "qlora":  # refuse before launching processes or loading anything
        from .adapters import check_supported
        from .routine import resolve_device

        check_supported(cfg, resolve_device(cfg).type)
    if args.processes is not None:
        return _launch_data_parallel(args)

    from . import distributed
    from .routine import run_cell

    failed = 0
    for seed in seeds:
        try:
            checkpoints = None
            if cfg.save_every_epoch:  # beside the record: <results>/<task>/<model>/<variant>/checkpoints/seed<k>
                from .record import record_path, variant_name

                variant = variant_name(cfg.recipe_overrides(), args.limit)
                checkpoints = record_path(results, task.name, model.name, variant, seed).parent / "checkpoints" / \
                    f"seed{seed}"
            record = run_cell(task, model, cfg, seed=seed, limit=args.limit, mirror=args.mirror,
                              allow_remote_code=args.trust_remote_code, use_cache=not args.no_cache,
                              checkpoint_dir=checkpoints)
        except RunFailed as exc:
            if not distributed.is_main():
                return 1
            from .record import failure_record

            path = write_record(results, failure_record(task, model, cfg, seed, args.limit, str(exc)))
            print(f"harness: run failed: {task.name}/{model.name} seed {seed}: {exc} (see {path})", file=sys.stderr)
            failed += 1
            continue
        if not distributed.is_main():  # rank 0 writes the record
            continue
        path = write_record(results, record)
        pub, clean = record.protocols["published"], record.protocols["clean"]
        text = f"published {100 * pub.test_accuracy:.2f}" if pub else "published –"
        text += f", clean {100 * clean.test_accuracy:.2f}" if clean else ", clean –"
        print(f"{task.name}/{model.name} seed {seed}: test accuracy {text} "
              f"({record.timings['total_s']:.0f}s) -> {path}")
    return 1 if failed else 0


def _complete_records(results: Path, variant: str | None):
    """Complete records (warnings for unreadable and failed ones) and the variants to show."""
    from .record import scan

    if not results.is_dir():
        raise UserError(f"no results folder '{results}': run `harness run` first or pass --results DIR")
    records, warnings = scan(results)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    for r in records:
        if r.status != "complete":
            print(f"warning: failed run not tabulated: {r.task['name']}/{r.model['name']} seed {r.seed} "
                  f"({r.variant}): {r.failure}", file=sys.stderr)
    records = [r for r in records if r.status == "complete"]
    variants = sorted({r.variant for r in records}, key=lambda v: (v != "default", v))
    if variant:
        if variant not in variants:
            raise UserError(f"no records of variant '{variant}' (found: {', '.join(variants) or 'none'})")
        variants = [variant]
    if not variants:
        raise UserError(f"no complete records under '{results}': run `harness run` first")
    return records, variants


def _table_axes():
    from .registry import load_models, load_tasks

    tasks, models = load_tasks(), load_models()
    return ([(t.name, t.display_name) for t in tasks.values()], [(m.name, m.display_name) for m in models.values()],
            {t.name: t.published for t in tasks.values()})


def _launch_data_parallel(args) -> int:
    """Re-run this very command under torch.distributed.run with N processes."""
    import subprocess

    from .distributed import launch_command

    if args.processes < 1:
        raise UserError(f"--processes must be at least 1, got {args.processes}")
    argv = list(sys.argv[1:]) if args.argv is None else list(args.argv)
    for flag in ("--processes", "--num-gpus"):
        while flag in argv:
            i = argv.index(flag)
            del argv[i:i + 2]
        argv = [a for a in argv if not a.startswith(flag + "=")]
    return subprocess.run(launch_command(args.processes, argv)).returncode


def cmd_table(args) -> int:
    from . import table as tb
    from .record import write_atomic

    results = _results_dir(args)
    records, variants = _complete_records(results, args.variant)
    if args.cost:
        return _cost_table(args, results, [r for r in records if r.variant in variants])
    task_cols, model_rows, published = _table_axes()
    parts, blobs = [], []
    for v in variants:
        table = tb.build_table([r for r in records if r.variant == v], args.protocol, task_cols, model_rows, v)
        cmp_rows = tb.published_rows(table, published)
        if args.format == "markdown":
            section = f"## Variant `{v}`, protocol `{args.protocol}`\n\n{tb.to_markdown(table)}\n\n{tb.legend(table)}\n"
            if cmp_rows:
                section += f"\n### Against the published table\n\n{tb.published_markdown(cmp_rows)}\n"
            parts.append(section)
        elif args.format == "csv":
            parts.append(tb.to_csv(table) if not parts else tb.to_csv(table).split("\n", 1)[1])
        elif args.format == "latex":
            parts.append(f"% variant {v}, protocol {args.protocol}\n{tb.to_latex(table)}\n")
        else:
            blobs.append(tb.to_json_obj(table, cmp_rows))
    if args.format == "json":
        import json

        text = json.dumps(blobs, indent=1, ensure_ascii=False) + "\n"
    else:
        text = "\n".join(parts)
    ext = {"markdown": "md", "csv": "csv", "latex": "tex", "json": "json"}[args.format]
    out = Path(args.output) if args.output else results / f"table-{args.protocol}.{ext}"
    sys.stdout.write(text)
    try:
        write_atomic(out, text)
    except OSError as exc:
        raise UserError(f"cannot write the table to '{out}': {exc.strerror}") from None
    print(f"(written to {out})", file=sys.stderr)
    return 0


def _cost_table(args, results: Path, records) -> int:
    import json

    from . import cost
    from .record import write_atomic

    rows = cost.cost_rows(records)
    render = {"markdown": cost.to_markdown, "csv": cost.to_csv,
              "json": lambda r: json.dumps(r, indent=1, ensure_ascii=False) + "\n"}
    if args.format not in render:
        raise UserError(f"the cost table comes as markdown, csv or json, not {args.format}")
    text = render[args.format](rows)
    ext = {"markdown": "md", "csv": "csv", "json": "json"}[args.format]
    out = Path(args.output) if args.output else results / f"table-cost.{ext}"
    sys.stdout.write(text)
    try:
        write_atomic(out, text)
    except OSError as exc:
        raise UserError(f"cannot write the table to '{out}': {exc.strerror}") from None
    print(f"(written to {out})", file=sys.stderr)
    return 0


def cmd_compare(args) -> int:
    from .compare import compare_models
    from .record import scan

    results = _results_dir(args)
    records, warnings = scan(results) if results.is_dir() else ([], [])
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(compare_models(records, args.task, args.models[0], args.models[1], args.protocol, args.variant))
    return 0


def _run_config_flags(args) -> list[str]:
    """The run-config flags the user gave, to pass through to each cell's `harness run`."""
    out = []
    for f in dataclasses.fields(RunConfig):
        value = getattr(args, f.name, None)
        if value is None:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + f.name.replace("_", "-"))
        else:
            out += [flag, str(value)]
    return out


def cmd_sweep(args) -> int:
    from . import sweep as sw
    from .record import check_writable, variant_name
    from .registry import load_models, load_tasks, resolve_model, resolve_task

    conf = sw.load_sweep_file(Path(args.config)) if args.config else {}
    for key, value in (conf.get("settings") or {}).items():  # settings: {learning_rate: 2e-5, ...}
        if not hasattr(RunConfig, key):
            raise UserError(f"{args.config}: unknown setting '{key}' (see harness run --help)")
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    tasks, models = load_tasks(), load_models()

    def names(flag, key, default):
        raw = flag if flag is not None else conf.get(key)
        if raw is None:
            return default
        items = raw.split(",") if isinstance(raw, str) else [str(x) for x in raw]
        return [x.strip() for x in items if x.strip()]

    task_names = [resolve_task(t, tasks).name for t in names(args.tasks, "tasks", list(tasks))]
    model_args = names(args.models, "models", list(models))
    seed_text = args.seed if args.seed is not None else (
        ",".join(map(str, conf["seeds"])) if isinstance(conf.get("seeds"), list) else None)
    seed_count = args.seeds if args.seeds is not None else (conf["seeds"] if isinstance(conf.get("seeds"), int)
                                                            else None)
    seeds = parse_seeds(seed_text, seed_count) if (seed_text or seed_count) else [DEFAULT_SEED]
    limit = args.limit if args.limit is not None else conf.get("limit")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise UserError(f"--limit must be a positive number of examples per split, got {limit}")
    mirror = args.mirror or conf.get("mirror")
    executor = args.executor or conf.get("executor") or "local"
    cfg = run_config_from(args)
    results = _results_dir(args)
    check_writable(results)

    run_args = _run_config_flags(args)
    run_args += (["--limit", str(limit)] if limit else []) + (["--mirror", str(mirror)] if mirror else [])
    run_args += ["--trust-remote-code"] if args.trust_remote_code else []
    spec = sw.SweepSpec(tasks=task_names, models=model_args, seeds=seeds, run_args=run_args)
    variant = variant_name(cfg.recipe_overrides(), limit)
    cells = sw.plan(spec, results, variant, lambda m: resolve_model(m, models), force=args.force)
    todo = [c for c in cells if not c.done]
    print(f"sweep: {len(cells)} cells ({len(task_names)} tasks x {len(model_args)} models x {len(seeds)} seeds), "
          f"variant {variant}: {len(cells) - len(todo)} done, {len(todo)} to run with the {executor} executor",
          file=sys.stderr)
    if args.dry_run:
        for c in cells:
            print(f"  {'done' if c.done else 'todo'}  {c.label}  -> {c.path}")
        if executor != "local" and todo:
            print("each job runs:")
            for line in sw.slurm_command_preview(todo, spec, results):
                print(f"  {line}")
        return 0

    log_dir = results / "logs"
    report = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if not todo:
        outcomes = []
    elif executor == "local":
        jobs = _jobs(args.jobs if args.jobs is not None else conf.get("jobs"), todo, models, mirror, cfg)
        outcomes = sw.run_local(todo, spec, results, jobs, log_dir, report)
    else:
        options = dict(conf.get("slurm") or {})
        options.update({k: v for k, v in (("partition", args.partition), ("gpus", args.gpus),
                                          ("time_min", args.time_min), ("mem", args.mem), ("cpus", args.cpus),
                                          ("array_parallelism", args.array_parallelism)) if v is not None})
        outcomes = sw.run_submitit(todo, spec, results, sw.make_submitit_executor(executor, log_dir, options), report)
    failed = [o for o in outcomes if not o.ok]
    if failed:
        print(f"sweep: {len(failed)} of {len(outcomes)} cells failed:", file=sys.stderr)
        for o in failed:
            print(f"  {o.cell.label}: {o.message} (log: {o.log})", file=sys.stderr)
    if any(c.done for c in cells) or any(o.ok for o in outcomes):
        table_args = argparse.Namespace(results=str(results), protocol="published", format="markdown",
                                        variant=variant, output=None)
        cmd_table(table_args)
    return 1 if failed else 0


def _jobs(value, cells, models, mirror, cfg) -> int:
    if value is None:
        return 1
    if str(value) != "auto":
        try:
            jobs = int(value)
        except ValueError:
            raise UserError(f"--jobs takes an integer or 'auto', got '{value}'") from None
        if jobs < 1:
            raise UserError(f"--jobs must be at least 1, got {jobs}")
        return jobs
    from .capacity import cells_per_gpu

    return cells_per_gpu([c.model_arg for c in cells], models, mirror, cfg)


def cmd_plot(args) -> int:
    from .plot import plot_table
    from .table import build_table

    results = _results_dir(args)
    records, variants = _complete_records(results, args.variant)
    task_cols, model_rows, published = _table_axes()
    variant = variants[0]
    table = build_table([r for r in records if r.variant == variant], args.protocol, task_cols, model_rows, variant)
    out = Path(args.output) if args.output else results / f"plot-{args.protocol}-{variant}.png"
    print(plot_table(table, published, out))
    return 0


COMMANDS = {"list": cmd_list, "run": cmd_run, "table": cmd_table, "compare": cmd_compare, "plot": cmd_plot,
            "sweep": cmd_sweep}


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    signal.signal(signal.SIGTERM, _on_sigterm)  # stop as cleanly on SIGTERM as on Ctrl-C
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = argv
        if not args.command:
            parser.print_help()
            return 2
        return COMMANDS[args.command](args)
    except UserError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted; no record was written for the run in progress", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
