"""How a run shows its progress: tqdm bars on a terminal, plain periodic lines elsewhere.

On a terminal, training shows one bar per epoch (step, loss, samples/s, ETA) and evaluation one bar
per split. Where stderr is not a terminal (a log file, SLURM, a pipe, the tests) bars would be a mess
of carriage returns, so a run writes REPORTS_PER_EPOCH lines per epoch instead, each with the same
figures. `for_stream(stream)` picks by stream.isatty(); `of(log)` also accepts a plain callable
(msg -> None) and writes lines through it.
"""
from __future__ import annotations

import sys
import time

REPORTS_PER_EPOCH = 5  # progress lines per epoch: often enough to see it move, rare enough to stay readable
BAR_LOSS_EVERY_S = 1.0  # on a bar, the shown loss is refreshed this often (reading it syncs the GPU)


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


class Lines:
    """Progress as plain lines, through `write` (msg -> None)."""

    def __init__(self, write):
        self.write = write

    def __call__(self, msg: str) -> None:
        self.write(msg)

    def training(self, label: str, epoch: int, epochs: int, steps: int) -> _EpochLines:
        return _EpochLines(self.write, f"[{label}] epoch {epoch}/{epochs}", steps)

    def evaluation(self, label: str, split: str, examples: int) -> _Silent:
        return _Silent()  # an evaluation is short next to an epoch; the epoch's summary line follows it


class Bars(Lines):
    """Progress as tqdm bars on `stream` (a terminal); other messages are written above the bars."""

    def __init__(self, stream):
        self.stream = stream
        super().__init__(self._write)

    def _write(self, msg: str) -> None:
        from tqdm import tqdm

        tqdm.write(msg, file=self.stream)

    def training(self, label: str, epoch: int, epochs: int, steps: int) -> _EpochBar:
        return _EpochBar(self.stream, f"{label} epoch {epoch}/{epochs}", steps)

    def evaluation(self, label: str, split: str, examples: int) -> _EvalBar:
        return _EvalBar(self.stream, f"{label} {split}", examples)


def for_stream(stream=None) -> Lines:
    """Bars where the stream (default: stderr) is a terminal, lines elsewhere."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return Bars(stream)
    return Lines(lambda msg: print(msg, file=stream, flush=True))


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


class _Silent(_Display):
    def advance(self, n: int) -> None:
        pass


class _EpochLines(_Display):
    """One epoch as REPORTS_PER_EPOCH lines: step, mean loss so far, time, samples/s, ETA of the epoch."""

    def __init__(self, write, prefix: str, steps: int):
        self.write, self.prefix, self.steps = write, prefix, steps
        self.every = max(1, steps // REPORTS_PER_EPOCH)
        self.samples, self.t0 = 0, time.perf_counter()

    def advance(self, samples: int) -> None:
        self.samples += samples

    def wants_loss(self, step: int) -> bool:
        return step % self.every == 0 or step == self.steps

    def show(self, step: int, loss: float) -> None:
        elapsed = time.perf_counter() - self.t0
        rate = self.samples / elapsed if elapsed > 0 else 0.0
        self.write(f"{self.prefix} step {step}/{self.steps} loss {loss:.4f} ({elapsed:.0f}s, {rate:.1f} samples/s, "
                   f"ETA {duration(eta(elapsed, step, self.steps - step))})")


class _EpochBar(_Display):
    """One epoch as a tqdm bar: steps done / total, ETA of the epoch, and loss and samples/s after it."""

    FORMAT = "{desc}: {percentage:3.0f}%|{bar}| step {n_fmt}/{total_fmt} [{elapsed}, ETA {remaining}{postfix}]"

    def __init__(self, stream, desc: str, steps: int):
        from tqdm import tqdm

        self.bar = tqdm(total=steps, desc=desc, file=stream, bar_format=self.FORMAT, leave=True, dynamic_ncols=True)
        self.steps, self.samples, self.t0, self.last_loss = steps, 0, time.perf_counter(), float("-inf")

    def close(self) -> None:
        self.bar.close()

    def advance(self, samples: int) -> None:
        self.samples += samples
        self.bar.update(1)

    def wants_loss(self, step: int) -> bool:
        return step == self.steps or time.perf_counter() - self.last_loss >= BAR_LOSS_EVERY_S

    def show(self, step: int, loss: float) -> None:
        now = time.perf_counter()
        self.last_loss = now
        rate = self.samples / (now - self.t0) if now > self.t0 else 0.0
        self.bar.set_postfix_str(f"loss {loss:.4f}, {rate:.1f} samples/s", refresh=step == self.steps)


class _EvalBar(_Display):
    """One evaluation pass as a tqdm bar over examples (it goes away when done)."""

    def __init__(self, stream, desc: str, examples: int):
        from tqdm import tqdm

        self.bar = tqdm(total=examples, desc=desc, file=stream, unit="ex", leave=False, dynamic_ncols=True)

    def close(self) -> None:
        self.bar.close()

    def advance(self, n: int) -> None:
        self.bar.update(n)
