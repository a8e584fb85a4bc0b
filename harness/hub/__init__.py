"""The Hugging Face hub and what stands in for it without network: a local mirror (DIR/<hub id>/) and its
lock file, the quick reachability probe, `harness prefetch`. May import the base modules and registry/."""
