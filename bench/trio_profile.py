# SPDX-License-Identifier: BSL-1.0
"""Where the time goes in bench/future_into_py.py's trio workloads, per operation.

For each workload (pyasio's and trio's floors, by their names in future_into_py.py), one trio.run
of N operations measures: the wall time; the CPU time of the trio thread; the cyclic garbage
collector's collections and the time they took (gc.callbacks); the passes of trio's scheduler
loop (an Instrument's before_io_wait, called once per pass). A second run with the garbage
collector off measures the wall time without it, and a third, under cProfile, counts the
Python-level calls. Last, the
objects the garbage collector tracks per operation in flight: a nursery of M tasks each awaiting
pyasio's sleep_ms(60 s), against the same with each task waiting for a trio.Event of its own,
counted by type.

Usage (after building the CMake target pyasio_bench; needs trio, Debian: python3-trio):
  python3 bench/trio_profile.py --module-dir BUILD/bench [--n 20000] [WORKLOAD ...]
--smoke: tiny counts (the test command).
"""
import argparse
import collections
import cProfile
import gc
import os
import pstats
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from future_into_py import TRIO_WORKLOADS, machine, trio_module  # noqa: E402

DEFAULT = ["seq_noop", "trio_threadsafe_seq", "gather_noop", "trio_nursery_tasks", "await_seq",
           "await_concurrent", "await_seq_local", "trio_seq_task", "await_concurrent_local"]


class Collections:
    """The collections of the cyclic GC while installed, and the seconds they took."""

    def __init__(self):
        self.count, self.seconds, self._start = 0, 0.0, 0.0

    def __call__(self, phase, info):
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.count += 1
            self.seconds += time.perf_counter() - self._start


def measure(trio, m, workload, n):
    passes = [0]

    class Passes(trio.abc.Instrument):
        def before_io_wait(self, timeout):
            passes[0] += 1

    async def run():
        cpu = time.thread_time()
        wall = await workload(m, n)
        return wall, time.thread_time() - cpu

    collected = Collections()
    gc.callbacks.append(collected)
    try:
        wall, cpu = trio.run(run, instruments=[Passes()])
    finally:
        gc.callbacks.remove(collected)
    gc.disable()
    try:
        no_gc = trio.run(workload, m, n)
    finally:
        gc.enable()
    profile = cProfile.Profile()
    profile.enable()
    trio.run(workload, m, n)
    profile.disable()
    calls = pstats.Stats(profile).total_calls
    us = 1e6 / n
    return (wall * us, cpu * us, collected.count * 1000 / n, collected.seconds * us,
            no_gc * us, passes[0] / n, calls / n)


def census():
    gc.collect()
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


async def tracked_in_flight(trio, m, count, ours):
    """GC-tracked objects per operation in flight, by type: {type: per operation}."""
    await m.noop()  # the bridge and the caches exist before the baseline
    before = census()
    async with trio.open_nursery() as nursery:
        for _ in range(count):
            if ours:
                nursery.start_soon(m.sleep_ms, 60_000)
            else:  # what trio_threadsafe_seq parks on
                nursery.start_soon(trio.Event().wait)
        await trio.sleep(0.2)  # every task is parked
        during = census()
        nursery.cancel_scope.cancel()
    return {k: (during[k] - before[k]) / count for k in during
            if during[k] - before[k] >= count // 2}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--module-dir", required=True, help="directory holding pyasio_bench")
    p.add_argument("--n", type=int, default=20_000, help="operations per workload")
    p.add_argument("--inflight", type=int, default=2000, help="operations in flight (census)")
    p.add_argument("--smoke", action="store_true", help="tiny counts")
    p.add_argument("workloads", nargs="*", help="default: %s" % " ".join(DEFAULT))
    args = p.parse_args()
    sys.path.insert(0, args.module_dir)
    import pyasio_bench as m

    trio = trio_module()
    if trio is None:
        return
    if args.smoke:
        args.n, args.inflight = 200, 100
    workloads = dict(TRIO_WORKLOADS)
    names = args.workloads or DEFAULT
    print("Measured by `bench/trio_profile.py` on %s, trio %s; %d operations per workload, one "
          "run each, a second with the GC off, a third under cProfile (the calls).\n"
          % (machine(), trio.__version__, args.n))
    print("| workload | µs per op | trio thread CPU, µs per op | GC collections per 1000 ops "
          "| GC µs per op | µs per op, GC off | trio loop passes per op | Python calls per op |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        print("| `%s` | %.2f | %.2f | %.1f | %.2f | %.2f | %.2f | %.1f |"
              % ((name,) + measure(trio, m, workloads[name], args.n)))
    print()
    for label, ours in (("pyasio `sleep_ms`", True), ("`trio.Event().wait`", False)):
        per_op = trio.run(tracked_in_flight, trio, m, args.inflight, ours)
        kinds = sorted(per_op.items(), key=lambda kv: -kv[1])
        print("GC-tracked objects per task in flight, %s: %.1f (%s)" % (
            label, sum(per_op.values()), ", ".join("%s %.0f" % kv for kv in kinds)))


if __name__ == "__main__":
    main()
