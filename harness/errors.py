"""User-facing errors: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """A mistake the user can fix (bad name, bad file, missing data). Never a traceback."""


class RunFailed(Exception):
    """A run that started but cannot produce an honest number (divergence, OOM at micro-batch 1)."""
