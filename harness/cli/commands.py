"""The `harness` command line: list, run, sweep, demo, prefetch, export; the commands that show records (table,
compare, plot, report) are in harness/cli/show.py. Heavy libraries (torch, transformers, datasets) are
imported only inside the commands that need them, so `harness --help` and `harness list` stay quick."""
from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
from pathlib import Path

from harness.cli.parser import build_parser
from harness.cli.show import cmd_compare, cmd_plot, cmd_report, cmd_table, results_dir
from harness.config import RunConfig, check_limit, parse_seeds, run_config_from
from harness.errors import RunFailed, UserError
from harness.record.protocols import DEFAULT_PROTOCOL


def _settings(args) -> dict:
    """The run settings as given on the command line (None where not given)."""
    return {f.name: getattr(args, f.name, None) for f in dataclasses.fields(RunConfig)}


# ------------------------------------------------------------------ commands

def cmd_list(args, argv) -> int:
    from harness.registry.load import load_models, load_tasks

    tasks, models = load_tasks(), load_models()
    print("Tasks:")
    for t in tasks.values():
        val = "validation" if t.splits.get("validation") else f"validation carved ({t.validation_from_train['size']})" \
            if t.validation_from_train else "no validation"
        kind = f"{t.label.num_classes} classes" if t.type == "classification" else \
            f"regression {t.label.range[0]:g}..{t.label.range[1]:g}"
        print(f"  {t.name:<15} {t.display_name:<15} {t.hub_id} {_pin(t.revision)}  [{kind}, {val}; main {t.main}; "
              f"suites {', '.join(t.suites)}]")
    print("Models:")
    for m in models.values():
        alias = f" (also {', '.join(m.aliases)})" if m.aliases else ""
        alias += f"  [groups: {', '.join(m.groups)}]" if m.groups else ""
        alias += "  [smoke test: a sweep runs it only when named]" if m.smoke else ""
        pin = f" {_pin(m.revision)}" if m.hub_id else ""
        print(f"  {m.name:<16} {m.display_name:<20} {m.family:<8} {m.source}{pin}{alias}")
    return 0


def _pin(revision: str | None) -> str:
    from harness.registry.parse import is_commit

    if is_commit(revision):
        return f"@ {revision[:12]} (pinned)"
    return f"@ {revision} (unpinned)" if revision else "(unpinned)"


def cmd_run(args, argv) -> int:
    from harness.hub.reachability import repos_needed, require_hub
    from harness.record.store import check_writable
    from harness.registry.load import load_models, load_tasks, resolve_model, resolve_task

    tasks, models = load_tasks(), load_models()
    task = resolve_task(args.task, tasks)
    model = resolve_model(args.model, models, args.family)
    cfg = run_config_from(_settings(args))
    seeds = parse_seeds(args.seed, args.seeds)
    check_limit(args.limit)
    if args.processes is not None and args.processes < 1:
        raise UserError(f"--processes must be at least 1, got {args.processes}")
    results = results_dir(args)
    check_writable(results)
    seeds = _seeds_to_run(task, model, cfg, seeds, args, results)
    if not seeds:
        return 0
    _check_before_loading(cfg, args.processes)
    require_hub(repos_needed(task, model, args.mirror))  # an unreachable hub: one line now, not 50 s of retries
    if args.processes is not None:
        return _launch_data_parallel(args.processes, argv, seeds)
    return 1 if sum(not _run_seed(task, model, cfg, seed, args, results, argv) for seed in seeds) else 0


def _seeds_to_run(task, model, cfg, seeds: list[int], args, results: Path) -> list[int]:
    """The seeds without a complete record (all of them with --force), saying which are skipped."""
    from harness.record.store import is_complete, record_path
    from harness.record.variants import variant_of

    if args.force:
        return seeds
    variant = variant_of(cfg, args.limit)
    done = [s for s in seeds if is_complete(record_path(results, task.name, model.name, variant, s))]
    if done:
        where = record_path(results, task.name, model.name, variant, done[0]).parent
        print(f"harness: skipped {task.name}/{model.name} seed{'s' if len(done) > 1 else ''} "
              f"{', '.join(map(str, done))}: complete record in "
              f"{where} (--force reruns)", file=sys.stderr)
    return [s for s in seeds if s not in done]


def _check_before_loading(cfg, processes: int | None) -> None:
    """What this machine or launch cannot run stops here, before processes start or anything loads."""
    from harness.finetune import distributed
    from harness.model import adapters
    from harness.model.loading import resolve_device

    adapters.check_supported(cfg, resolve_device(cfg).type)  # QLoRA without CUDA
    if cfg.sharding == "fsdp" and (processes or distributed.world_size()) < 2:
        raise UserError("--sharding fsdp shards the model over several processes: add --processes N (N >= 2)")


def _run_seed(task, model, cfg, seed: int, args, results: Path, argv: list[str]) -> bool:
    """One seed of `harness run`: train, write the record (rank 0), print the headline. False if it failed."""
    from harness.finetune import distributed
    from harness.finetune.cell import run_cell
    from harness.metrics import shown
    from harness.record.build import failure_record
    from harness.record.provenance import command_line
    from harness.record.store import checkpoint_dir
    from harness.record.variants import variant_of

    checkpoints = checkpoint_dir(results, task.name, model.name, variant_of(cfg, args.limit), seed) \
        if cfg.save_every_epoch else None
    try:
        record = run_cell(task, model, cfg, seed=seed, limit=args.limit, mirror=args.mirror,
                          allow_remote_code=args.trust_remote_code, use_cache=not args.no_cache,
                          checkpoint_dir=checkpoints)
    except RunFailed as exc:
        if distributed.is_main():
            failed = failure_record(task, model, cfg, seed, args.limit, str(exc))
            failed.command_line = command_line(argv)
            path = _write_record(results, failed)
            print(f"harness: run failed: {task.name}/{model.name} seed {seed}: {exc} (see {path})", file=sys.stderr)
        return False
    if distributed.is_main():  # rank 0 writes the record
        record.command_line = command_line(argv)
        path = _write_record(results, record)
        pub, clean = record.protocols["published"], record.protocols["clean"]
        text = f"published {shown(task.main, pub.main_score):.2f}" if pub else "published –"
        text += f", clean {shown(task.main, clean.main_score):.2f}" if clean else ", clean –"
        print(f"{task.name}/{model.name} seed {seed}: test {task.main} {text} "
              f"({record.timings.total_s:.0f}s) -> {path}")
    return True


def _write_record(results: Path, record) -> Path:
    from harness.record.store import write_record

    try:
        return write_record(results, record)
    except OSError as exc:  # the folder went away, or the disk filled, during the run
        raise UserError(f"cannot write the record of {record.task.name}/{record.model.name} seed {record.seed} "
                        f"under '{results}': {exc.strerror or exc}") from None


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
    from harness.grid import executors as ex
    from harness.grid import plan as sw
    from harness.registry.load import load_models, load_tasks

    results = results_dir(args)
    models, tasks = load_models(), load_tasks()
    plan = sw.resolve(args, _settings(args), tasks, models, results)
    todo = plan.todo
    print(f"sweep: {len(plan.cells)} cells ({len(plan.spec.tasks)} tasks x {len(plan.spec.models)} models x "
          f"{len(plan.spec.seeds)} seeds), variant {plan.variant}: {len(plan.cells) - len(todo)} done, "
          f"{len(todo)} to run with the {plan.executor} executor", file=sys.stderr)
    if args.dry_run:
        for c in plan.cells:
            print(f"  {'done' if c.done else 'todo'}  {c.label}  -> {c.path}")
        if plan.executor != "local" and todo:
            print("each job runs:")
            for line in ex.slurm_command_preview(todo, plan.spec, results):
                print(f"  {line}")
        return 0

    report = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    log_dir = results / "logs"
    if not todo:
        outcomes = []
    elif plan.executor == "local":
        jobs = sw.jobs_for(plan.jobs, todo, models, plan.mirror, plan.cfg)
        outcomes = ex.run_local(todo, plan.spec, results, jobs, log_dir, report)
    else:
        executor = ex.make_submitit_executor(plan.executor, log_dir, plan.slurm)
        outcomes = ex.run_submitit(todo, plan.spec, results, executor, report)
    failed = [o for o in outcomes if not o.ok]
    if failed:
        print(f"sweep: {len(failed)} of {len(outcomes)} cells failed:", file=sys.stderr)
        for o in failed:
            print(f"  {o.cell.label}: {o.message} (log: {o.log})", file=sys.stderr)
    if any(c.done for c in plan.cells) or any(o.ok for o in outcomes):
        suite = "ttl" if all("ttl" in tasks[t].suites for t in plan.spec.tasks) else "all"  # every task swept
        cmd_table(argparse.Namespace(results=str(results), protocol=DEFAULT_PROTOCOL, format="markdown",
                                     variant=plan.variant, output=None, group="all", suite=suite), argv)
    return 1 if failed else 0


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
    from harness.cli.export import run

    return run(args, results_dir(args))


COMMANDS = {"list": cmd_list, "run": cmd_run, "table": cmd_table, "compare": cmd_compare, "plot": cmd_plot,
            "sweep": cmd_sweep, "demo": cmd_demo, "prefetch": cmd_prefetch, "export": cmd_export, "report": cmd_report}


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
