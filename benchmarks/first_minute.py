"""The first minutes of a new user, timed from outside: a run when the hub is unreachable (how long until
the error, how many lines), and `harness demo` (wall and CPU time, its last lines).

    python benchmarks/first_minute.py                     # both, with the demo's default settings
    python benchmarks/first_minute.py --only hub          # the unreachable-hub run only (seconds)
    python benchmarks/first_minute.py --only demo --demo-args "--limit 200 --epochs 1"

HF_HUB_OFFLINE is removed from the environment of what it runs: the point is what happens without it.
The load average is printed beside the figures: on a shared machine, wall time is not the machine's speed.
"""
from __future__ import annotations

import argparse
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time

# Every variable that puts the Hugging Face libraries offline: the point is what happens without them.
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def timed(argv: list[str], env: dict) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"code": proc.returncode, "wall_s": wall, "cpu_s": cpu, "stdout": proc.stdout, "stderr": proc.stderr}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["hub", "demo"])
    ap.add_argument("--demo-args", default="", help="extra flags for harness demo, e.g. '--limit 200 --epochs 1'")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARIABLES}
    harness = [sys.executable, "-m", "harness"]
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "hub"):
            r = timed([*harness, "run", "--task", "assin2", "--model", "ttl-160m", "--results", f"{tmp}/r"], env)
            lines = r["stderr"].strip().splitlines()
            print(f"hub unreachable: exit {r['code']} after {r['wall_s']:.1f} s wall ({r['cpu_s']:.1f} s CPU), "
                  f"{len(lines)} line(s) on stderr")
            for line in lines[-3:]:
                print(f"  | {line}")
        if args.only in (None, "demo"):
            r = timed([*harness, "demo", "--results", f"{tmp}/demo", *shlex.split(args.demo_args)], env)
            print(f"harness demo {args.demo_args}: exit {r['code']} after {r['wall_s']:.0f} s wall "
                  f"({r['cpu_s']:.0f} s CPU)")
            for line in (r["stdout"].strip().splitlines() + r["stderr"].strip().splitlines()[-3:])[-14:]:
                print(f"  | {line}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
