# SPDX-License-Identifier: BSL-1.0
"""Python awaits C++: pyasio_bench against pure-Python floors, on one loop, in one run.

Measures microseconds per operation for
  seq_noop          N sequential `await noop()`
  gather_noop       one gather of N `noop()`
  seq_echo          N sequential `await echo(i)`
  await_seq         C++ on the runtime awaits N Python coroutines in a row (into_future)
  await_concurrent  C++ on the runtime starts N Python coroutines at once and awaits them all
  await_seq_local, await_concurrent_local  the same, C++ on the loop executor (no thread hop)
and the pure-Python floors, measured in the same run on the same loop:
  py_soon_gather     N x (loop.create_future() + loop.call_soon(f.set_result, None)), one gather:
                     Python's own share of gather_noop
  py_threadsafe_seq  a worker thread completes each future with call_soon_threadsafe, ping-pong
  py_executor_seq    N sequential `await loop.run_in_executor(None, f)`
  py_seq_task        N x `await asyncio.ensure_future(coro())`
  py_gather_tasks    `await asyncio.gather(*(coro() for _ in range(N)))`
  py_threadsafe_await_seq         a worker thread runs N coroutines on the loop in a row
                                  (run_coroutine_threadsafe(...).result()): the hand-written hop
  py_threadsafe_await_concurrent  the same, N submitted at once, then waited for
the same workloads (the first five) on the hand-rolled pybind11 bridge, bench/pybind11_peer.cpp,
when it was built (Debian: pybind11-dev): a worker pool that takes the GIL and calls
loop.call_soon_threadsafe per completion, and run_coroutine_threadsafe for C++ awaiting Python;
on 3.12 and later, every workload on the same module built on the limited API (abi3:
pyasio_bench_abi3, Py_LIMITED_API=0x030C0000) beside the full-API build; and the memory of one
operation in flight: the RSS growth with M `sleep_ms` in flight at once,
divided by M (in a fresh interpreter, so that no freed memory is reused), beside the same for
M pure-Python futures completed by `loop.call_later`.

Usage (after building the CMake target pyasio_bench):
  python3 bench/future_into_py.py --module-dir BUILD/bench [--write docs/benchmarks.md]
--smoke runs everything with tiny counts and checks the results (used by the test command).
"""

import argparse
import asyncio
import concurrent.futures
import functools
import gc
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time

TARGETS = {  # the issues' targets, as ratios measured in the same run
    "gather_noop": ("py_soon_gather", 1.5),
    "seq_noop": ("py_threadsafe_seq", 1.0),
    "await_seq": ("py_threadsafe_seq", 1.0),
    "await_concurrent": ("py_gather_tasks", 1.5),
    "await_seq_local": ("py_seq_task", 1.5),
}
FLOORS = {  # workloads without a target, shown against their pure-Python counterpart
    "await_concurrent_local": "py_gather_tasks",
}
PEER_WORKLOADS = ["seq_noop", "gather_noop", "seq_echo", "await_seq", "await_concurrent"]
BYTES_TARGET = 1536
ABI3_TARGET = 1.15  # the abi3 build's time per operation ÷ the full-API build's
BEGIN = "<!-- bench/future_into_py.py: begin -->"
END = "<!-- bench/future_into_py.py: end -->"


@functools.lru_cache(maxsize=None)  # says once that uvloop is missing
def loop_factories():
    """The loops to measure on: asyncio's default, and uvloop where it is installed."""
    factories = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:
        print("uvloop: not installed, skipped (Debian: apt-get install python3-uvloop)")
    else:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


def run_on(factory, coro):
    loop = factory()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


# --- the workloads: each returns seconds for n operations ------------------------------------


async def seq_noop(m, n):
    t = time.perf_counter()
    for _ in range(n):
        await m.noop()
    return time.perf_counter() - t


async def gather_noop(m, n):
    t = time.perf_counter()
    await asyncio.gather(*[m.noop() for _ in range(n)])
    return time.perf_counter() - t


async def seq_echo(m, n):
    t = time.perf_counter()
    for i in range(n):
        if await m.echo(i) != i:
            raise AssertionError("echo returned a different value")
    return time.perf_counter() - t


async def py_soon_gather(m, n):
    loop = asyncio.get_running_loop()
    t = time.perf_counter()
    futures = []
    for _ in range(n):
        f = loop.create_future()
        loop.call_soon(f.set_result, None)
        futures.append(f)
    await asyncio.gather(*futures)
    return time.perf_counter() - t


async def py_threadsafe_seq(m, n):
    loop = asyncio.get_running_loop()
    requests = queue.SimpleQueue()

    def worker():
        while (f := requests.get()) is not None:
            loop.call_soon_threadsafe(f.set_result, None)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        t = time.perf_counter()
        for _ in range(n):
            f = loop.create_future()
            requests.put(f)
            await f
        return time.perf_counter() - t
    finally:
        requests.put(None)
        thread.join()


async def py_executor_seq(m, n):
    loop = asyncio.get_running_loop()
    t = time.perf_counter()
    for _ in range(n):
        await loop.run_in_executor(None, int)
    return time.perf_counter() - t


async def py_noop():
    pass


async def await_seq(m, n, fn="await_seq"):
    t = time.perf_counter()
    if await getattr(m, fn)(py_noop, n) != n:
        raise AssertionError("%s did not await every coroutine" % fn)
    return time.perf_counter() - t


async def await_concurrent(m, n, fn="await_concurrent"):
    t = time.perf_counter()
    if await getattr(m, fn)(py_noop, n) != n:
        raise AssertionError("%s did not await every coroutine" % fn)
    return time.perf_counter() - t


async def await_seq_local(m, n):
    return await await_seq(m, n, "await_seq_local")


async def await_concurrent_local(m, n):
    return await await_concurrent(m, n, "await_concurrent_local")


async def py_seq_task(m, n):
    t = time.perf_counter()
    for _ in range(n):
        await asyncio.ensure_future(py_noop())
    return time.perf_counter() - t


async def py_gather_tasks(m, n):
    t = time.perf_counter()
    await asyncio.gather(*(py_noop() for _ in range(n)))
    return time.perf_counter() - t


async def in_worker_thread(job):
    """Runs job(loop) on a new thread while the loop runs; seconds it took."""
    loop = asyncio.get_running_loop()
    result = []
    thread = threading.Thread(target=lambda: result.append(job(loop)))
    t = time.perf_counter()
    thread.start()
    while thread.is_alive():
        await asyncio.sleep(0.001)
    thread.join()
    return time.perf_counter() - t


async def py_threadsafe_await_seq(m, n):
    def job(loop):
        for _ in range(n):
            asyncio.run_coroutine_threadsafe(py_noop(), loop).result()

    return await in_worker_thread(job)


async def py_threadsafe_await_concurrent(m, n):
    def job(loop):
        futures = [asyncio.run_coroutine_threadsafe(py_noop(), loop) for _ in range(n)]
        concurrent.futures.wait(futures)

    return await in_worker_thread(job)


WORKLOADS = [seq_noop, gather_noop, seq_echo, await_seq, await_concurrent, await_seq_local,
             await_concurrent_local, py_soon_gather, py_threadsafe_seq, py_executor_seq,
             py_seq_task, py_gather_tasks, py_threadsafe_await_seq, py_threadsafe_await_concurrent]
OURS = [w.__name__ for w in WORKLOADS if not w.__name__.startswith("py_")]  # pyasio's workloads


async def check_results(m, local=True):
    """The benchmark interface does what it says (a benchmark of wrong results is worthless).
    local: m has the loop-executor workloads too (the pybind11 peer has not)."""
    assert await m.noop() is None
    marker = object()
    assert await m.echo(marker) is marker
    assert await m.sleep_ms(1) is None
    assert await m.await_seq(py_noop, 3) == 3
    assert await m.await_concurrent(py_noop, 3) == 3
    if local:
        assert await m.await_seq_local(py_noop, 3) == 3
        assert await m.await_concurrent_local(py_noop, 3) == 3
    try:
        await m.fail("boom")
    except ValueError as e:
        assert str(e) == "boom", e
    else:
        raise AssertionError("fail() did not raise")


# --- memory per operation in flight (run in a fresh interpreter) --------------------------------


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def inflight_bytes(m, kind, count):
    loop = asyncio.get_running_loop()
    # Warm up: the runtime's threads, the loop bridge and the caches exist before the baseline.
    await m.sleep_ms(1)
    gc.collect()
    gc.disable()
    before = rss_bytes()
    if kind == "sleep_ms":
        futures = [m.sleep_ms(600_000) for _ in range(count)]
    else:  # the pure-Python floor: a future completed by a loop timer
        futures = []
        for _ in range(count):
            f = loop.create_future()
            loop.call_later(600, f.set_result, None)
            futures.append(f)
    # Let the runtime start every operation: wait until the resident set stops growing.
    after = rss_bytes()
    while True:
        await asyncio.sleep(0.25)
        now = rss_bytes()
        if now - after <= (now - before) // 100:
            break
        after = now
    after = now
    for f in futures:
        f.cancel()
    await asyncio.gather(*futures, return_exceptions=True)
    gc.enable()
    return (after - before) / count


# --- the report ---------------------------------------------------------------------------------


def summarize(samples):
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


def measure(args, m, peer, abi3):
    factories = loop_factories()
    results = {}
    runs = [(w.__name__, w, m) for w in WORKLOADS]
    if peer is not None:
        runs += [("peer_" + w.__name__, w, peer) for w in WORKLOADS if w.__name__ in PEER_WORKLOADS]
    if abi3 is not None:
        runs += [("abi3_" + w.__name__, w, abi3) for w in WORKLOADS if w.__name__ in OURS]
    for name, factory in factories.items():
        samples = {key: [] for key, _, _ in runs}
        run_on(factory, check_results(m))
        if peer is not None:
            run_on(factory, check_results(peer, local=False))
        if abi3 is not None:
            run_on(factory, check_results(abi3))
        for _ in range(args.repeat):  # interleaved, so that a slow moment hits every workload
            for key, w, module in runs:
                seconds = run_on(factory, w(module, args.n))
                samples[key].append(seconds / args.n * 1e6)
        row = {k: summarize(v) for k, v in samples.items()}
        kinds = [("sleep_ms", "pyasio_bench"), ("py_call_later", "pyasio_bench")]
        if peer is not None:
            kinds.append(("sleep_ms", "pybind11_peer"))
        for kind, module in kinds:
            out = subprocess.run(
                [sys.executable, __file__, "--module-dir", args.module_dir,
                 "--memory", name, kind, str(args.inflight), module],
                check=True, capture_output=True, text=True).stdout
            key = "bytes_" + kind + ("_peer" if module == "pybind11_peer" else "")
            row[key] = json.loads(out.splitlines()[-1])
        results[name] = row
    return results


def machine():
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return "%s, %d cores, Linux %s, Python %s (%s)" % (
        cpu, os.cpu_count(), platform.release(), platform.python_version(), sys.executable)


def report(args, results):
    lines = [
        "Measured by `bench/future_into_py.py` on %s; %d operations per workload, median of %d "
        "runs (interleaved), fastest and slowest in brackets; memory with %d operations in flight."
        % (machine(), args.n, args.repeat, args.inflight), ""]
    for loop, row in results.items():
        peer = "peer_seq_noop" in row
        abi3 = "abi3_seq_noop" in row
        lines += ["### %s" % loop, "",
                  "| workload | µs per op, median (min–max) | ratio to its floor | target |"
                  + (" pybind11 peer, µs per op | pyasio ÷ peer |" if peer else "")
                  + (" abi3 build, µs per op | abi3 ÷ full (target ≤ %.2f) |" % ABI3_TARGET
                     if abi3 else ""),
                  "|---|---|---|---|" + ("---|---|" if peer else "") + ("---|---|" if abi3 else "")]
        for w in WORKLOADS:
            s = row[w.__name__]
            ratio = target = ""
            if w.__name__ in TARGETS:
                floor, limit = TARGETS[w.__name__]
                r = s["median"] / row[floor]["median"]
                ratio = "%.2f × `%s`" % (r, floor)
                target = "≤ %.1f× %s" % (limit, "met" if r <= limit else "**missed**")
            elif w.__name__ in FLOORS:
                floor = FLOORS[w.__name__]
                ratio = "%.2f × `%s`" % (s["median"] / row[floor]["median"], floor)
            line = "| `%s` | %.2f (%.2f–%.2f) | %s | %s |" % (
                w.__name__, s["median"], s["min"], s["max"], ratio, target)
            if peer:
                p = row.get("peer_" + w.__name__)
                line += (" %.2f (%.2f–%.2f) | %.2f |" % (p["median"], p["min"], p["max"],
                                                        s["median"] / p["median"])
                         if p else " | |")
            if abi3:
                a = row.get("abi3_" + w.__name__)
                if a:
                    r = a["median"] / s["median"]
                    line += " %.2f (%.2f–%.2f) | %.2f %s |" % (
                        a["median"], a["min"], a["max"], r,
                        "met" if r <= ABI3_TARGET else "**missed**")
                else:
                    line += " | |"
            lines.append(line)
        b = row["bytes_sleep_ms"]
        lines += ["", "Bytes per operation in flight: `sleep_ms` %.0f B (target ≤ %d B, %s); "
                  "pure-Python floor (a future and a `call_later` timer) %.0f B."
                  % (b, BYTES_TARGET, "met" if b <= BYTES_TARGET else "**missed**",
                     row["bytes_py_call_later"])
                  + (" The pybind11 peer's `sleep_ms`: %.0f B." % row["bytes_sleep_ms_peer"]
                     if peer else ""), ""]
    return "\n".join(lines)


def pyplot():
    """matplotlib.pyplot on the Agg backend, or None (with a note) where it is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("python3-matplotlib not installed: plots skipped "
              "(Debian: apt-get install python3-matplotlib)")
        return None
    return plt


def write_section(path, text, begin=BEGIN, end=END):
    """Replaces the text between the markers begin and end in the page at path."""
    with open(path) as f:
        page = f.read()
    if begin not in page or end not in page:
        raise SystemExit("%s has no '%s' ... '%s' section to replace" % (path, begin, end))
    head, rest = page.split(begin, 1)
    tail = rest.split(end, 1)[1]
    with open(path, "w") as f:
        f.write(head + begin + "\n" + text + "\n" + end + tail)


def error_bars(values):
    """Matplotlib's yerr/xerr for points given as (median, min, max): from fastest to slowest."""
    return [[v[0] - v[1] for v in values], [v[2] - v[0] for v in values]]


def save(plt, fig, path):
    """Lays out, writes and closes a figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def publish(args, text, begin, end, started, plot=None):
    """Prints a report; --write replaces its section of the page; --plots calls plot(dir),
    which returns the path it wrote, or None; prints how long the script took."""
    print(text)
    if args.write:
        write_section(args.write, text, begin, end)
        print("wrote", args.write)
    if args.plots and plot is not None:
        path = plot(args.plots)
        if path:
            print("wrote", path)
    print("took %.0f s" % (time.perf_counter() - started), file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--module-dir", required=True, help="directory holding pyasio_bench")
    p.add_argument("--n", type=int, default=20_000, help="operations per workload")
    p.add_argument("--repeat", type=int, default=5, help="runs of each workload")
    p.add_argument("--inflight", type=int, default=200_000, help="operations in flight at once")
    p.add_argument("--write", metavar="PAGE", help="replace this script's section of PAGE")
    p.add_argument("--smoke", action="store_true", help="tiny counts, results checked")
    p.add_argument("--memory", nargs=4, metavar=("LOOP", "KIND", "COUNT", "MODULE"),
                   help=argparse.SUPPRESS)
    args = p.parse_args()
    sys.path.insert(0, args.module_dir)
    import pyasio_bench

    if args.memory:
        loop, kind, count, module = args.memory
        print(json.dumps(run_on(loop_factories()[loop],
                                inflight_bytes(__import__(module), kind, int(count)))))
        return
    try:
        import pybind11_peer
    except ImportError:
        pybind11_peer = None
        print("pybind11_peer: not built, skipped (Debian: apt-get install pybind11-dev)")
    try:
        import pyasio_bench_abi3
    except ImportError:
        pyasio_bench_abi3 = None
        print("pyasio_bench_abi3: not built (Python 3.12+ only), abi3 column skipped")
    if args.smoke:
        args.n, args.repeat, args.inflight = 200, 1, 2000
    text = report(args, measure(args, pyasio_bench, pybind11_peer, pyasio_bench_abi3))
    print(text)
    if args.write:
        write_section(args.write, text)
        print("wrote", args.write)


if __name__ == "__main__":
    main()
