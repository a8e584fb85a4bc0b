"""`harness sweep`: the grid of tasks x models x seeds, where its cells run (local processes, SLURM through
submitit) and how many share a GPU. May import every folder before it (registry/ ... outputs/)."""
