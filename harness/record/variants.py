"""Variants: the name of an experiment, under which its records live and its table cells pool.

"default" is the registered recipe on full data; anything else is a slug of what changed (e.g. "limit200" or
"epochs=1_limit200"): the recipe's overrides (not the speed knobs) and the limit.
"""
from __future__ import annotations

import hashlib
import re

MAX_VARIANT_CHARS = 80  # longer slugs are cut and suffixed with a hash, to stay a sane folder name


def variant_name(overrides: dict, limit: int | None) -> str:
    parts = [f"{k}={_short(v)}" for k, v in sorted(overrides.items())]
    if limit is not None:
        parts.append(f"limit{limit}")
    if not parts:
        return "default"
    slug = re.sub(r"[^A-Za-z0-9.=_-]+", "-", "_".join(parts))
    if len(slug) > MAX_VARIANT_CHARS:
        slug = slug[:60] + "-" + hashlib.sha256(slug.encode()).hexdigest()[:8]
    return slug


def variant_of(cfg, limit: int | None) -> str:
    """The results variant of a run: the recipe's overrides (not the speed knobs) and the limit."""
    return variant_name(cfg.recipe_overrides(), limit)


def _short(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
