"""The one fine-tuning routine: a cell (cell.py) is one or two fits (fit.py), with batches, the objective, the
precision, data-parallel and sharded training, the allocator while it trains, progress and energy. May import every
folder before it (registry/ ... model/)."""
