# SPDX-License-Identifier: BSL-1.0
"""Stress scenarios, bounded in time, shared by the quick test (test_stress.py, in the test
command) and the soak (soak.py, by hand): each takes its size, checks every outcome, and returns
what it measured. Test modules: _pyasio_async_test (Python awaits C++) and
_pyasio_into_future_test (C++ awaits Python)."""
import asyncio
import bisect
import gc
import random
import time

import _pyasio_async_test as cpp
import _pyasio_into_future_test as py


class StressFailure(AssertionError):
    pass


def check(condition, message):
    if not condition:
        raise StressFailure(message)


def wait_until(predicate, timeout=10.0):
    """Polls predicate (C++ work finishes on other threads) for at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def run(coro):
    """asyncio.run without debug mode (-X dev turns it on: a traceback kept per handle)."""
    loop = asyncio.new_event_loop()
    loop.set_debug(False)
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def every_cpp_wait_ended(before, timeout=30):
    """The C++ waits that began since `before` (stats()) all ended, aborted or completed."""
    def ended():
        s = cpp.stats()
        began = s["started"] - before["started"]
        return began == (s["aborted"] - before["aborted"]) + (s["completed"] - before["completed"])
    check(wait_until(ended, timeout), "C++ waits that began did not all end: %r then %r"
          % (before, cpp.stats()))


async def python_cancels_cpp(n, seed=1):
    """n C++ timer waits (0 to n/20 ms, at least 500: making the futures takes a good part of
    that, more on a slow interpreter, debug or under TSan) at once; a random half is cancelled
    by Python at random moments over the same span.
    Every future ends: the others with their result, the cancelled ones cancelled (or with their
    result, when the wait ended first); every C++ wait that began ends."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    before = cpp.stats()
    span_ms = max(500, n // 20)
    chosen = sorted(rng.sample(range(n), n // 2))
    futures = []
    for i in range(n):
        futures.append(cpp.sleep_ms(rng.randrange(span_ms + 1)))
        # NOTE: a tenth of the chosen are cancelled while the others are being made, before the
        # loop runs: on a starved host (sanitizers, other tests beside) making them all may
        # take longer than the span, and every timed cancel below could find its wait ended.
        made = bisect.bisect_right(chosen, i)  # the chosen made so far
        if i % 20 == 19 and made:
            futures[chosen[rng.randrange(made)]].cancel()
    for i in chosen:
        loop.call_later(rng.uniform(0, span_ms / 1000), futures[i].cancel)
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    cancelled = 0
    chosen = set(chosen)
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, asyncio.CancelledError):
            check(i in chosen, "future %d was cancelled, but not by the test" % i)
            cancelled += 1
        else:
            check(outcome is None, "future %d ended with %r" % (i, outcome))
    check(cancelled > 0, "no cancel arrived before its wait ended")
    every_cpp_wait_ended(before)
    return {"cancelled": cancelled, "completed": n - cancelled}


async def cpp_cancels_python(n, seed=2):
    """n Python coroutines (0-20 ms sleeps) awaited by C++ at once; C++ cancels a random half
    at random moments (a cancellation signal bound to each into_future). Each ends with its
    result, or "aborted" exactly when C++'s cancel reached it."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    reached = set()

    chosen = set(rng.sample(range(n), n // 2))

    # NOTE: the cancel is timed from the coroutine's start (C++ awaits it by then), not from the
    # calls: on a starved host the calls may take longer than every sleep, and each cancel
    # would then come before its C++ side began or after it ended.
    async def work(i):
        if i in chosen:
            loop.call_later(rng.uniform(0.001, 0.02), cancel, i)
        await asyncio.sleep(rng.uniform(0, 0.02))

    def cancel(i):
        if py.cancel_from_cpp(i):
            reached.add(i)

    outcomes = await asyncio.gather(*[py.race(work(i), i) for i in range(n)])
    await asyncio.sleep(0.03)  # the last cancel calls find their operations ended
    for i, outcome in enumerate(outcomes):
        check(outcome in ("result", "aborted"), "operation %d ended with %r" % (i, outcome))
        if outcome == "aborted":
            check(i in reached, "operation %d was aborted, but not by the test" % i)
    aborted = outcomes.count("aborted")
    check(aborted > 0, "no C++ cancel arrived before its coroutine ended")
    return {"aborted": aborted, "completed": n - aborted}


async def exceptions_both_ways(n):
    """n C++ operations that throw, and n Python coroutines that raise for C++, at once: each
    error arrives as itself, with its message."""
    async def raiser(i):
        await asyncio.sleep(0)
        raise KeyError(i)

    from_cpp = await asyncio.gather(*[cpp.fail("e%d" % i) for i in range(n)],
                                    return_exceptions=True)
    for i, e in enumerate(from_cpp):
        check(isinstance(e, ValueError) and str(e) == "e%d" % i, "C++ error %d: %r" % (i, e))
    from_py = await asyncio.gather(*[py.await_py(raiser(i)) for i in range(n)],
                                   return_exceptions=True)
    for i, e in enumerate(from_py):
        check(isinstance(e, KeyError) and e.args == (i,), "Python error %d: %r" % (i, e))
    return {"errors": 2 * n}


async def sleeps_in_flight(n, ms=200):
    """n C++ timer waits in flight at once; bytes of RSS per operation while they wait."""
    gc.collect()
    rss = rss_bytes()
    futures = [cpp.sleep_ms(ms) for _ in range(n)]
    await asyncio.sleep(ms / 2000)
    per_op = (rss_bytes() - rss) / n
    outcomes = await asyncio.gather(*futures)
    check(outcomes == [None] * n, "a wait ended with something else")
    return {"bytes_per_op": round(per_op)}


def loop_closed_with_work_pending(n):
    """n C++ waits of 60 s are started on a loop that is then closed, the futures dropped: every
    C++ wait that began is cancelled (aborted; those not begun yet never begin), none completes,
    and new work runs on a new loop."""
    before = cpp.stats()
    loop = asyncio.new_event_loop()
    loop.set_debug(False)
    holder = []

    async def start():
        holder.extend(cpp.sleep_ms(60_000) for _ in range(n))
        await asyncio.sleep(0.05)

    loop.run_until_complete(start())
    loop.close()
    holder.clear()
    gc.collect()
    time.sleep(0.1)  # a wait about to begin as the loop closed begins
    every_cpp_wait_ended(before)
    check(cpp.stats()["completed"] == before["completed"],
          "a C++ wait of the closed loop completed: %r then %r" % (before, cpp.stats()))
    began = cpp.stats()["started"] - before["started"]
    check(run(cpp.sleep_ms(1)) is None, "no work after the close")
    return {"began_and_cancelled": began, "never_began": n - began}


def round_trips_rss(n, batch=10_000):
    """n round trips (gathers of `batch` noop()); RSS after the first tenth and at the end."""
    async def trips(rounds):
        for _ in range(rounds):
            await asyncio.gather(*[cpp.noop() for _ in range(batch)])

    rounds = max(n // batch, 10)
    run(trips(rounds // 10))
    gc.collect()
    start = rss_bytes()
    run(trips(rounds - rounds // 10))
    gc.collect()
    return {"round_trips": rounds * batch, "rss_start": start, "rss_end": rss_bytes(),
            "growth_bytes": rss_bytes() - start}


# NOTE: each test module has a runtime of its own: the 8 threads are _pyasio_async_test's, which
# serve both loops' echo_int; the await_py half runs on _pyasio_into_future_test's default one.
TWO_LOOPS = """
import asyncio, sys, threading
import _pyasio_async_test as cpp
import _pyasio_into_future_test as py
cpp.configure_runtime({threads})
errors = []

async def twice(i):
    await asyncio.sleep(0)
    return 2 * i

def one_loop(k):
    async def main():
        got = await asyncio.gather(*[cpp.echo_int(i) for i in range({n})])
        assert got == list(range({n})), "echo %d" % k
        got = await asyncio.gather(*[py.await_py(twice(i)) for i in range({n})])
        assert got == [2 * i for i in range({n})], "await_py %d" % k
    try:
        asyncio.run(main())
    except BaseException as e:
        errors.append(repr(e))

threads = [threading.Thread(target=one_loop, args=(k,)) for k in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("errors:", errors)
sys.exit(1 if errors else 0)
"""
