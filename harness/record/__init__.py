"""The run record: its schema, how a run's record is built, JSON and older schemas, where records live, variant
names, provenance, the protocols' epoch choice; the search record of `harness tune` (search.py). May import the
base modules, registry/, hub/ and data/."""
