"""Where a number came from: device, package versions, the harness's git commit."""
from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

from harness import __version__
from harness.config import eval_batch_size

PACKAGES = ("torch", "transformers", "datasets", "tokenizers", "huggingface-hub", "numpy", "accelerate")


def package_versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"cpu: {line.split(':', 1)[1].strip()} ({torch.get_num_threads()} threads)"
    except OSError:
        pass
    return f"cpu: {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def harness_git() -> dict:
    src = Path(__file__).resolve().parents[2]  # the checkout holding harness/
    info = {"version": __version__, "git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5)
        if commit.returncode == 0:
            info["git_commit"] = commit.stdout.strip()
            status = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=5)
            info["git_dirty"] = bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return info


# ------------------------------------------------------------------ what a record needs to be redone

def task_definition(task, max_length_used: int | None) -> dict:
    """The task as the run used it: everything that changes the examples, the labels or the scores.
    Display-only fields (display_name, order, published, sizes) are left out: editing them changes no number."""
    return {
        "type": "single-label classification" if task.type == "classification" else task.type,
        "hub_id": task.hub_id, "config": task.config, "revision": task.revision,
        "splits": dict(task.splits),
        "templates": {"decoder": task.decoder_template, "encoder": list(task.encoder_templates)},
        "label": {"column": task.label.column, "names": list(task.label.names),
                  "map": None if task.label.mapping is None else {str(k): v for k, v in task.label.mapping.items()},
                  **({"range": list(task.label.range)} if task.label.range is not None else {})},
        "max_length": task.max_length, "max_length_used": max_length_used,
        "validation_from_train": task.validation_from_train,
        "metrics": list(task.metrics), "main": task.main,
    }


def definition_fingerprint(definition: dict | None) -> str | None:
    """A short hash of a task definition (its canonical JSON), to tell two definitions apart at a glance.
    The list of metrics computed is left out: adding one changes no score (the main metric, which picks the
    epoch, is in), so a record that computed MCC too pools with an older one that did not."""
    if definition is None:
        return None
    import hashlib
    import json

    scored = {k: v for k, v in definition.items() if k != "metrics"}
    return "sha256:" + hashlib.sha256(json.dumps(scored, sort_keys=True).encode()).hexdigest()[:16]


def model_provenance(spec, where: str, commit: str | None) -> dict:
    """What identifies the weights of a run: the registry's revision, the hub commit that was loaded
    (config._commit_hash), the package and its version for package models, and the weight files' fingerprint."""
    from harness.record.fingerprint import weights_fingerprint
    from harness.registry.parse import is_commit

    package = version = None
    if spec.package:
        package, version = package_distribution(spec.package)
    folder = Path(where) if Path(where).is_dir() else hub_snapshot(spec.hub_id, commit)
    return {"revision_requested": spec.revision, "revision_resolved": commit if is_commit(commit) else None,
            "package": package, "package_version": version,
            "weights_fingerprint": weights_fingerprint(folder) if folder is not None else None}


def package_distribution(module: str) -> tuple[str, str | None]:
    """(distribution name, version) of the installed package that provides `module`."""
    dists = metadata.packages_distributions().get(module.split(".")[0]) or [module]
    try:
        return dists[0], metadata.version(dists[0])
    except metadata.PackageNotFoundError:
        return dists[0], None


def hub_snapshot(hub_id: str | None, commit: str | None) -> Path | None:
    """The local hub-cache folder of a commit that was loaded from the hub (None where not cached)."""
    if not hub_id or not commit:
        return None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(hub_id, "config.json", revision=commit)
    return Path(found).parent if isinstance(found, str) else None


def resolved_settings(cfg, *, device, precision: str, attn_implementation: str | None, processes: int) -> dict:
    """The run config with every 'auto' or 0-means-default replaced by what actually ran."""
    import dataclasses

    import torch

    settings = dataclasses.asdict(cfg)
    settings.update(device=str(device), precision=precision, threads=torch.get_num_threads(),
                    micro_batch_size=cfg.micro_batch_size or cfg.batch_size,
                    eval_batch_size=eval_batch_size(cfg, device),
                    attn_implementation=attn_implementation or cfg.attn_implementation, processes=processes)
    return settings


def command_line(argv: list[str]) -> list[str]:
    """The command as typed after the program name, the program written as `harness`; secrets masked, the
    package's files named by package and the home folder as ~ (redact.portable_path)."""
    from harness.redact import command, scrub

    return scrub(command(["harness", *argv]))
