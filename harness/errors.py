"""User-facing errors: the CLI prints them as one line and exits with code 2."""

MESSAGE_CHARS = 200  # a library's message cut to this, so one line stays one line


class UserError(Exception):
    """A mistake the user can fix (bad name, bad file, missing data). Never a traceback."""


class RunFailed(Exception):
    """A run that started but cannot produce an honest number (divergence, OOM at micro-batch 1)."""


def short(exc: BaseException | str, *, last: bool = False, fallback: str | None = None) -> str:
    """The first (or last) non-empty line of an error's text, cut to MESSAGE_CHARS; a library's
    multi-line message must not break the one-line contract of UserError."""
    text = str(exc)
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return fallback if fallback is not None else (type(exc).__name__ if isinstance(exc, BaseException) else "")
    return (lines[-1] if last else lines[0]).strip()[:MESSAGE_CHARS]
