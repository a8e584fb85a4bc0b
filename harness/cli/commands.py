"""The `harness` command line: list, run, sweep, tune, demo, prefetch, export; the commands that show records (table,
compare, plot, report) are in harness/cli/show.py. Each parses its flags and calls the Python API (harness/api/).
Heavy libraries (torch, transformers, datasets) load only inside the commands that need them, so `harness
--help` and `harness list` stay quick."""
from __future__ import annotations

import dataclasses
import os
import signal
import sys

from harness.cli.parser import build_parser
from harness.cli.show import cmd_compare, cmd_plot, cmd_report, cmd_table
from harness.config import RunConfig, parse_seeds
from harness.errors import UserError
from harness.record.protocols import DEFAULT_PROTOCOL


def _settings(args) -> dict:
    """The run settings as given on the command line (None where not given)."""
    return {f.name: getattr(args, f.name, None) for f in dataclasses.fields(RunConfig)}


# ------------------------------------------------------------------ commands

def cmd_list(args, argv) -> int:
    from harness import metrics
    from harness.hub import local
    from harness.registry.load import load_models, load_tasks
    from harness.registry.specs import SPLIT_ROLES

    tasks, models = load_tasks(), load_models()
    rows = [("task", "shown as", "kind", "examples", "main metric", "suites", "here", "source")]
    for t in tasks.values():
        val = "" if t.splits.get("validation") else f", validation carved ({t.validation_from_train['size']:,})" \
            if t.validation_from_train else ", no validation"
        kind = f"{t.label.num_classes} classes" if t.type == "classification" else \
            f"regression {t.label.range[0]:g}..{t.label.range[1]:g}"
        sizes = " / ".join(f"{t.sizes[r]:,}" if r in t.sizes else "–" for r in SPLIT_ROLES) if t.sizes else "?"
        rows.append((t.name, t.display_name, kind + val, sizes, metrics.METRICS[t.main].display,
                     ", ".join(t.suites), local.task_source(t, args.mirror),
                     f"{t.hub_id}{f' ({t.config})' if t.config else ''} {_pin(t.revision)}"))
    print("Tasks (examples: train / validation / test; here: where a run finds the data on this machine):")
    print("\n".join(aligned(rows)))
    rows = [("model", "shown in tables as", "family", "size", "here", "source")]
    for m in models.values():
        notes = [f"also {', '.join(m.aliases)}"] if m.aliases else []
        notes += [f"groups {', '.join(m.groups)}"] if m.groups else []
        notes += ["smoke test: a sweep runs it only when named"] if m.smoke else []
        pin = f" {_pin(m.revision)}" if m.hub_id else ""
        rows.append((m.name, m.display_name, m.family, _size(m.parameters), local.model_source(m, args.mirror),
                     m.source + pin + (f"  [{'; '.join(notes)}]" if notes else "")))
    print("\nModels (shown in tables as: the name a table's row gives it, the published table's where it has one; "
          "here: where a run finds the weights on this machine):")
    print("\n".join(aligned(rows)))
    return 0


def aligned(rows: list[tuple]) -> list[str]:
    """Rows of text cells as lines whose columns line up, each as wide as its longest cell (the last not padded)."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + str(r[-1])
            for r in rows]


def _size(parameters: int | None) -> str:
    if parameters is None:
        return "?"
    return f"{parameters / 1e9:.1f}B" if parameters >= 1e9 else f"{parameters / 1e6:.0f}M"


def _pin(revision: str | None) -> str:
    from harness.registry.parse import is_commit

    if is_commit(revision):
        return f"@ {revision[:12]} (pinned)"
    return f"@ {revision} (unpinned)" if revision else "(unpinned)"


def cmd_run(args, argv) -> int:
    import harness.api as api

    seeds = parse_seeds(args.seed, args.seeds)
    plan = api.plan_run(args.task, args.model, seeds=seeds, limit=args.limit, results=args.results,
                        mirror=args.mirror, family=args.family, force=args.force,
                        trust_remote_code=args.trust_remote_code, use_cache=not args.no_cache,
                        processes=args.processes, argv=argv, **_settings(args))
    if not plan.todo:
        return 0
    if args.processes is not None:
        return _launch_data_parallel(args.processes, argv, plan.todo)
    records = api.run_planned(plan)
    return 1 if any(r.status != "complete" for r in records) else 0


def _launch_data_parallel(processes: int, argv: list[str], seeds: list[int]) -> int:
    """Re-run this very command (argv, without the process count, for the seeds left to run) under
    torch.distributed.run."""
    import subprocess

    from harness.finetune.distributed import launch_command

    argv = list(argv)
    for flag in ("--processes", "--num-gpus", "--seed", "--seeds"):
        while flag in argv:
            i = argv.index(flag)
            del argv[i:i + 2]
        argv = [a for a in argv if not a.startswith(flag + "=")]
    argv += ["--seed", ",".join(map(str, seeds))]
    return subprocess.run(launch_command(processes, argv)).returncode


def cmd_sweep(args, argv) -> int:
    import harness.api as api
    from harness.grid import executors
    from harness.grid.plan import SLURM_FLAGS

    seeds = parse_seeds(args.seed, args.seeds) if args.seed is not None or args.seeds is not None else None
    search = _search_flags(args)
    if not args.tune and any(v not in (None, False) for v in search.values()):
        given = next(k for k, v in search.items() if v not in (None, False))
        raise UserError(f"--{given.replace('_', '-')} is a search flag: add --tune (one `harness tune` per cell)")
    result = api.sweep(args.tasks, args.models, seeds, config=args.config, limit=args.limit, mirror=args.mirror,
                       executor=args.executor, jobs=args.jobs, slurm={k: getattr(args, k) for k in SLURM_FLAGS},
                       results=args.results, force=args.force, trust_remote_code=args.trust_remote_code,
                       dry_run=args.dry_run, tune=search if args.tune else None, **_settings(args))
    plan = result.plan
    if args.dry_run:
        from harness.finetune.progress import duration

        rows = [("", "cell", "estimate here", "from", "record")]
        for c in plan.cells:
            e = result.estimates.get(c.label)
            time = "" if e is None else "?" if e.seconds is None else f"~{duration(e.seconds)}"
            basis = "" if e is None else e.basis
            if e is not None and e.needs_hub:
                basis = f"NEEDS THE HUB ({e.hub}): {', '.join(e.needs_hub)}; {basis}"
            rows.append(("done" if c.done else "todo", c.label, time, basis, str(c.path)))
        print("\n".join(aligned([(*r[:3], r[4], r[3]) for r in rows])))
        if plan.executor != "local" and plan.todo:
            print("each job runs:")
            for line in executors.slurm_command_preview(plan.todo, plan.spec, api.results_folder(args.results)):
                print(f"  {line}")
        return 0
    if result.failed:
        print(f"sweep: {len(result.failed)} of {len(result.outcomes)} cells failed:", file=sys.stderr)
        for o in result.failed:
            print(f"  {o.cell.label}: {o.message} (log: {o.log})", file=sys.stderr)
    if any(c.done for c in plan.cells) or any(o.ok for o in result.outcomes):
        from harness.registry.load import load_tasks

        tasks = load_tasks()
        suite = "ttl" if all("ttl" in tasks[t].suites for t in plan.spec.tasks) else "all"  # every task swept
        sys.stdout.write(api.table(args.results, variant=plan.variant, group="all", suite=suite, write=True,
                                   protocol="tuned" if args.tune else DEFAULT_PROTOCOL))
    return 1 if result.failed else 0


def _search_flags(args) -> dict:
    """The search's flags (harness tune, harness sweep --tune) as the API takes them."""
    return dict(grid=args.grid, search_seeds=args.search_seeds, sampler=args.sampler, trials=args.trials,
                prune=args.prune, storage=args.storage)


def cmd_tune(args, argv) -> int:
    import harness.api as api
    from harness.grid.plan import SLURM_FLAGS
    from harness.outputs.search_text import summary

    seeds = parse_seeds(args.seed, args.seeds) if args.seed is not None or args.seeds is not None else None
    result = api.tune(args.task, args.model, seeds=seeds, jobs=args.jobs, executor=args.executor,
                      slurm={k: getattr(args, k) for k in SLURM_FLAGS}, limit=args.limit, results=args.results,
                      mirror=args.mirror, family=args.family, trust_remote_code=args.trust_remote_code,
                      use_cache=not args.no_cache, **_search_flags(args), **_settings(args))
    print(summary(result.search, result.records))
    return 1 if any(r.status != "complete" for r in result.records) else 0


def cmd_demo(args, argv) -> int:
    from harness.cli.demo import DemoSettings, run

    given = {k: v for k, v in (("limit", args.limit), ("epochs", args.epochs), ("results", args.results))
             if v is not None}
    return run(DemoSettings(**given), main)


def cmd_prefetch(args, argv) -> int:
    from harness.hub.mirror import MIRROR_ENV
    from harness.hub.prefetch import command

    return command(args.tasks, args.models, args.mirror or os.environ.get(MIRROR_ENV))


def cmd_export(args, argv) -> int:
    import harness.api as api

    api.export(args.results, format=args.format, model=args.model, protocol=args.protocol, variant=args.variant,
               output=args.output, push=args.push)
    return 0


COMMANDS = {"list": cmd_list, "run": cmd_run, "table": cmd_table, "compare": cmd_compare, "plot": cmd_plot,
            "sweep": cmd_sweep, "tune": cmd_tune, "demo": cmd_demo, "prefetch": cmd_prefetch, "export": cmd_export,
            "report": cmd_report}


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    signal.signal(signal.SIGTERM, _on_sigterm)  # stop as cleanly on SIGTERM as on Ctrl-C
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return 2
        return COMMANDS[args.command](args, argv)
    except UserError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted; no record was written for the run in progress", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
