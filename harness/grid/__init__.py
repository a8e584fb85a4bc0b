"""`harness sweep`: the grid of tasks x models x seeds, where its cells run (local processes, SLURM through
submitit) and how many share a GPU; `harness tune`'s search (search_space.py, search.py, search_worker.py,
claims.py). May import every folder before it (registry/ ... outputs/)."""
