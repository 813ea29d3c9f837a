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
  cpp_eventfd_ping_pong  two C++ threads hand a token back and forth through two eventfds (no
                     Python, no loop): the least a cross-thread round trip costs on the host
  py_executor_seq    N sequential `await loop.run_in_executor(None, f)`
  py_seq_task        N x `await asyncio.ensure_future(coro())`
  py_gather_tasks    `await asyncio.gather(*(coro() for _ in range(N)))`
  py_threadsafe_await_seq         a worker thread runs N coroutines on the loop in a row
                                  (run_coroutine_threadsafe(...).result()): the hand-written hop
  py_threadsafe_await_concurrent  the same, N submitted at once, then waited for
on trio, where trio is installed (python3-trio), the same pyasio workloads written the trio way
(in a trio.run; trio has no gather, so gather_noop is a nursery of N tasks, each running
noop()), against trio's own floors in the same run:
  trio_threadsafe_seq         py_threadsafe_seq on trio: a worker thread completes each round trip
                              with TrioToken.run_sync_soon(event.set), ping-pong
  trio_from_thread_seq        the same with trio.from_thread.run_sync (the worker also waits
                              for trio to have run it)
  trio_to_thread_seq          N sequential `await trio.to_thread.run_sync(int)` (py_executor_seq)
  trio_seq_task               N x (a nursery that runs one coro()) (py_seq_task)
  trio_nursery_tasks          one nursery of N coro() tasks (py_gather_tasks)
  trio_nursery_checkpoints    the same, each task parking once (trio.lowlevel.checkpoint())
  trio_from_thread_await_seq  a worker thread runs N coroutines on the trio run in a row
                              (trio.from_thread.run) (py_threadsafe_await_seq)
the same workloads (the first five; asyncio and uvloop only) on the hand-rolled pybind11 bridge,
bench/pybind11_peer.cpp, when it was built (Debian: pybind11-dev): a worker pool that takes the
GIL and calls loop.call_soon_threadsafe per completion, and run_coroutine_threadsafe for C++
awaiting Python; on 3.12 and later, every workload on the same module built on the limited API
(abi3: pyasio_bench_abi3, Py_LIMITED_API=0x030C0000) beside the full-API build; and the memory
of one operation in flight (asyncio and uvloop): the RSS growth with M `sleep_ms` in flight at
once, divided by M (in a fresh interpreter, so that no freed memory is reused), beside the same
for M pure-Python futures completed by `loop.call_later`.

Usage (after building the CMake target pyasio_bench):
  python3 bench/future_into_py.py --module-dir BUILD/bench [--write docs/benchmarks.md]
--smoke runs everything with tiny counts and checks the results (used by the test command);
--loops picks the loops (asyncio, uvloop, trio; default: every one installed), --inflight 0
skips the memory figures, --json PATH writes every sample (bench/before_after.py reads it).
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

TARGETS = {  # issue 22's targets, as ratios measured in the same run, on asyncio and uvloop
    "gather_noop": ("py_soon_gather", 1.3),
    "seq_noop": ("py_threadsafe_seq", 1.0),
    "await_seq": ("py_threadsafe_seq", 1.0),
    "await_concurrent": ("py_gather_tasks", 1.3),
    "await_seq_local": ("py_seq_task", 1.3),
}
# A second target beside the first: seq_noop against two C++ threads that ping-pong through two
# eventfds, the least any cross-thread round trip costs on this host
SECOND_TARGETS = {"seq_noop": ("cpp_eventfd_ping_pong", 1.5)}
FLOORS = {  # workloads without a target, shown against their pure-Python counterpart
    "await_concurrent_local": "py_gather_tasks",
}
TRIO_TARGETS = {  # issue 21's targets on trio, against trio's floors in the same run
    "seq_noop": ("trio_threadsafe_seq", 1.0),
    "gather_noop": ("trio_nursery_tasks", 1.5),
}
# A second floor beside the target's: what the same tasks cost when each parks once, as every
# task that awaits C++ must (issue 21's floor for gather_noop never parks)
ALSO = {"gather_noop": "trio_nursery_checkpoints", "await_concurrent": "trio_nursery_checkpoints"}
TRIO_FLOORS = {  # the other trio workloads, against their nearest trio floor
    "seq_echo": "trio_threadsafe_seq",
    "await_seq": "trio_threadsafe_seq",
    "await_concurrent": "trio_nursery_tasks",
    "await_seq_local": "trio_seq_task",
    "await_concurrent_local": "trio_nursery_tasks",
}
PEER_WORKLOADS = ["seq_noop", "gather_noop", "seq_echo", "await_seq", "await_concurrent"]
BYTES_TARGET = 600
ABI3_TARGET = 1.15  # the abi3 build's time per operation ÷ the full-API build's
BEGIN = "<!-- bench/future_into_py.py: begin -->"
END = "<!-- bench/future_into_py.py: end -->"
TRIO_BEGIN = "<!-- bench/future_into_py.py trio: begin -->"  # trio's tables: a section of their own
TRIO_END = "<!-- bench/future_into_py.py trio: end -->"


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


@functools.lru_cache(maxsize=None)  # says once that trio is missing
def trio_module():
    """trio, or None (with a note) where it is not installed."""
    try:
        import trio
    except ImportError:
        print("trio: not installed, trio column skipped (Debian: apt-get install python3-trio)")
        return None
    return trio


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


async def cpp_eventfd_ping_pong(m, n):
    """Two C++ threads (no Python, GIL released) hand a token back and forth through two
    eventfds, n round trips: the floor of a cross-thread round trip on this host."""
    return m.eventfd_ping_pong(n)


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


# --- the same on trio: each runs in a trio.run and returns seconds for n operations -------------
# seq_noop, seq_echo and the await_* workloads above are written without asyncio: trio runs them
# as they are (C++ awaiting Python starts py_noop as a trio system task). gather_noop is not.


async def nursery_noop(m, n):
    """gather_noop the trio way: one nursery of n tasks, each running noop() (what Python gets from
    a pyasio function in a trio run is a coroutine, so start_soon takes the function itself), as
    gather wraps each noop() in a task of its own."""
    trio = trio_module()
    t = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(m.noop)
    return time.perf_counter() - t


async def trio_nursery_tasks(m, n):
    """py_gather_tasks on trio: one nursery of n py_noop() tasks."""
    trio = trio_module()
    t = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(py_noop)
    return time.perf_counter() - t


async def trio_nursery_checkpoints(m, n):
    """trio_nursery_tasks whose tasks each park once: `await trio.lowlevel.checkpoint()` (the task
    yields to trio's scheduler and is rescheduled), the least a task that waits for anything
    costs. Every pyasio call parks its task until C++ answers."""
    trio = trio_module()

    async def park():
        await trio.lowlevel.checkpoint()

    t = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(park)
    return time.perf_counter() - t


async def trio_ping_pong(n, complete):
    """n round trips in a row: a plain thread completes each with complete(token, event), and
    the trio task awaits the event (a trio.Event is the future: Event() for create_future(), set
    for set_result, wait() for the await)."""
    trio = trio_module()
    token = trio.lowlevel.current_trio_token()
    requests = queue.SimpleQueue()

    def worker():
        while (event := requests.get()) is not None:
            complete(token, event)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        t = time.perf_counter()
        for _ in range(n):
            event = trio.Event()
            requests.put(event)
            await event.wait()
        return time.perf_counter() - t
    finally:
        requests.put(None)
        thread.join()


async def trio_threadsafe_seq(m, n):
    """py_threadsafe_seq on trio. NOTE: TrioToken.run_sync_soon is the exact counterpart of
    call_soon_threadsafe: the worker queues the callback and goes back to its queue at once.
    trio.from_thread.run_sync also blocks the worker until trio ran the callback:
    trio_from_thread_seq."""
    return await trio_ping_pong(n, lambda token, event: token.run_sync_soon(event.set))


async def trio_from_thread_seq(m, n):
    """trio_threadsafe_seq with trio's documented way in from a thread: from_thread.run_sync."""
    return await trio_ping_pong(n, lambda token, event: trio_module().from_thread.run_sync(
        event.set, trio_token=token))


async def trio_to_thread_seq(m, n):
    """py_executor_seq on trio: n sequential trio.to_thread.run_sync(int)."""
    trio = trio_module()
    t = time.perf_counter()
    for _ in range(n):
        await trio.to_thread.run_sync(int)
    return time.perf_counter() - t


async def trio_seq_task(m, n):
    """py_seq_task on trio (a task started and awaited, n times in a row): n nurseries in a row,
    each running one py_noop() task."""
    trio = trio_module()
    t = time.perf_counter()
    for _ in range(n):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(py_noop)
    return time.perf_counter() - t


async def trio_from_thread_await_seq(m, n):
    """py_threadsafe_await_seq on trio: a worker thread runs n py_noop() on the run in a row with
    trio.from_thread.run (the hand-written hop); the run polls for the thread's end as
    in_worker_thread does."""
    trio = trio_module()
    token = trio.lowlevel.current_trio_token()

    def job():
        for _ in range(n):
            trio.from_thread.run(py_noop, trio_token=token)

    thread = threading.Thread(target=job)
    t = time.perf_counter()
    thread.start()
    while thread.is_alive():
        await trio.sleep(0.001)
    thread.join()
    return time.perf_counter() - t


# NOTE: py_threadsafe_await_concurrent has no trio counterpart here: trio.from_thread.run blocks
# its thread, so n at once would take n threads
TRIO_WORKLOADS = [("seq_noop", seq_noop), ("gather_noop", nursery_noop), ("seq_echo", seq_echo),
                  ("await_seq", await_seq), ("await_concurrent", await_concurrent),
                  ("await_seq_local", await_seq_local),
                  ("await_concurrent_local", await_concurrent_local),
                  ("trio_threadsafe_seq", trio_threadsafe_seq),
                  ("trio_from_thread_seq", trio_from_thread_seq),
                  ("trio_to_thread_seq", trio_to_thread_seq), ("trio_seq_task", trio_seq_task),
                  ("trio_nursery_tasks", trio_nursery_tasks),
                  ("trio_nursery_checkpoints", trio_nursery_checkpoints),
                  ("trio_from_thread_await_seq", trio_from_thread_await_seq)]


WORKLOADS = [seq_noop, gather_noop, seq_echo, await_seq, await_concurrent, await_seq_local,
             await_concurrent_local, py_soon_gather, py_threadsafe_seq, cpp_eventfd_ping_pong,
             py_executor_seq,
             py_seq_task, py_gather_tasks, py_threadsafe_await_seq, py_threadsafe_await_concurrent]
OURS = [w.__name__ for w in WORKLOADS  # pyasio's workloads
        if not w.__name__.startswith(("py_", "cpp_"))]


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


async def check_trio_results(m):
    """check_results in a trio run, and the trio forms: a nursery whose tasks are pyasio calls,
    and C++ awaiting coroutines that await trio."""
    trio = trio_module()
    await check_results(m)
    echoed = []

    async def echo_into(i):
        echoed.append(await m.echo(i))

    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(m.noop)
            nursery.start_soon(echo_into, i)
    assert sorted(echoed) == [0, 1, 2], echoed
    tasks = []

    async def on_trio():
        await trio.sleep(0)
        tasks.append(trio.lowlevel.current_task())

    assert await m.await_seq(on_trio, 2) == 2
    assert await m.await_concurrent_local(on_trio, 2) == 2
    assert len(tasks) == 4, tasks


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
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "samples": samples}


def spec(loop):
    """What is measured on a loop: [(workload, function)], its targets and its floors."""
    if loop == "trio":
        return TRIO_WORKLOADS, TRIO_TARGETS, TRIO_FLOORS
    return [(w.__name__, w) for w in WORKLOADS], TARGETS, FLOORS


def runners(names=None):
    """The loops to measure on (those in names, or every one installed): loop -> run(fn, *args),
    which runs the coroutine function fn(*args) to its end on a new loop of that kind."""
    found = {}
    for name, factory in loop_factories().items():
        found[name] = functools.partial(lambda factory, fn, *a: run_on(factory, fn(*a)), factory)
    if names is None or "trio" in names:
        trio = trio_module()
        if trio is not None:
            found["trio"] = trio.run
    if names is not None:
        missing = [n for n in names if n not in found]
        if missing:
            raise SystemExit("not installed: %s" % ", ".join(missing))
        found = {n: found[n] for n in names}
    return found


def measure(args, m, peer, abi3):
    results = {}
    for name, run in runners(args.loops).items():
        workloads, _, _ = spec(name)
        on_trio = name == "trio"
        check = check_trio_results if on_trio else check_results
        # NOTE: an older build (bench/before_after.py's "before") may not have every workload
        runs = [(key, w, m) for key, w in workloads
                if key != "cpp_eventfd_ping_pong" or hasattr(m, "eventfd_ping_pong")]
        if peer is not None and not on_trio:  # NOTE: the peer speaks asyncio only
            runs += [("peer_" + key, w, peer) for key, w in workloads if key in PEER_WORKLOADS]
        if abi3 is not None:
            runs += [("abi3_" + key, w, abi3) for key, w in workloads if key in OURS]
        samples = {key: [] for key, _, _ in runs}
        run(check, m)
        if peer is not None and not on_trio:
            run(check_results, peer, False)
        if abi3 is not None:
            run(check, abi3)
        for _ in range(args.repeat):  # interleaved, so that a slow moment hits every workload
            for key, w, module in runs:
                seconds = run(w, module, args.n)
                samples[key].append(seconds / args.n * 1e6)
        row = {k: summarize(v) for k, v in samples.items()}
        kinds = [("sleep_ms", "pyasio_bench"), ("py_call_later", "pyasio_bench")]
        if peer is not None:
            kinds.append(("sleep_ms", "pybind11_peer"))
        for kind, module in kinds if args.inflight > 0 and not on_trio else []:
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
    """The tables: {(begin, end): text}, asyncio's and uvloop's in this script's section of the
    page, trio's in a section of its own (each only when measured)."""
    sections = {}
    for loop, row in results.items():
        markers = (TRIO_BEGIN, TRIO_END) if loop == "trio" else (BEGIN, END)
        if markers not in sections:
            sections[markers] = [
                "Measured by `bench/future_into_py.py` on %s; %d operations per workload, median "
                "of %d runs (interleaved), fastest and slowest in brackets%s."
                % (machine(), args.n, args.repeat,
                   "; memory with %d operations in flight" % args.inflight
                   if args.inflight > 0 and loop != "trio" else ""), ""]
        lines = sections[markers]
        workloads, targets, floors = spec(loop)
        peer = "peer_seq_noop" in row
        abi3 = "abi3_seq_noop" in row
        lines += ["### %s" % loop, ""]
        if loop == "trio":
            lines += ["trio %s: each workload in a `trio.run`; `gather_noop` is one nursery of %d "
                      "tasks each running `noop()` (trio has no gather); no pybind11 peer (it "
                      "speaks asyncio only) and no memory figures on trio."
                      % (trio_module().__version__, args.n), ""]
        lines += ["| workload | µs per op, median (min–max) | ratio to its floor | target |"
                  + (" pybind11 peer, µs per op | pyasio ÷ peer |" if peer else "")
                  + (" abi3 build, µs per op | abi3 ÷ full (target ≤ %.2f) |" % ABI3_TARGET
                     if abi3 else ""),
                  "|---|---|---|---|" + ("---|---|" if peer else "") + ("---|---|" if abi3 else "")]
        for name, _ in workloads:
            if name not in row:
                continue
            s = row[name]
            ratio = target = ""
            if name in targets:
                floor, limit = targets[name]
                r = s["median"] / row[floor]["median"]
                ratio = "%.2f × `%s`" % (r, floor)
                target = "≤ %.1f× %s" % (limit, "met" if r <= limit else "**missed**")
            elif name in floors:
                floor = floors[name]
                ratio = "%.2f × `%s`" % (s["median"] / row[floor]["median"], floor)
            if loop == "trio" and name in ALSO and ALSO[name] in row:
                ratio += "; %.2f × `%s`" % (s["median"] / row[ALSO[name]]["median"], ALSO[name])
            if loop != "trio" and name in SECOND_TARGETS and SECOND_TARGETS[name][0] in row:
                floor, limit = SECOND_TARGETS[name]
                r = s["median"] / row[floor]["median"]
                ratio += "; %.2f × `%s`" % (r, floor)
                target += "; ≤ %.1f× %s" % (limit, "met" if r <= limit else "**missed**")
            line = "| `%s` | %.2f (%.2f–%.2f) | %s | %s |" % (
                name, s["median"], s["min"], s["max"], ratio, target)
            if peer:
                p = row.get("peer_" + name)
                line += (" %.2f (%.2f–%.2f) | %.2f |" % (p["median"], p["min"], p["max"],
                                                        s["median"] / p["median"])
                         if p else " | |")
            if abi3:
                a = row.get("abi3_" + name)
                if a:
                    r = a["median"] / s["median"]
                    line += " %.2f (%.2f–%.2f) | %.2f %s |" % (
                        a["median"], a["min"], a["max"], r,
                        "met" if r <= ABI3_TARGET else "**missed**")
                else:
                    line += " | |"
            lines.append(line)
        lines.append("")
        b = row.get("bytes_sleep_ms")
        if b is not None:
            lines += ["Bytes per operation in flight: `sleep_ms` %.0f B (target ≤ %d B, %s); "
                      "pure-Python floor (a future and a `call_later` timer) %.0f B."
                      % (b, BYTES_TARGET, "met" if b <= BYTES_TARGET else "**missed**",
                         row["bytes_py_call_later"])
                      + (" The pybind11 peer's `sleep_ms`: %.0f B." % row["bytes_sleep_ms_peer"]
                         if peer else ""), ""]
    return {markers: "\n".join(lines) for markers, lines in sections.items()}


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
    """Replaces the text between the markers begin and end in the page at path, and says so."""
    with open(path) as f:
        page = f.read()
    if begin not in page or end not in page:
        raise SystemExit("%s has no '%s' ... '%s' section to replace" % (path, begin, end))
    head, rest = page.split(begin, 1)
    tail = rest.split(end, 1)[1]
    with open(path, "w") as f:
        f.write(head + begin + "\n" + text + "\n" + end + tail)
    print("wrote", path, "between", begin, "and", end)


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
    p.add_argument("--loops", nargs="+", choices=["asyncio", "uvloop", "trio"],
                   help="the loops to measure on (default: every one installed)")
    p.add_argument("--json", metavar="PATH", help="also write every sample to PATH")
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
        args.n, args.repeat, args.inflight = 200, 1, min(args.inflight, 2000)
    results = measure(args, pyasio_bench, pybind11_peer, pyasio_bench_abi3)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "module": pyasio_bench.__file__, "n": args.n,
                       "repeat": args.repeat, "results": results}, f)
    for (begin, end), text in report(args, results).items():
        print(text)
        if args.write:
            write_section(args.write, text, begin, end)


if __name__ == "__main__":
    main()
