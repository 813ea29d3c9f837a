# SPDX-License-Identifier: BSL-1.0
"""Streams both ways: items per second through pyasio's streams against the pure-Python floor.

Measures, for N integer items on one loop, in one run:
  py_async_for       the floor: `async for` over a Python async generator, summing in Python
  cpp_to_py          `async for` over pyasio_bench.count_stream(N, capacity): a C++ producer on
                     the runtime writes 0..N-1 (pyasio::stream_into_py)
  py_to_cpp          C++ work on the runtime sums a Python async generator through
                     pyasio::into_stream<long> (sum_stream(agen, window, False))
  py_to_cpp_local    the same with the C++ work on the loop executor (no thread hop)
Target (issue 6): each direction at least 0.5 x the floor's items per second, at the default
window (256).

Usage (after building the CMake target pyasio_bench):
  python3 bench/streams.py --module-dir BUILD/bench [--write docs/benchmarks.md]
--smoke runs everything with tiny counts and checks the results (used by the test command).
"""

import argparse
import asyncio
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from future_into_py import loop_factories, machine, write_section  # noqa: E402

TARGET = 0.5
DEFAULT_WINDOW = 256  # pyasio::default_stream_window: the target is for it
BEGIN = "<!-- bench/streams.py: begin -->"
END = "<!-- bench/streams.py: end -->"


async def numbers(n):
    for i in range(n):
        yield i


async def py_async_for(m, n, window):
    total = 0
    async for x in numbers(n):
        total += x
    return total


async def cpp_to_py(m, n, window):
    total = 0
    async for x in m.count_stream(n, window):
        total += x
    return total


async def py_to_cpp(m, n, window):
    return await m.sum_stream(numbers(n), window, False)


async def py_to_cpp_local(m, n, window):
    return await m.sum_stream(numbers(n), window, True)


WORKLOADS = [py_async_for, cpp_to_py, py_to_cpp, py_to_cpp_local]


def timed(factory, workload, m, n, window):
    loop = factory()
    try:
        start = time.perf_counter()
        total = loop.run_until_complete(workload(m, n, window))
        seconds = time.perf_counter() - start
    finally:
        loop.close()
    if total != n * (n - 1) // 2:
        raise SystemExit("%s summed %r, not %r" % (workload.__name__, total, n * (n - 1) // 2))
    return seconds


def measure(args, m):
    results = {}
    for name, factory in loop_factories().items():
        samples = {(w.__name__, k): [] for w in WORKLOADS for k in args.windows}
        for _ in range(args.repeat):  # interleaved, so that a slow moment hits every workload
            for window in args.windows:
                for w in WORKLOADS:
                    seconds = timed(factory, w, m, args.n, window)
                    samples[(w.__name__, window)].append(args.n / seconds)
        results[name] = {k: (statistics.median(v), min(v), max(v)) for k, v in samples.items()}
    return results


def report(args, results):
    lines = [
        "Measured by `bench/streams.py` on %s; %d items per run, median of %d runs "
        "(interleaved), slowest and fastest in brackets. The window is into_stream's prefetch "
        "window and stream_into_py's capacity." % (machine(), args.n, args.repeat), ""]
    for loop, row in results.items():
        lines += ["### %s: streams" % loop, "",
                  "| workload | window | items/s, median (min–max) | ratio to `py_async_for` "
                  "| target |", "|---|---|---|---|---|"]
        for window in args.windows:
            floor = row[("py_async_for", window)][0]
            for w in WORKLOADS:
                med, lo, hi = row[(w.__name__, window)]
                ratio = target = ""
                if w is not py_async_for:
                    r = med / floor
                    ratio = "%.2f×" % r
                    if window == DEFAULT_WINDOW:
                        target = "≥ %.1f× %s" % (TARGET, "met" if r >= TARGET else "**missed**")
                lines.append("| `%s` | %d | %.0f (%.0f–%.0f) | %s | %s |"
                             % (w.__name__, window, med, lo, hi, ratio, target))
        lines.append("")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--module-dir", required=True, help="directory holding pyasio_bench")
    p.add_argument("--n", type=int, default=200_000, help="items per run")
    p.add_argument("--repeat", type=int, default=5, help="runs of each workload")
    p.add_argument("--windows", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument("--write", metavar="PAGE", help="replace this script's section of PAGE")
    p.add_argument("--smoke", action="store_true", help="tiny counts, results checked")
    args = p.parse_args()
    sys.path.insert(0, args.module_dir)
    import pyasio_bench

    if args.smoke:
        args.n, args.repeat, args.windows = 2000, 1, [1, 64]
    text = report(args, measure(args, pyasio_bench))
    print(text)
    if args.write:
        write_section(args.write, text, BEGIN, END)


if __name__ == "__main__":
    main()
