"""One quick look at the Hugging Face hub before anything is loaded from it.

Without it, an unreachable hub costs about 50 s and 20 lines of library retries (huggingface_hub
retries every request five times with back-off, and that is not configurable) before the load fails.
One HEAD request with a short timeout answers the same question in milliseconds (a refused
connection or an unknown host) or in PROBE_TIMEOUT_S (a network that drops packets).
"""
from __future__ import annotations

import functools
import os
import threading
import urllib.error
import urllib.request

from harness.errors import UserError

PROBE_TIMEOUT_S = 3.0
_TRUE = {"1", "on", "yes", "true"}


def offline() -> bool:
    """The user said so: HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE), as huggingface_hub reads it."""
    return offline_variable() is not None


def offline_variable() -> str | None:
    """The variable that puts the hub offline (HF_HUB_OFFLINE, else TRANSFORMERS_OFFLINE, as huggingface_hub
    reads them), for messages that name it; None when online."""
    name = "HF_HUB_OFFLINE" if os.environ.get("HF_HUB_OFFLINE") else "TRANSFORMERS_OFFLINE"
    return name if (os.environ.get(name) or "").strip().lower() in _TRUE else None


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def unreachable_reason(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when `url` answers (any HTTP status counts: the server is there), else why not.
    Runs in a thread so that a hanging name lookup, which no socket timeout covers, is cut off too."""
    outcome: list[str | None] = []

    def probe():
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
            outcome.append(None)
        except urllib.error.HTTPError:
            outcome.append(None)
        except urllib.error.URLError as exc:
            outcome.append(_describe(exc.reason))
        except Exception as exc:  # timeouts, resets, TLS failures: all mean "not usable now"
            outcome.append(_describe(exc))

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    return outcome[0] if outcome else f"no answer within {timeout:.0f} s"


def _describe(reason) -> str:
    if isinstance(reason, BaseException):
        text = str(reason).strip() or type(reason).__name__
        return f"{type(reason).__name__}: {text}" if text != type(reason).__name__ else text
    return str(reason)


@functools.cache
def _hub_unreachable(url: str) -> str | None:
    return unreachable_reason(url)  # asked once per process and endpoint


def hub_available() -> bool:
    """Whether loading from the hub can work now: not offline by choice, and the hub answers."""
    return not offline() and _hub_unreachable(endpoint()) is None


ADVICE = ("Without network: HF_HUB_OFFLINE=1 (uses what the Hugging Face cache already holds), --mirror DIR "
          "(a folder that `harness prefetch` filled where the hub is reachable) or `harness demo` (embedded data)")


def require_hub(repos: list[str]) -> None:
    """Fail in one line, now, if `repos` must come from a hub that does not answer. Offline by choice
    (HF_HUB_OFFLINE=1) is left to the libraries: they read their cache and say what is missing."""
    if not repos or offline():
        return
    reason = _hub_unreachable(endpoint())
    if reason is not None:
        raise UserError(f"the Hugging Face hub ({endpoint()}) is unreachable ({reason}) and this needs "
                        f"{', '.join(repos)} from it. {ADVICE}")


def repos_needed(task, model, mirror: str | None) -> list[str]:
    """The hub repositories a run of (task, model) would fetch: those neither in the mirror nor shipped
    with the package (a package model, a local folder, the embedded data)."""
    from harness import embedded
    from harness.hub.mirror import mirror_entry

    needed = []
    if model.hub_id and mirror_entry(mirror, model.hub_id, f"model {model.name}") is None:
        needed.append(model.hub_id)
    if mirror_entry(mirror, task.hub_id, f"task {task.name}") is None and \
            embedded.folder_for(task.hub_id, task.config) is None:
        needed.append(task.hub_id)
    return needed
