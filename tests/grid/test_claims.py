"""Claims (grid/claims.py): one holder at a time; a dead or silent holder's claim is taken over by exactly one."""
import json
import os
import socket
import subprocess
import sys
import time

from harness.grid import claims


def write_claim(path, **info):
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "heartbeat": time.time(),
                                "released": False, **info}))


def test_a_claim_is_exclusive_until_released(tmp_path):
    first = claims.try_claim(tmp_path)
    assert first is not None and first.path.name == "claim.0"
    assert claims.try_claim(tmp_path) is None  # live: this process holds it
    assert claims.live_claim(tmp_path) == first.path
    first.release()
    assert claims.live_claim(tmp_path) is None
    second = claims.try_claim(tmp_path)
    assert second.path.name == "claim.1"  # generations only grow: an old view of the folder can never win
    second.release()


def test_a_dead_holder_on_this_host_is_taken_over_at_once(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_claim(tmp_path / "claim.0", pid=dead.pid)
    taken = claims.try_claim(tmp_path)
    assert taken is not None and taken.path.name == "claim.1"
    taken.release()


def test_an_unreaped_dead_holder_counts_as_dead(tmp_path):
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    time.sleep(1.0)  # it has exited, but nobody has waited for it: kill(pid, 0) still answers
    write_claim(tmp_path / "claim.0", pid=zombie.pid)
    assert not claims.is_live(tmp_path / "claim.0")
    zombie.wait()


def test_a_silent_holder_elsewhere_is_dead_after_the_stale_time(tmp_path):
    write_claim(tmp_path / "claim.0", host="another-node", pid=1, heartbeat=time.time() - 60)
    assert claims.is_live(tmp_path / "claim.0")  # another host's pid cannot be checked: its heartbeat decides
    write_claim(tmp_path / "claim.0", host="another-node", pid=1, heartbeat=time.time() - claims.STALE_AFTER_S - 1)
    assert not claims.is_live(tmp_path / "claim.0")
    assert claims.try_claim(tmp_path).path.name == "claim.1"


def test_of_two_takers_of_a_stale_claim_one_wins(tmp_path, monkeypatch):
    write_claim(tmp_path / "claim.0", released=True)
    # both looked at the folder before either took it over: both saw generation 0 only, both try claim.1
    monkeypatch.setattr(claims, "_generations", lambda folder, prefix: [0])
    a, b = claims.try_claim(tmp_path), claims.try_claim(tmp_path)
    assert a is not None and b is None and a.path.name == "claim.1"
    a.release()
    monkeypatch.undo()
    (tmp_path / "claim.2").touch()  # a claim being created (empty yet) is live while fresh
    assert claims.try_claim(tmp_path) is None


def test_the_heartbeat_keeps_a_long_claim_live(tmp_path, monkeypatch):
    monkeypatch.setattr(claims, "HEARTBEAT_S", 0.05)
    held = claims.try_claim(tmp_path)
    first = json.loads(held.path.read_text())["heartbeat"]
    time.sleep(0.3)
    assert json.loads(held.path.read_text())["heartbeat"] > first
    held.release()
    assert json.loads(held.path.read_text())["released"] is True
