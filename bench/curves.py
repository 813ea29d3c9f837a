# SPDX-License-Identifier: BSL-1.0
"""Curves: how pyasio's cost grows, beside the pybind11 peer and the pure-Python floors.

Four measurements, each on every loop (asyncio, and uvloop where it is installed), each
implementation interleaved with the others in every repeat so that a slow moment hits them all:
  inflight  microseconds per operation with N operations in flight at once, N = 1, 10, ... 1M,
            in both directions:
              Python awaits C++: one asyncio.gather of N `noop()` (pyasio_bench, pybind11_peer),
                against N loop futures completed by loop.call_soon (`py_soon`);
              C++ awaits Python: `await_concurrent(py_noop, N)` (C++ starts N coroutines at once
                and awaits them all), against asyncio.gather of N coroutines (`py_gather`).
            Each point runs ceil(ROUNDS_OPS / N) gathers, so small N are not a single sample.
  threads   operations per second as the C++ side's threads go from 1 to twice the cores
            (pyasio: configure_runtime(n); the peer: configure_pool(n)), one fresh interpreter
            per point: N `spin(us)` at once (each keeps a C++ thread busy for us microseconds:
            CPU work that more threads can share), and N `noop()` at once (pure overhead).
  latency   the distribution of one `await noop()` round trip (loop thread to a C++ thread and
            back), timed one by one: p50, p90, p99, p99.9 and the slowest, against a Python
            worker thread completing a future with call_soon_threadsafe (`py_threadsafe`).
  memory    bytes per `sleep_ms` in flight at 10k, 100k and 1M at once (resident-set growth in
            a fresh interpreter, bench/future_into_py.py --memory), against loop futures
            completed by loop.call_later (`py_call_later`).

Usage (after building the CMake targets pyasio_bench and pybind11_peer):
  python3 bench/curves.py --module-dir BUILD/bench [--only inflight latency ...]
                          [--write docs/benchmarks.md] [--plots docs/img]
--smoke runs everything with tiny counts and checks the results (used by the test command).
"""

import argparse
import asyncio
import json
import math
import os
import queue
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from future_into_py import (error_bars, loop_factories, machine, py_noop,  # noqa: E402
                            pyplot, run_on, save, write_section)

KINDS = ["inflight", "threads", "latency", "memory"]
PERCENTILES = [50, 90, 99, 99.9]
SPIN_US = 50


def begin_marker(kind):
    return "<!-- bench/curves.py %s: begin -->" % kind


def end_marker(kind):
    return "<!-- bench/curves.py %s: end -->" % kind


def spread(samples):
    """median (min–max) of samples."""
    return statistics.median(samples), min(samples), max(samples)


def fmt(s, digits=2):
    return "%.*f (%.*f–%.*f)" % (digits, s[0], digits, s[1], digits, s[2])


# --- inflight -----------------------------------------------------------------------------------


async def gather_cpp(fn, n, rounds):
    t = time.perf_counter()
    for _ in range(rounds):
        await asyncio.gather(*[fn() for _ in range(n)])
    return time.perf_counter() - t


async def py_soon(m, n, rounds):
    loop = asyncio.get_running_loop()

    def soon():
        f = loop.create_future()
        loop.call_soon(f.set_result, None)
        return f

    return await gather_cpp(soon, n, rounds)


async def cpp_gather(m, n, rounds):
    return await gather_cpp(m.noop, n, rounds)


async def cpp_await_concurrent(m, n, rounds):
    t = time.perf_counter()
    for _ in range(rounds):
        if await m.await_concurrent(py_noop, n) != n:
            raise AssertionError("await_concurrent did not await every coroutine")
    return time.perf_counter() - t


async def py_gather(m, n, rounds):
    t = time.perf_counter()
    for _ in range(rounds):
        await asyncio.gather(*[py_noop() for _ in range(n)])
    return time.perf_counter() - t


# direction -> [(label, workload, module key)]; module key None: pure Python
DIRECTIONS = {
    "Python awaits C++": [("pyasio", cpp_gather, "pyasio"), ("pybind11 peer", cpp_gather, "peer"),
                          ("py_soon", py_soon, None)],
    "C++ awaits Python": [("pyasio", cpp_await_concurrent, "pyasio"),
                          ("pybind11 peer", cpp_await_concurrent, "peer"),
                          ("py_gather", py_gather, None)],
}


def measure_inflight(args, modules, factory):
    samples = {}
    for _ in range(args.repeat):
        for n in args.sizes:
            rounds = max(1, math.ceil(args.rounds_ops / n))
            for direction, impls in DIRECTIONS.items():
                for label, workload, key in impls:
                    if key is not None and key not in modules:
                        continue
                    if key == "peer" and n > args.peer_max:
                        continue
                    seconds = run_on(factory, workload(modules.get(key), n, rounds))
                    samples.setdefault((direction, label, n), []).append(
                        seconds / (n * rounds) * 1e6)
    return {k: spread(v) for k, v in samples.items()}


def report_inflight(args, results):
    lines = ["Microseconds per operation, median (min–max) of %d runs; each point runs "
             "ceil(%d / N) rounds of N operations at once." % (args.repeat, args.rounds_ops)]
    if args.peer_max < max(args.sizes):
        lines[0] += (" The pybind11 peer stops at N = %d (it takes about 30–40 µs per "
                     "operation, so its 1M points alone would take minutes per run)."
                     % args.peer_max)
    for loop, row in results.items():
        for direction, impls in DIRECTIONS.items():
            labels = [l for l, _, _ in impls if any(k[:2] == (direction, l) for k in row)]
            lines += ["", "#### %s, %s" % (loop, direction), "",
                      "| N in flight | " + " | ".join("%s, µs per op" % l for l in labels)
                      + " | pyasio ÷ `%s` |" % impls[-1][0],
                      "|---|" + "---|" * (len(labels) + 1)]
            for n in args.sizes:
                cells = [fmt(row[(direction, l, n)]) if (direction, l, n) in row else "—"
                         for l in labels]
                ratio = row[(direction, "pyasio", n)][0] / row[(direction, impls[-1][0], n)][0]
                lines.append("| %d | %s | %.2f |" % (n, " | ".join(cells), ratio))
    return "\n".join(lines)


def plot_inflight(plt, results, path):
    loops = list(results)
    fig, axes = plt.subplots(len(loops), 2, figsize=(11, 4 * len(loops)), squeeze=False)
    for i, loop in enumerate(loops):
        row = results[loop]
        for j, (direction, impls) in enumerate(DIRECTIONS.items()):
            ax = axes[i][j]
            for label, _, _ in impls:
                points = sorted((k[2], v) for k, v in row.items() if k[:2] == (direction, label))
                if not points:
                    continue
                xs = [p[0] for p in points]
                ax.errorbar(xs, [p[1][0] for p in points], yerr=error_bars([p[1] for p in points]),
                            marker="o", capsize=3, label=label)
            ax.set_xscale("log")
            ax.set_ylim(bottom=0)
            ax.set_title("%s: %s" % (loop, direction))
            ax.set_xlabel("operations in flight at once")
            ax.set_ylabel("µs per operation")
            ax.grid(True, alpha=0.3)
            ax.legend()
    save(plt, fig, path)


# --- threads ------------------------------------------------------------------------------------


async def throughput(m, n, us):
    """Operations per second: n spin(us) at once, then n noop() at once."""
    await m.noop()  # the runtime (the pool) starts before the clock does
    t = time.perf_counter()
    await asyncio.gather(*[m.spin(us) for _ in range(n)])
    spin = n / (time.perf_counter() - t)
    t = time.perf_counter()
    await asyncio.gather(*[m.noop() for _ in range(n)])
    return {"spin": spin, "noop": n / (time.perf_counter() - t)}


def threads_worker(args, loop, module, threads):
    """In a fresh interpreter: configures the thread count, measures, prints JSON."""
    m = __import__(module)
    if module == "pybind11_peer":
        m.configure_pool(threads)
    else:
        m.configure_runtime(threads)
    print(json.dumps(run_on(loop_factories()[loop], throughput(m, args.threads_n, SPIN_US))))


def measure_threads(args, modules, loop):
    samples = {}
    for _ in range(args.repeat):
        for threads in args.thread_counts:
            for label, module in [("pyasio", "pyasio_bench"), ("pybind11 peer", "pybind11_peer")]:
                if module == "pybind11_peer" and "peer" not in modules:
                    continue
                out = subprocess.run(
                    [sys.executable, __file__, "--module-dir", args.module_dir,
                     "--threads-n", str(args.threads_n),
                     "--threads-worker", loop, module, str(threads)],
                    check=True, capture_output=True, text=True).stdout
                for workload, value in json.loads(out.splitlines()[-1]).items():
                    samples.setdefault((workload, label, threads), []).append(value)
    return {k: spread(v) for k, v in samples.items()}


def report_threads(args, results):
    lines = ["Operations per second, median (min–max) of %d runs, each in a fresh interpreter; "
             "%d operations at once. `spin`: each keeps a C++ thread busy for %d µs (the "
             "most one thread can do is %d per second); `noop`: none. %d cores."
             % (args.repeat, args.threads_n, SPIN_US, 1_000_000 // SPIN_US, os.cpu_count())]
    for loop, row in results.items():
        labels = sorted({k[1] for k in row}, key=lambda l: l != "pyasio")
        lines += ["", "#### %s" % loop, "",
                  "| C++ threads | " + " | ".join("`%s` %s, ops/s" % (w, l)
                                                  for w in ("spin", "noop") for l in labels)
                  + " |", "|---|" + "---|" * (2 * len(labels))]
        for threads in args.thread_counts:
            cells = [fmt(row[(w, l, threads)], 0) for w in ("spin", "noop") for l in labels]
            lines.append("| %d | %s |" % (threads, " | ".join(cells)))
    return "\n".join(lines)


def plot_threads(plt, results, path):
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for j, workload in enumerate(["spin", "noop"]):
        ax = axes[j]
        for loop, row in results.items():
            for label in sorted({k[1] for k in row}, key=lambda l: l != "pyasio"):
                points = sorted((k[2], v) for k, v in row.items() if k[:2] == (workload, label))
                ax.errorbar([p[0] for p in points], [p[1][0] for p in points],
                            yerr=error_bars([p[1] for p in points]),
                            marker="o", capsize=3, label="%s, %s" % (label, loop))
        ax.axvline(os.cpu_count(), color="grey", linestyle=":", label="cores")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0)
        ax.set_title("%s: %s" % (workload, "CPU work in C++" if workload == "spin"
                                   else "no work"))
        ax.set_xlabel("C++ threads (runtime / pool)")
        ax.set_ylabel("operations per second")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    save(plt, fig, path)


# --- latency ------------------------------------------------------------------------------------


async def round_trips(fn, count):
    """Seconds of each of count sequential `await fn()`, after a warm-up."""
    for _ in range(100):
        await fn()
    clock = time.perf_counter_ns
    out = []
    for _ in range(count):
        t = clock()
        await fn()
        out.append(clock() - t)
    return out


async def py_threadsafe_trips(count):
    loop = asyncio.get_running_loop()
    requests = queue.SimpleQueue()

    def worker():
        while (f := requests.get()) is not None:
            loop.call_soon_threadsafe(f.set_result, None)

    def one():
        f = loop.create_future()
        requests.put(f)
        return f

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        return await round_trips(one, count)
    finally:
        requests.put(None)
        thread.join()


def percentiles(ns):
    ns = sorted(ns)
    at = {p: ns[min(len(ns) - 1, int(len(ns) * p / 100))] / 1000 for p in PERCENTILES}
    at["max"] = ns[-1] / 1000
    return at


def measure_latency(args, modules, factory):
    impls = [("pyasio", lambda: round_trips(modules["pyasio"].noop, args.trips))]
    if "peer" in modules:
        impls.append(("pybind11 peer", lambda: round_trips(modules["peer"].noop, args.trips)))
    impls.append(("py_threadsafe", lambda: py_threadsafe_trips(args.trips)))
    samples = {}
    for _ in range(args.repeat):
        for label, run in impls:
            for p, value in percentiles(run_on(factory, run())).items():
                samples.setdefault((label, p), []).append(value)
    return {k: spread(v) for k, v in samples.items()}


def report_latency(args, results):
    columns = PERCENTILES + ["max"]
    lines = ["Microseconds for one `await noop()`, timed one by one (%d in a row per run, after "
             "100 not counted); each percentile is the median (min–max) of its value in %d runs."
             % (args.trips, args.repeat)]
    for loop, row in results.items():
        labels = list(dict.fromkeys(k[0] for k in row))
        lines += ["", "#### %s" % loop, "",
                  "| | " + " | ".join("p%g" % p if p != "max" else "slowest" for p in columns)
                  + " |", "|---|" + "---|" * len(columns)]
        for label in labels:
            lines.append("| %s | %s |" % (label, " | ".join(fmt(row[(label, p)], 1)
                                                            for p in columns)))
    return "\n".join(lines)


def plot_latency(plt, results, path):
    loops = list(results)
    fig, axes = plt.subplots(1, len(loops), figsize=(5.5 * len(loops), 4), squeeze=False)
    xs = list(range(len(PERCENTILES)))
    for i, loop in enumerate(loops):
        ax = axes[0][i]
        row = results[loop]
        for label in dict.fromkeys(k[0] for k in row):
            values = [row[(label, p)] for p in PERCENTILES]
            ax.errorbar(xs, [v[0] for v in values], yerr=error_bars(values),
                        marker="o", capsize=3, label=label)
        ax.set_xticks(xs)
        ax.set_xticklabels(["p%g" % p for p in PERCENTILES])
        ax.set_yscale("log")
        ax.set_title("%s: one await noop() round trip" % loop)
        ax.set_ylabel("µs (log scale)")
        ax.grid(True, alpha=0.3, which="both")
        ax.legend()
    save(plt, fig, path)


# --- memory -------------------------------------------------------------------------------------


def measure_memory(args, modules, loop):
    kinds = [("pyasio", "sleep_ms", "pyasio_bench")]
    if "peer" in modules:
        kinds.append(("pybind11 peer", "sleep_ms", "pybind11_peer"))
    kinds.append(("py_call_later", "py_call_later", "pyasio_bench"))
    results = {}
    for count in args.memory_counts:
        for label, kind, module in kinds:
            out = subprocess.run(
                [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                              "future_into_py.py"),
                 "--module-dir", args.module_dir, "--memory", loop, kind, str(count), module],
                check=True, capture_output=True, text=True).stdout
            results[(label, count)] = json.loads(out.splitlines()[-1])
    return results


def report_memory(args, results):
    lines = ["Bytes per `sleep_ms` in flight: the growth of the resident set with N in flight "
             "at once, divided by N (one run each, in a fresh interpreter)."]
    for loop, row in results.items():
        labels = list(dict.fromkeys(k[0] for k in row))
        lines += ["", "#### %s" % loop, "",
                  "| N in flight | " + " | ".join("%s, bytes per op" % l for l in labels) + " |",
                  "|---|" + "---|" * len(labels)]
        for n in args.memory_counts:
            lines.append("| %d | %s |" % (n, " | ".join("%.0f" % row[(l, n)] for l in labels)))
    return "\n".join(lines)


def plot_memory(plt, results, path):
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for loop, row in results.items():
        for label in dict.fromkeys(k[0] for k in row):
            points = sorted((k[1], v) for k, v in row.items() if k[0] == label)
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                    label="%s, %s" % (label, loop))
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_title("memory per operation in flight")
    ax.set_xlabel("operations in flight at once")
    ax.set_ylabel("bytes per operation")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    save(plt, fig, path)


# --- driver -------------------------------------------------------------------------------------

MEASURE = {"inflight": measure_inflight, "threads": measure_threads,
           "latency": measure_latency, "memory": measure_memory}
REPORT = {"inflight": report_inflight, "threads": report_threads,
          "latency": report_latency, "memory": report_memory}
PLOT = {"inflight": plot_inflight, "threads": plot_threads, "latency": plot_latency,
        "memory": plot_memory}
BY_LOOP_NAME = {"threads", "memory"}  # measured in subprocesses, which take the loop's name


def check(kind, results):
    """Every figure is a positive number (a smoke run must not pass on an empty table)."""
    for loop, row in results.items():
        if not row:
            raise SystemExit("%s on %s: nothing measured" % (kind, loop))
        for key, value in row.items():
            values = value if isinstance(value, tuple) else (value,)
            if not all(v > 0 for v in values):
                raise SystemExit("%s on %s: %r is %r" % (kind, loop, key, value))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--module-dir", required=True, help="directory holding pyasio_bench")
    p.add_argument("--only", nargs="+", choices=KINDS, default=KINDS, help="what to measure")
    p.add_argument("--repeat", type=int, default=3, help="runs of each point")
    p.add_argument("--sizes", type=int, nargs="+", default=[10**k for k in range(7)],
                   help="operations in flight (inflight)")
    p.add_argument("--rounds-ops", type=int, default=20_000,
                   help="operations per inflight point at least (small N run several rounds)")
    p.add_argument("--peer-max", type=int, default=100_000,
                   help="the peer's largest inflight point")
    p.add_argument("--thread-counts", type=int, nargs="+",
                   default=list(range(1, 2 * os.cpu_count() + 1)))
    p.add_argument("--threads-n", type=int, default=20_000, help="operations at once (threads)")
    p.add_argument("--trips", type=int, default=50_000, help="round trips per run (latency)")
    p.add_argument("--memory-counts", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--write", metavar="PAGE", help="replace this script's sections of PAGE")
    p.add_argument("--plots", metavar="DIR", help="write the PNG plots there")
    p.add_argument("--smoke", action="store_true", help="tiny counts, results checked")
    p.add_argument("--threads-worker", nargs=3, metavar=("LOOP", "MODULE", "THREADS"),
                   help=argparse.SUPPRESS)
    args = p.parse_args()
    sys.path.insert(0, args.module_dir)
    if args.smoke:
        args.repeat, args.sizes, args.rounds_ops, args.peer_max = 1, [1, 10, 100], 200, 100
        args.thread_counts, args.threads_n, args.trips = [1, 2], 200, 200
        args.memory_counts = [2000]
    if args.threads_worker:
        loop, module, threads = args.threads_worker
        threads_worker(args, loop, module, int(threads))
        return

    import pyasio_bench
    modules = {"pyasio": pyasio_bench}
    try:
        import pybind11_peer
    except ImportError:
        print("pybind11_peer: not built, skipped (Debian: apt-get install pybind11-dev)")
    else:
        modules["peer"] = pybind11_peer
    plt = pyplot() if args.plots else None
    if plt is not None:
        os.makedirs(args.plots, exist_ok=True)
    for kind in args.only:
        started = time.perf_counter()
        results = {}
        for name, factory in loop_factories().items():
            results[name] = MEASURE[kind](args, modules,
                                          name if kind in BY_LOOP_NAME else factory)
        check(kind, results)
        text = ("Measured by `bench/curves.py` on %s. " % machine()) + REPORT[kind](args, results)
        print(text, "\n(%s: %.0f s)\n" % (kind, time.perf_counter() - started))
        if args.write:
            write_section(args.write, text, begin_marker(kind), end_marker(kind))
        if plt is not None:
            path = os.path.join(args.plots, "bench-%s.png" % kind)
            PLOT[kind](plt, results, path)
            print("wrote", path)


if __name__ == "__main__":
    main()
