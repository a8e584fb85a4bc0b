"""Uploading an export to the Hugging Face Hub (`harness export --push REPO`), through huggingface_hub.

The token is huggingface_hub's own: $HF_TOKEN (or the one `hf auth login` stored); the harness never
reads it into anything it writes. Nothing is uploaded unless --push is given. Every failure (no token,
hub unreachable, no write access) is one line, and the upload is one commit: it happens whole or not at all.
"""
from __future__ import annotations

from harness.errors import UserError, short
from harness.redact import scrub


def require_token() -> None:
    from huggingface_hub import get_token

    if not get_token():
        raise UserError("--push needs a Hugging Face token with write access: set HF_TOKEN (nothing was uploaded)")


def push_model_index(repo: str, model_index: list) -> str:
    """Merge the model-index into the model card's metadata (huggingface_hub.metadata_update)."""
    from huggingface_hub import metadata_update

    require_token()
    return _upload(repo, lambda: metadata_update(repo, {"model-index": model_index}, overwrite=True,
                                                 commit_message="Evaluation results (poeta-harness)"))


def push_files(repo: str, files: dict[str, str], repo_type: str = "model") -> str:
    """One commit adding path_in_repo -> text for each file."""
    from huggingface_hub import CommitOperationAdd, HfApi

    require_token()
    operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=text.encode("utf-8"))
                  for path, text in files.items()]
    return _upload(repo, lambda: HfApi().create_commit(repo, operations, repo_type=repo_type,
                                                       commit_message="Evaluation results (poeta-harness)"))


def _upload(repo: str, call) -> str:
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.set_verbosity_error()  # its "Retrying in 4s" lines would break the one-line contract
    try:
        result = call()
    except Exception as exc:  # offline, unreachable, 401/403/404: all end the same way for the user
        raise UserError(scrub(f"cannot push to '{repo}' ({short(exc)}); nothing was uploaded: check the network, "
                              f"the repository id, and that your token (HF_TOKEN) can write to it")) from None
    return str(getattr(result, "commit_url", result))
