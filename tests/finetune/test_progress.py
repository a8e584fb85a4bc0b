"""Progress: bars on a terminal, plain lines with throughput and ETA elsewhere."""
import io
import os
import re
from pathlib import Path

import pytest

from harness.config import RunConfig
from harness.finetune import cell, progress
from harness.grid.executors import _progress
from harness.grid.plan import GridCell, Outcome
from harness.registry.load import load_tasks, local_model


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as stderr does in an interactive shell."""

    def isatty(self):
        return True


def _run(toy_env, model, stream):
    task = load_tasks()["toy"]
    return cell.run_cell(task, local_model(model), RunConfig(epochs=2, batch_size=8), seed=1, limit=40,
                            mirror=str(toy_env["mirror"]), log=progress.for_stream(stream))


def test_the_choice_follows_the_stream():
    assert isinstance(progress.for_stream(Terminal()), progress.Bars)
    assert not isinstance(progress.for_stream(io.StringIO()), progress.Bars)
    assert not isinstance(progress.of(lambda msg: None), progress.Bars)


def test_a_terminal_gets_bars_for_training_and_evaluation(toy_env, tiny_encoder):
    stream = Terminal()
    record = _run(toy_env, tiny_encoder, stream)
    out = stream.getvalue()
    steps = record.fits[0].steps // 2  # per epoch
    assert "\r" in out  # a bar redraws itself in place
    for epoch in (1, 2):
        assert f"epoch {epoch}/2: 100%" in out and f"step {steps}/{steps}" in out
    assert "loss " in out and "samples/s" in out and "ETA " in out
    # evaluation bars, one per split, over examples
    assert "epoch 1 validation" in out and "epoch 2 test" in out and "ex/s" in out
    # the epoch summaries and the data line still come through, as whole lines
    assert "epoch 2/2 done: validation acc" in out and "data: train 40" in out


def test_elsewhere_plain_lines_with_throughput_and_eta(toy_env, tiny_encoder):
    stream = io.StringIO()
    record = _run(toy_env, tiny_encoder, stream)
    out = stream.getvalue()
    assert "\r" not in out
    steps = record.fits[0].steps // 2
    step_lines = [ln for ln in out.splitlines() if " step " in ln]
    expected = {b for b in range(1, steps + 1) if b % max(1, steps // progress.REPORTS_PER_EPOCH) == 0 or b == steps}
    assert len(step_lines) == 2 * len(expected)
    last = [ln for ln in step_lines if f"epoch 2/2 step {steps}/{steps}" in ln]
    # The epoch is done; the whole run still has that epoch's evaluation to do.
    assert len(last) == 1 and "samples/s" in last[0] and re.search(r"ETA 0s; whole run ETA \d+s\)$", last[0])
    assert all("; whole run ETA " in ln for ln in step_lines)


def test_the_whole_run_eta_counts_every_cell_fit_and_evaluation_left():
    clock = progress.RunClock(cells=2)
    assert clock.eta() is None  # no pace before anything was trained
    clock.plan_cell(train_examples=100, eval_examples=50)  # the first of two cells (seeds)
    clock.record("train", 50, 10.0)  # 0.2 s a trained example; evaluation not timed yet: a third of that
    left = (50 + 100) * 0.2 + (50 + 50) * 0.2 * progress.EVAL_COST_GUESS  # this cell's rest, then the next cell
    assert clock.eta() == pytest.approx(left)
    # What a display has done but not recorded yet counts too.
    assert clock.eta("train", 25, 5.0) == pytest.approx(left - 25 * 0.2)
    clock.record("eval", 50, 2.0)  # evaluation timed: 0.04 s an example
    assert clock.eta() == pytest.approx((50 + 100) * 0.2 + (0 + 50) * 0.04)
    clock.plan_cell(train_examples=100, eval_examples=50)  # the second cell starts: nothing after it
    assert clock.eta() == pytest.approx((50 + 100) * 0.2 + 50 * 0.04)


def test_a_terminal_of_zero_rows_gets_lines_not_bars():
    """A pseudo-terminal nobody sized reports 0 rows and 0 columns (some containers and CI runners): tqdm would
    draw nothing there, so progress falls back to lines."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as tty:
        try:
            assert tty.isatty() and os.get_terminal_size(follower) == (0, 0)
            assert not isinstance(progress.for_stream(tty), progress.Bars)
            fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # now sized 80 x 24
            assert isinstance(progress.for_stream(tty), progress.Bars)
        finally:
            os.close(leader)


def test_durations_and_eta():
    assert [progress.duration(s) for s in (0, 42.4, 65, 3599, 3720, None)] == ["0s", "42s", "1m05s", "59m59s",
                                                                                "1h02m", "?"]
    assert progress.eta(60.0, 3, 6) == pytest.approx(120.0)  # 20 s a cell, 6 to go
    assert progress.eta(60.0, 0, 6) is None


def test_a_sweep_line_says_done_to_do_and_eta():
    cell = GridCell("assin2", "ttl-160m", "ttl-160m", 42, Path("x.json"))
    line = _progress(Outcome(cell, True, 30.0), done=2, total=5, elapsed=100.0)
    assert line == "[2/5] assin2/ttl-160m seed 42: ok (30s); 3 to do, ETA 2m30s"
    last = _progress(Outcome(cell, False, 30.0, message="boom"), done=5, total=5, elapsed=250.0)
    assert last == "[5/5] assin2/ttl-160m seed 42: FAILED (boom) (30s); all done in 4m10s"
