"""Keeping secrets out of what the harness writes: records and exports pass through scrub().

Removed wherever they appear in a string: the values of environment variables whose names say
they are secret (HF_TOKEN, *_PASSWORD, *_SECRET, *API_KEY, ...), the Hugging Face token
huggingface_hub would use, anything shaped like a Hugging Face token, passwords in URLs, and the
paths of the usual credential files in the user's home (the hub token file, ~/.netrc, ~/.ssh, ...).
"""
from __future__ import annotations

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
