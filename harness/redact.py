"""Keeping secrets, and the machine's paths, out of what the harness writes: records and exports pass
through scrub(); what is shared (exports, pushes, tables, the report) names paths through shared_path().

Removed wherever they appear in a string: the values of environment variables whose names say
they are secret (HF_TOKEN, *_PASSWORD, *_SECRET, *API_KEY, ...), the Hugging Face token
huggingface_hub would use, anything shaped like a Hugging Face token, passwords in URLs, and the
paths of the usual credential files in the user's home (the hub token file, ~/.netrc, ~/.ssh, ...).

Paths: a record stays on this machine, so it keeps its paths, but names a file of an installed package (the
harness's own data included) by package (package:<module>/...) and the home folder as ~ (portable_path). What
is shared names no path of the machine at all: a package's file by package, any other folder by its name
(shared_path), a local model by its folder's name and its weights' content hash (shared_source).
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path

MASK = "<redacted>"
SECRET_PATH_MASK = "<secret path>"
_SECRET_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|API_?KEY|ACCESS_?KEY|CREDENTIAL", re.IGNORECASE)
_MIN_SECRET = 8  # shorter values ("1", "true") would blank out ordinary text
_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{20,}")
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s:]+:[^/@\s]+@")
_HOME_SECRETS = (".netrc", ".ssh", ".aws", ".git-credentials", ".pypirc", ".docker/config.json",
                 ".config/gcloud", ".kaggle")


def secret_values() -> list[str]:
    values = {v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= _MIN_SECRET}
    try:
        from huggingface_hub import get_token

        token = get_token()
        if token and len(token) >= _MIN_SECRET:
            values.add(token)
    except Exception:  # no huggingface_hub, or an unreadable token file: nothing more to hide
        pass
    return sorted(values, key=len, reverse=True)  # longest first: a secret containing another goes whole


def secret_paths() -> list[str]:
    home = Path.home()
    paths = {str(home / p) for p in _HOME_SECRETS}
    try:
        from huggingface_hub import constants

        paths |= {str(constants.HF_TOKEN_PATH), str(constants.HF_STORED_TOKENS_PATH)}
    except Exception:
        pass
    return sorted(paths, key=len, reverse=True)


def scrub(obj, values: list[str] | None = None, paths: list[str] | None = None):
    """obj (dicts, lists, strings, numbers) with every secret in every string (and key) masked."""
    values = secret_values() if values is None else values
    paths = secret_paths() if paths is None else paths
    if isinstance(obj, str):
        return _scrub_text(obj, values, paths)
    if isinstance(obj, dict):
        return {scrub(k, values, paths): scrub(v, values, paths) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(scrub(v, values, paths) for v in obj)
    return obj


def _scrub_text(text: str, values: list[str], paths: list[str]) -> str:
    for v in values:
        text = text.replace(v, MASK)
    for p in paths:
        text = text.replace(p, SECRET_PATH_MASK)
    text = _HF_TOKEN.sub("hf_" + MASK, text)
    return _URL_CREDENTIALS.sub(MASK + "@", text)


# ------------------------------------------------------------------ the machine's paths

PACKAGE = "package:"


@functools.cache
def _package_roots() -> tuple[tuple[Path, str], ...]:
    """(folder, prefix) of where installed packages live, the longest first: a path under one is
    package:<module>/...; the harness's own folder (a source checkout too) is package:harness/..."""
    import site
    import sysconfig

    import harness

    roots = {Path(harness.__file__).resolve().parent: PACKAGE + "harness/"}
    folders = [sysconfig.get_paths().get(k) for k in ("purelib", "platlib")]
    try:
        folders += [*site.getsitepackages(), site.getusersitepackages()]
    except AttributeError:  # an embedded interpreter without them
        pass
    for folder in filter(None, folders):
        roots.setdefault(Path(folder).resolve(), PACKAGE)
    return tuple(sorted(roots.items(), key=lambda kv: -len(str(kv[0]))))


def _is_path(text: str) -> bool:
    return text.startswith(("/", "~")) or os.path.isabs(text)


def _package_form(path: Path) -> str | None:
    for root, prefix in _package_roots():
        if path == root or root in path.parents:
            return (prefix + path.relative_to(root).as_posix()).removesuffix("/.")
    return None


def package_folder(text: str) -> Path | None:
    """The folder a package:<module>/... name stands for on this machine (None where it is no such name, or
    the module is not installed): a recorded command that names the package's data runs again as written."""
    if not text.startswith(PACKAGE):
        return None
    import importlib.util

    module, _, rest = text[len(PACKAGE):].partition("/")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / rest


def portable_path(path: str | Path) -> str:
    """How a local record names a path: package:<module>/... inside an installed package (package:harness/... for
    the harness's own files), ~/... under the home folder, anything else as it is."""
    text = str(path)
    if not _is_path(text) or text.startswith(PACKAGE):
        return text
    where = Path(text).expanduser().resolve()
    found = _package_form(where)
    if found:
        return found
    home = Path.home().resolve()
    if where == home or home in where.parents:
        return "~/" + where.relative_to(home).as_posix() if where != home else "~"
    return text


def shared_path(path: str | Path) -> str:
    """How shared output names a path: a package's file by package, any other folder or file by its name alone."""
    text = portable_path(path)
    if text.startswith(PACKAGE) or not _is_path(text):
        return text
    return Path(text).name or text


def shared_source(source: str | None, fingerprint: str | None = None) -> str:
    """Where a model came from, as shared output says it: a hub id or package:<module> as it is; a local folder by
    its name and, where known, the content hash of its weights (the record's weights fingerprint, shortened)."""
    if not source or not _is_path(source):
        return source or ""
    name = shared_path(source)
    return f"folder {name}, weights {fingerprint[:19]}" if fingerprint else f"folder {name}"


def command(argv: list[str], shared: bool = False) -> list[str]:
    """A command line with each path argument (`--mirror /x`, `--mirror=/x`) as portable_path names it, or as
    shared_path does."""
    convert = shared_path if shared else portable_path
    out = []
    for arg in argv:
        flag, eq, value = arg.partition("=")
        if eq and flag.startswith("--") and _is_path(value):
            out.append(f"{flag}={convert(value)}")
        else:
            out.append(convert(arg) if _is_path(arg) else arg)
    return out
