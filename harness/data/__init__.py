"""A task's data: its splits loaded (hub, mirror or the embedded copy), checked, subset; then formatted per model
family, tokenized once and cached. May import the base modules, registry/ and hub/."""
