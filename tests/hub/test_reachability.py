"""One quick look at the hub: an unreachable hub is one line within seconds, naming the ways to work offline."""
import http.server
import socket
import subprocess
import sys
import threading
import time

from conftest import ADVICE, closed_port, go_online, harness, online_env

from harness.cli.commands import main
from harness.hub import reachability


def test_hub_unreachable_model_says_how_to_use_the_mirror(tmp_path):
    out = harness("run", "--task", "assin2", "--model", "ttl-460m", "--results", tmp_path / "r",
                  env={"HF_HUB_OFFLINE": "1"})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "ttl-460m" in lines[0] and "--mirror" in lines[0]
    assert not (tmp_path / "r").exists()


def test_probe_refused_connection_is_unreachable_at_once():
    t0 = time.perf_counter()
    reason = reachability.unreachable_reason(f"http://127.0.0.1:{closed_port()}")
    assert reason is not None and "refused" in reason.lower()
    assert time.perf_counter() - t0 < 2


def test_probe_silent_server_is_cut_off_at_the_timeout():
    """A server that accepts the connection and never answers (a stuck proxy): the timeout decides."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        t0 = time.perf_counter()
        reason = reachability.unreachable_reason(f"http://127.0.0.1:{server.getsockname()[1]}", timeout=0.5)
        elapsed = time.perf_counter() - t0
    assert reason is not None and 0.4 < elapsed < 1.5


def test_probe_any_http_answer_is_reachable():
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert reachability.unreachable_reason(f"http://127.0.0.1:{server.server_port}") is None
    finally:
        server.shutdown()


def test_run_fails_in_one_line_within_seconds_when_the_hub_is_unreachable(tmp_path, monkeypatch, capsys):
    """Without HF_HUB_OFFLINE, a run that needs the hub asks it once; the libraries alone retry every file
    five times with back-off (1 + 2 + 4 + 8 + 8 s) before they give up: about 50 s and 20 lines."""
    go_online(monkeypatch)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    import torch  # noqa: F401  (the run imports it before asking the hub: seconds on a busy machine, not retries)

    t0 = time.perf_counter()
    code = main(["run", "--task", "assin2", "--model", "ttl-160m", "--results", str(tmp_path / "r")])
    elapsed = time.perf_counter() - t0
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert "unreachable" in lines[0] and "nicholasKluge/TeenyTinyLlama-160m" in lines[0]
    assert all(a in lines[0] for a in ADVICE)
    assert elapsed < 5, elapsed
    assert not (tmp_path / "r").exists()


def test_the_command_as_a_user_runs_it_prints_nothing_else(tmp_path):
    """The same through a fresh interpreter, where library logging would show: still one line. (Its time
    includes interpreter start-up on a shared machine; the bound only rules out the libraries' retries.)"""
    env = online_env(HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "harness", "run", "--task", "hatebr", "--model", "bertimbau-base",
                          "--results", str(tmp_path / "r")], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stdout == "" and all(a in out.stderr for a in ADVICE)
    assert time.perf_counter() - t0 < 20
