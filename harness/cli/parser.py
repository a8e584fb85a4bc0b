"""The `harness` argument parser: every subcommand and flag; run settings come from RunConfig."""
from __future__ import annotations

import argparse
import dataclasses
import difflib

from harness.config import RunConfig, flag_of, help_of
from harness.errors import UserError
from harness.record.protocols import DEFAULT_PROTOCOL, PROTOCOLS

RESULTS_HELP = "results folder (default ./results or $HARNESS_RESULTS)"
SUITE_DEFAULT = ("(default ttl; where no ttl task has records, the suite the records are in, with a line on stderr "
                 "saying so)")
GROUP_HELP = ("the model group whose rows to show: its models, then models in no group (default ttl, the "
              "TeenyTinyLlama table's four; 'all': every model; groups: harness list)")


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line (with a suggestion for a misspelled flag) and exit code 2."""

    def error(self, message):
        if message.startswith("unrecognized arguments:"):
            bad = message.split(":", 1)[1].split()[0]
            flags = [s for a in self._actions for s in a.option_strings]
            close = difflib.get_close_matches(bad.split("=")[0], flags, n=1)
            if close:
                message += f"; did you mean {close[0]}?"
        raise UserError(f"{message} (see {self.prog} --help)")

    def parse_args(self, args=None, namespace=None):
        # argparse reports a subcommand's unknown flag from the top parser ("see harness --help");
        # report it from the subcommand's parser, so the hint is `harness run --help`.
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            sub = self._subparsers_by_name().get(getattr(parsed, "command", None), self)
            sub.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def _subparsers_by_name(self) -> dict:
        return {name: sub for action in self._actions if isinstance(action, argparse._SubParsersAction)
                for name, sub in action.choices.items()}


def _add_run_config_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("hyperparameters and speed knobs (defaults: the seed recipe, fast path)")
    for f in dataclasses.fields(RunConfig):
        text = f"{help_of(f)} (default: {f.default})"
        if f.type in ("bool", bool):
            g.add_argument(flag_of(f.name), dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                           help=text)
        else:
            kind = {"float": float, "int": int, "str": str}[f.type if isinstance(f.type, str) else f.type.__name__]
            g.add_argument(flag_of(f.name), dest=f.name, type=kind, default=None,
                           metavar=f.name.split("_")[-1].upper(), help=text)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="harness", description="Fine-tune registered models on Portuguese classification tasks, "
                                                 "record every run, tabulate.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("list", help="the registered tasks and models: sizes, hub ids, and whether each is here "
                                    "(HF cache, mirror, package) or needs the hub")
    p.add_argument("--mirror", help="a local hub mirror to look in (or $HARNESS_MIRROR)")

    p = sub.add_parser("demo", help="fine-tune MiniLM-L6 on the ASSIN PT-BR similarity data shipped in the package, "
                                    "with no network, in a few minutes on CPU; ends with the table, the plot, the "
                                    "next commands and whether the model beat the trivial baseline")
    p.add_argument("--limit", type=int, help="a stratified subset of N pairs per split (default: all)")
    p.add_argument("--epochs", type=int, help="(default 2; the recipe has 3)")
    p.add_argument("--results", help="results folder (default ./results-demo, apart from real results)")

    p = sub.add_parser("prefetch", help="download datasets and models into a mirror folder, with a lock file, "
                                        "for runs without network (--mirror DIR)")
    p.add_argument("--tasks", help="comma-separated (default: every registered task)")
    p.add_argument("--models", help="comma-separated (default: every registered model)")
    p.add_argument("--mirror", help="the mirror folder to fill (or $HARNESS_MIRROR); created if missing")

    _add_run(sub)
    _add_sweep(sub)
    _add_tune(sub)

    _add_table(sub)
    _add_plot_and_report(sub)
    _add_export(sub)
    _add_compare(sub)
    return parser


def _add_run(sub) -> None:
    """harness run: one cell, one record per seed."""
    p = sub.add_parser("run", help="fine-tune one model on one task (one record per seed)")
    _add_cell_flags(p, "a registered task (see harness list)", "seed(s), comma-separated (default 42)",
                    "run N seeds: 42, 43, ...")
    p.add_argument("--trust-remote-code", action="store_true", help="allow a model entry that asks for it to run "
                                                                    "code from its repository")
    p.add_argument("--no-cache", action="store_true", help="tokenize again, do not read or write the cache")
    p.add_argument("--force", action="store_true", help="rerun seeds whose complete record exists (skipped otherwise)")
    p.add_argument("--processes", "--num-gpus", type=int, dest="processes",
                   help="train the cell data-parallel on N processes, one per GPU (gloo on CPU); the same as "
                        "`torchrun --nproc_per_node N -m harness run ...` or `accelerate launch -m harness run ...`; "
                        "with --sharding fsdp the model is sharded over them instead of copied")
    _add_run_config_flags(p)


def _add_cell_flags(p, task_help: str, seed_help: str, seeds_help: str) -> None:
    """One (task, model) cell: harness run and harness tune."""
    p.add_argument("--task", required=True, help=task_help)
    p.add_argument("--model", required=True, help="a registered model, or a local model folder")
    p.add_argument("--family", choices=["decoder", "encoder"], help="for a local folder: override the detected family")
    p.add_argument("--seed", help=seed_help)
    p.add_argument("--seeds", type=int, help=seeds_help)
    p.add_argument("--limit", type=int, help="a seeded, class-stratified subset of N examples per split (smoke runs)")
    p.add_argument("--mirror", help="a local hub mirror: DIR/<hub id>/ is tried before the hub (or $HARNESS_MIRROR)")
    _results_flag(p)


def _add_sweep(sub) -> None:
    """harness sweep: the grid, resumable."""
    p = sub.add_parser("sweep",
                       help="the grid tasks x models x seeds, skipping cells already done; ends with the table")
    p.add_argument("--config", help="a sweep YAML file (tasks, models, seeds, limit, mirror, executor, jobs, settings, "
                                    "slurm); flags given here win")
    p.add_argument("--tasks", help="comma-separated (default: every registered task)")
    p.add_argument("--models", help="comma-separated names or folders (default: the models of the TTL table's "
                                    "group, ttl, and the models in no group, but not the smoke-test ones)")
    p.add_argument("--seed", help="seed(s), comma-separated")
    p.add_argument("--seeds", type=int, help="N seeds: 42, 43, ... (default 1)")
    p.add_argument("--limit", type=int, help="examples per split (smoke sweeps)")
    p.add_argument("--mirror", help="a local hub mirror (or $HARNESS_MIRROR)")
    _results_flag(p)
    p.add_argument("--force", action="store_true", help="rerun cells whose record exists")
    p.add_argument("--dry-run", action="store_true", help="show the plan, run nothing")
    p.add_argument("--executor", choices=["local", "slurm", "submitit-local"], help="(default local)")
    p.add_argument("--jobs", help="local: cells at once (an integer, or 'auto' from free GPU memory; default 1)")
    _add_slurm_flags(p)
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--tune", action="store_true", help="one `harness tune` per (task, model) instead of one `harness "
                                                       "run` per seed: the search flags below apply to each")
    _add_search_flags(p)
    _add_run_config_flags(p)


def _add_slurm_flags(p) -> None:
    p.add_argument("--partition", help="slurm partition")
    p.add_argument("--gpus", type=int, help="slurm: GPUs per job (default 1)")
    p.add_argument("--time", type=int, dest="time_min", help="slurm: minutes per job (default 240)")
    p.add_argument("--mem", help="slurm: memory per job, e.g. 32G")
    p.add_argument("--cpus", type=int, help="slurm: CPUs per job (default 8)")
    p.add_argument("--array-parallelism", type=int, help="slurm: jobs of the array running at once")


def _add_search_flags(p) -> None:
    """What `harness tune` searches; `harness sweep --tune` passes them to each cell's search."""
    g = p.add_argument_group("the search (harness tune)")
    g.add_argument("--grid", action="append", metavar="FIELD=V1,V2",
                   help="values to search for a recipe field (lr short for learning_rate; epochs, batch_size, ...); "
                        "repeat for more fields (default: learning rates 1e-5,2e-5,4e-5,8e-5 for full fine-tuning, "
                        "1e-4,2e-4,4e-4,8e-4 for LoRA/QLoRA)")
    g.add_argument("--search-seeds", type=int,
                   help="seeds per candidate, 1000, 1001, ... (default 1), apart from the final seeds")
    g.add_argument("--sampler", choices=["grid", "tpe"],
                   help="grid: every point (default, reproducible); tpe: Optuna's TPE draws --trials points")
    g.add_argument("--trials", type=int, help="with --sampler tpe: how many candidates to draw")
    g.add_argument("--prune", action="store_true",
                   help="stop a candidate whose validation score after an epoch is worse than the median of the "
                        "candidates before it (Optuna's MedianPruner); a pruned candidate is never chosen")
    g.add_argument("--storage", help="an Optuna storage URL for the study (e.g. postgresql://...; default: a journal "
                                     "file beside the search record)")


def _add_tune(sub) -> None:
    """harness tune: one cell at its own best setting, searched on validation."""
    p = sub.add_parser("tune", help="search one model's best learning rate (or other recipe fields) on one task on "
                                    "validation, then run it with the final seeds (the tuned protocol)")
    _add_cell_flags(p, "a registered task with a validation split (or a carved one)",
                    "final seed(s), comma-separated", "final seeds: N from 42 (default 3)")
    p.add_argument("--jobs", type=int, default=1, help="workers on one study (default 1): local processes, or jobs "
                                                       "with --executor slurm|submitit-local")
    p.add_argument("--executor", choices=["local", "slurm", "submitit-local"], default="local")
    _add_slurm_flags(p)
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--no-cache", action="store_true", help="tokenize again, do not read or write the cache")
    _add_search_flags(p)
    _add_run_config_flags(p)


def _add_table(sub) -> None:
    """harness table: the comparison table (or the cost table)."""
    p = sub.add_parser("table", help="the comparison table from every record")
    _results_flag(p)
    p.add_argument("--protocol", choices=PROTOCOLS, default=DEFAULT_PROTOCOL,
                   help=f"(default {DEFAULT_PROTOCOL}: the epoch picked on validation)")
    p.add_argument("--format", choices=["markdown", "csv", "latex", "json"], default="markdown",
                   help="(default markdown)")
    p.add_argument("--variant", help="only this variant (default: every variant found, 'default' first)")
    p.add_argument("--output", help="also write here (default: <results>/table-<protocol>-<variant or "
                                    "all-variants>.<ext>)")
    p.add_argument("--group", help=GROUP_HELP)
    p.add_argument("--cost", action="store_true", help="the cost table instead: method, trainable and total "
                                                       "parameters, peak memory, training time, energy and "
                                                       "emissions per task, model and variant (markdown, csv, json)")
    p.add_argument("--suite", help="which tasks: a suite (ttl: the published table's five tasks; assin: the ASSIN "
                                   f"tasks; see harness list) or 'all' {SUITE_DEFAULT}")
    p.add_argument("--metric", help="show this recorded metric in every column (default: each task's main metric; "
                                    "tasks that do not record it are left out)")
    p.add_argument("--normalized", action="store_true", help="100 x (score - baseline) / (max - baseline) per task, "
                                                             "so an Average across different metrics means something")


def _add_plot_and_report(sub) -> None:
    """harness plot (a PNG) and harness report (an HTML page)."""
    p = sub.add_parser("plot", help="a PNG: per task, one dot per model with 95%% CI whiskers, published as diamonds")
    _results_flag(p)
    p.add_argument("--protocol", choices=PROTOCOLS, default=DEFAULT_PROTOCOL,
                   help=f"(default {DEFAULT_PROTOCOL}: the epoch picked on validation)")
    p.add_argument("--metric", help="one recorded metric in every panel (default: each task's main metric; tasks "
                                    "that do not record it are left out)")
    p.add_argument("--variant", help="which variant (default: 'default' if present, else the first found)")
    p.add_argument("--output", help="PNG path (default: <results>/plot-<protocol>-<variant>.png, "
                                    "-<metric> added for a metric other than accuracy)")
    p.add_argument("--group", help=GROUP_HELP)
    p.add_argument("--suite", help=f"which tasks: a suite (see harness list) or 'all' {SUITE_DEFAULT}")

    p = sub.add_parser("report", help="one self-contained HTML page: sortable tables, figures, per-cell details")
    _results_flag(p)
    p.add_argument("--output", help="HTML path (default: <results>/report.html)")
    p.add_argument("--group", help=GROUP_HELP)
    p.add_argument("--suite", help=f"which tasks: a suite (see harness list) or 'all' {SUITE_DEFAULT}")


def _add_export(sub) -> None:
    """harness export: the Hub's formats, or JSON lines."""
    p = sub.add_parser("export", help="results in the Hub's formats (model-index, .eval_results) or as JSON lines")
    p.add_argument("--format", required=True, choices=["model-index", "eval-results", "jsonl"],
                   help="model-index: model card metadata; eval-results: .eval_results/<task>.yaml files; "
                        "jsonl: one line per record and metric with a 95%% interval")
    p.add_argument("--model", help="the model to export (required for model-index and eval-results)")
    p.add_argument("--protocol", choices=PROTOCOLS, default=DEFAULT_PROTOCOL,
                   help=f"(default {DEFAULT_PROTOCOL}: the epoch picked on validation, as every command)")
    p.add_argument("--variant", help="which variant (default: 'default' if present, else the first found)")
    _results_flag(p)
    p.add_argument("--output", help="file (folder for eval-results) to write (default: under <results>/export/)")
    p.add_argument("--push", metavar="REPO", help="also upload to this Hub repository (a model repo; a dataset repo "
                                                  "for jsonl), with the token in $HF_TOKEN; nothing is uploaded "
                                                  "without it")


def _add_compare(sub) -> None:
    """harness compare: two models on one task."""
    p = sub.add_parser("compare", help="is A better than B on one task? seed-aware test, and McNemar per checkpoint")
    p.add_argument("--task", required=True)
    p.add_argument("--models", nargs=2, required=True, metavar=("A", "B"))
    p.add_argument("--protocol", choices=PROTOCOLS, default=DEFAULT_PROTOCOL,
                   help=f"(default {DEFAULT_PROTOCOL}: the epoch picked on validation)")
    p.add_argument("--variant", help="only this variant (default: every variant both models have, 'default' first)")
    p.add_argument("--metric", help="the metric tested (default: the task's main metric, which picked the epochs)")
    _results_flag(p)


def _results_flag(p) -> None:
    p.add_argument("--results", help=RESULTS_HELP)
