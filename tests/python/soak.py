# SPDX-License-Identifier: BSL-1.0
"""The soak: stress.py's scenarios at full size, each timed, with RSS over 1M round trips.

Usage (after building the test modules, e.g. build/dev):
  PYTHONPATH=build/dev/tests python3 tests/python/soak.py [--scale 1.0] [--only NAME ...]
Sizes at scale 1: cancellation storms of 100k each way, 100k exceptions each way, 1M timer
waits in flight, a loop closed with 100k waits pending, two loops in two threads on 8 runtime
threads (100k operations each), 1M round trips (RSS must not grow by more than --rss-allowance
bytes). Exits non-zero on the first failure. Takes several minutes and a few GB of memory.
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stress  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=1.0, help="multiplies every size")
    p.add_argument("--only", nargs="+", help="scenario names to run")
    p.add_argument("--rss-allowance", type=int, default=32 << 20,
                   help="RSS growth allowed over the round trips (bytes)")
    args = p.parse_args()

    def size(n):
        return max(int(n * args.scale), 10)

    def two_loops():
        code = stress.TWO_LOOPS.format(threads=8, n=size(100_000))
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        stress.check(done.returncode == 0, done.stdout + done.stderr)
        return {"operations": 4 * size(100_000)}

    def round_trips():
        r = stress.round_trips_rss(size(1_000_000))
        stress.check(r["growth_bytes"] <= args.rss_allowance,
                     "RSS grew by %d bytes over %d round trips" % (r["growth_bytes"],
                                                                   r["round_trips"]))
        return r

    scenarios = {
        "python_cancels_cpp": lambda: stress.run(stress.python_cancels_cpp(size(100_000))),
        "cpp_cancels_python": lambda: stress.run(stress.cpp_cancels_python(size(100_000))),
        "exceptions": lambda: stress.run(stress.exceptions_both_ways(size(100_000))),
        "in_flight": lambda: stress.run(stress.sleeps_in_flight(size(1_000_000), 2000)),
        "loop_closed": lambda: stress.loop_closed_with_work_pending(size(100_000)),
        "two_loops": two_loops,
        "round_trips": round_trips,
    }
    for name, run in scenarios.items():
        if args.only and name not in args.only:
            continue
        start = time.perf_counter()
        outcome = run()
        print("%-20s %6.1f s  %r" % (name, time.perf_counter() - start, outcome), flush=True)


if __name__ == "__main__":
    main()
