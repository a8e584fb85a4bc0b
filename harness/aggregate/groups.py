"""Which records go together: one table section, or one comparison, per variant and precision.

A variant names the experiment (recipe overrides, --limit); precision is a speed knob, so runs in
bf16 autocast (the default on CUDA and on CPUs with native bf16) and in fp32 share a variant. Their
numbers are not the same experiment to the digit, so they are never pooled: each (variant, precision)
is its own group, and every output says which it shows.
"""
from __future__ import annotations

from dataclasses import dataclass

UNRECORDED = "unrecorded"


def precision_of(record) -> str:
    """"fp32", "bf16", or "unrecorded" for records written before the harness recorded it."""
    return record.precision or UNRECORDED


@dataclass
class Group:
    variant: str
    precision: str
    records: list

    @property
    def label(self) -> str:
        """e.g. "fp32 (cpu)": the precision and the device types its records ran on."""
        return group_label(self.precision, {r.device_type for r in self.records})


def group_label(precision: str | None, device_types) -> str:
    """How a table names a (variant, precision) group: the precision and the device types it ran on."""
    if not precision or precision == UNRECORDED:
        return "unrecorded (records written before the harness recorded it)"
    return f"{precision} ({', '.join(sorted(d or '?' for d in device_types))})"


def variant_order(variants) -> list[str]:
    """'default' first, then by name."""
    return sorted(set(variants), key=lambda v: (v != "default", v))


def groups(records) -> list[Group]:
    """The records split by (variant, precision): variants in variant_order, precisions by name."""
    keyed: dict = {}
    for r in records:
        keyed.setdefault((r.variant, precision_of(r)), []).append(r)
    order = {v: i for i, v in enumerate(variant_order(v for v, _ in keyed))}
    return [Group(v, p, recs) for (v, p), recs in sorted(keyed.items(), key=lambda kv: (order[kv[0][0]], kv[0][1]))]


def listing(records) -> str:
    """The (variant, precision) groups that exist, with how many records each: for 'nothing matched' errors."""
    return "; ".join(f"{g.variant} ({g.precision}: {len(g.records)} records)" for g in groups(records)) or "none"
