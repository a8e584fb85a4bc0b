"""How a run shows its progress: tqdm bars on a terminal, plain periodic lines elsewhere, each with the ETA
of its epoch and of the whole run.

On a terminal, training shows one bar per epoch (step, loss, samples/s, ETA) and evaluation one bar
per split. Where stderr is not a terminal (a log file, SLURM, a pipe, the tests) bars would be a mess
of carriage returns, and on a terminal that reports 0 rows or columns they would not show at all, so a
run writes REPORTS_PER_EPOCH lines per epoch instead, each with the same figures. `for_stream(stream)`
picks; `of(log)` also accepts a plain callable (msg -> None) and writes lines through it. A RunClock
(one per display) times training and evaluation apart and gives the ETA of everything the run has left:
every epoch, fit and seed (`harness run --seeds 3`: all three).
"""
from __future__ import annotations

import os
import sys
import time

REPORTS_PER_EPOCH = 5  # progress lines per epoch: often enough to see it move, rare enough to stay readable
BAR_LOSS_EVERY_S = 1.0  # on a bar, the shown loss is refreshed this often (reading it syncs the GPU)
# What evaluating an example costs next to training on one, until an evaluation has been timed: a forward pass
# without the backward's two would make it a third, but measured it is about half (MiniLM-L6 on ASSIN PT-BR, CPU:
# 418 s evaluating and 871 s training on 5,000 examples each).
EVAL_COST_GUESS = 1 / 2


def duration(seconds: float | None) -> str:
    """42s, 3m05s, 1h02m: short enough for a progress line."""
    if seconds is None:
        return "?"
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def eta(elapsed: float, done: int, remaining: int) -> float | None:
    """Seconds left if the rest goes at the pace of what is finished (None before anything finished)."""
    if done <= 0:
        return None
    return elapsed / done * remaining


class RunClock:
    """The ETA of a whole run: the examples left to train on and to evaluate, in this cell and in the cells
    (seeds) not started yet, at the pace measured so far (seconds per trained and per evaluated example, timed
    apart: an evaluation costs far less per example). Loading a model, a few seconds, is not counted."""

    def __init__(self, cells: int = 1):
        self.cells_not_started = cells
        self.per_cell = {"train": 0, "eval": 0}  # examples a cell trains on and evaluates, for those not started
        self.left = {"train": 0, "eval": 0}  # examples planned in started cells, not done yet
        self.done = {"train": [0, 0.0], "eval": [0, 0.0]}  # [examples, seconds]

    def plan_cell(self, train_examples: int, eval_examples: int) -> None:
        """A cell starts: the examples it trains on and evaluates, over all its fits and epochs."""
        self.cells_not_started = max(0, self.cells_not_started - 1)
        self.per_cell = {"train": train_examples, "eval": eval_examples}
        self.left["train"] += train_examples
        self.left["eval"] += eval_examples

    def record(self, kind: str, examples: int, seconds: float) -> None:
        """kind ("train" or "eval"): examples done in that many seconds."""
        self.done[kind][0] += examples
        self.done[kind][1] += seconds
        self.left[kind] = max(0, self.left[kind] - examples)

    def eta(self, kind: str | None = None, examples: int = 0, seconds: float = 0.0) -> float | None:
        """Seconds the run has left; kind/examples/seconds: what a display has done and not recorded yet.
        None before anything was trained (no pace yet)."""
        done = {k: [n + (examples if k == kind else 0), s + (seconds if k == kind else 0.0)]
                for k, (n, s) in self.done.items()}
        if done["train"][0] <= 0 or done["train"][1] <= 0:
            return None
        pace = {"train": done["train"][1] / done["train"][0]}
        pace["eval"] = done["eval"][1] / done["eval"][0] if done["eval"][0] else pace["train"] * EVAL_COST_GUESS
        return sum(pace[k] * (max(0, self.left[k] - (examples if k == kind else 0))
                              + self.per_cell[k] * self.cells_not_started) for k in pace)


class Lines:
    """Progress as plain lines, through `write` (msg -> None)."""

    def __init__(self, write, clock: RunClock | None = None):
        self.write = write
        self.clock = clock or RunClock()

    def __call__(self, msg: str) -> None:
        self.write(msg)

    def plan_cell(self, train_examples: int, eval_examples: int) -> None:
        self.clock.plan_cell(train_examples, eval_examples)

    def training(self, label: str, epoch: int, epochs: int, steps: int) -> _EpochLines:
        return _EpochLines(self.write, f"[{label}] epoch {epoch}/{epochs}", steps, self.clock)

    def evaluation(self, label: str, split: str, examples: int) -> _Timed:
        return _Timed(self.clock)  # an evaluation is short next to an epoch; the epoch's summary line follows it


class Bars(Lines):
    """Progress as tqdm bars on `stream` (a terminal); other messages are written above the bars."""

    def __init__(self, stream, clock: RunClock | None = None):
        self.stream = stream
        super().__init__(self._write, clock)

    def _write(self, msg: str) -> None:
        from tqdm import tqdm

        tqdm.write(msg, file=self.stream)

    def training(self, label: str, epoch: int, epochs: int, steps: int) -> _EpochBar:
        return _EpochBar(self.stream, f"{label} epoch {epoch}/{epochs}", steps, self.clock)

    def evaluation(self, label: str, split: str, examples: int) -> _EvalBar:
        return _EvalBar(self.stream, f"{label} {split}", examples, self.clock)


def for_stream(stream=None, cells: int = 1) -> Lines:
    """Bars where the stream (default: stderr) is a terminal with room for them, lines elsewhere; cells: how
    many cells (seeds) the run trains, for its ETA."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty() and not _no_room(stream):
        return Bars(stream, RunClock(cells))
    return Lines(lambda msg: print(msg, file=stream, flush=True), RunClock(cells))


def _no_room(stream) -> bool:
    """A terminal that reports 0 rows or 0 columns (a pseudo-terminal nobody sized: some containers and CI
    runners): tqdm would draw nothing there at all."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):  # no file descriptor, or not one a size can be read from
        return False
    return size.lines == 0 or size.columns == 0


def of(log) -> Lines:
    """A run's progress from its `log` argument: None (stderr, bars on a terminal), a Lines/Bars, or a
    plain callable (lines through it)."""
    if log is None:
        return for_stream()
    if isinstance(log, Lines):
        return log
    return Lines(log)


class _Display:
    """A progress display as a context manager: whatever it shows is closed on the way out."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self) -> None:
        pass


class _Timed(_Display):
    """An evaluation shown by nothing but timed for the run's ETA."""

    def __init__(self, clock: RunClock):
        self.clock, self.examples, self.t0 = clock, 0, time.perf_counter()

    def advance(self, n: int) -> None:
        self.examples += n

    def close(self) -> None:
        self.clock.record("eval", self.examples, time.perf_counter() - self.t0)
        self.examples = 0


def _run_eta(clock: RunClock, samples: int, elapsed: float) -> str:
    return f"whole run ETA {duration(clock.eta('train', samples, elapsed))}"


class _EpochLines(_Display):
    """One epoch as REPORTS_PER_EPOCH lines: step, mean loss so far, time, samples/s, ETA of the epoch and of
    the whole run."""

    def __init__(self, write, prefix: str, steps: int, clock: RunClock):
        self.write, self.prefix, self.steps, self.clock = write, prefix, steps, clock
        self.every = max(1, steps // REPORTS_PER_EPOCH)
        self.samples, self.t0 = 0, time.perf_counter()

    def close(self) -> None:
        self.clock.record("train", self.samples, time.perf_counter() - self.t0)
        self.samples = 0

    def advance(self, samples: int) -> None:
        self.samples += samples

    def wants_loss(self, step: int) -> bool:
        return step % self.every == 0 or step == self.steps

    def show(self, step: int, loss: float) -> None:
        elapsed = time.perf_counter() - self.t0
        rate = self.samples / elapsed if elapsed > 0 else 0.0
        self.write(f"{self.prefix} step {step}/{self.steps} loss {loss:.4f} ({elapsed:.0f}s, {rate:.1f} samples/s, "
                   f"ETA {duration(eta(elapsed, step, self.steps - step))}; "
                   f"{_run_eta(self.clock, self.samples, elapsed)})")


class _EpochBar(_Display):
    """One epoch as a tqdm bar: steps done / total, ETA of the epoch, and loss, samples/s and the whole run's
    ETA after it."""

    FORMAT = "{desc}: {percentage:3.0f}%|{bar}| step {n_fmt}/{total_fmt} [{elapsed}, ETA {remaining}{postfix}]"

    def __init__(self, stream, desc: str, steps: int, clock: RunClock):
        from tqdm import tqdm

        self.bar = tqdm(total=steps, desc=desc, file=stream, bar_format=self.FORMAT, leave=True, dynamic_ncols=True)
        self.steps, self.samples, self.t0, self.last_loss = steps, 0, time.perf_counter(), float("-inf")
        self.clock = clock

    def close(self) -> None:
        self.bar.close()
        self.clock.record("train", self.samples, time.perf_counter() - self.t0)
        self.samples = 0

    def advance(self, samples: int) -> None:
        self.samples += samples
        self.bar.update(1)

    def wants_loss(self, step: int) -> bool:
        return step == self.steps or time.perf_counter() - self.last_loss >= BAR_LOSS_EVERY_S

    def show(self, step: int, loss: float) -> None:
        now = time.perf_counter()
        self.last_loss = now
        rate = self.samples / (now - self.t0) if now > self.t0 else 0.0
        self.bar.set_postfix_str(f"loss {loss:.4f}, {rate:.1f} samples/s; "
                                 f"{_run_eta(self.clock, self.samples, now - self.t0)}", refresh=step == self.steps)


class _EvalBar(_Timed):
    """One evaluation pass as a tqdm bar over examples (it goes away when done), timed for the run's ETA."""

    def __init__(self, stream, desc: str, examples: int, clock: RunClock):
        from tqdm import tqdm

        super().__init__(clock)
        self.bar = tqdm(total=examples, desc=desc, file=stream, unit="ex", leave=False, dynamic_ncols=True)

    def close(self) -> None:
        self.bar.close()
        super().close()

    def advance(self, n: int) -> None:
        super().advance(n)
        self.bar.update(n)
