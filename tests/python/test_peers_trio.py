# SPDX-License-Identifier: BSL-1.0
"""The peers' test suites under trio: every test of test_peers.py whose behaviour applies to
trio, run with trio.run, nurseries, cancel scopes and trio.sleep, through the same extension
module (_pyasio_peers_test). Each test keeps the name of the test_peers.py test it ports (and so
of the peer test); the tests that do not apply to trio are listed in NOT_APPLICABLE below with
the reason, and docs/peers.md ("Under trio") maps every one.

Every test runs under two set-ups (the classes at the end), as test_peers.py runs under its
loops: C++ threads wake the trio run through an eventfd that a trio system task waits on
(pyasio's default), or with TrioToken.run_sync_soon (the call_soon_threadsafe wake). Skipped,
visibly, where trio is not installed (Debian: python3-trio). Nothing asserts a duration: the
trio.fail_after of each run only turns a hang into a failure."""
import collections.abc
import contextlib
import contextvars
import gc
import inspect
import io
import random
import sys
import time
import unittest
import warnings
from asyncio import CancelledError  # what an awaited TrioFuture raises when it was cancelled

try:
    import trio
    import trio.testing
except ImportError:
    trio = None

import _pyasio_peers_test as m
import _pyasio_runtime_test as rt  # current_loop(): pyasio::get_current_loop()
from test_peers import LONG, MS, CountedWork, wait_until

needs_trio = unittest.skipIf(trio is None, "trio is not installed (Debian: python3-trio)")

HANG_GUARD = 30.0  # seconds; only turns a hang into a failure

# The tests of test_peers.py that are not ported, and why (docs/peers.md says the same).
NOT_APPLICABLE = {
    "test_run_forever": "asyncio-specific API: loop.run_forever and loop.stop (a trio run ends "
                        "when its main function returns)",
    "test_uvloop": "uvloop is an asyncio loop (event-loop policies, run_options::uvloop); "
                   "run_options::trio with uvloop is refused (test_trio.py)",
    "test_run_until_complete": "asyncio-specific API: run_until_complete(loop) on a loop that "
                               "stays open; a trio run has no loop object outside trio.run",
}


class TrioSetup(CountedWork):
    """One set-up: how C++ threads wake the trio run (chosen per run at pyasio's first use in
    it, and each trio.run is a new run)."""

    wake = "reader"

    def run_trio(self, fn, *args):
        """trio.run(fn, *args) on this set-up, under a hang guard; nothing may be reported as
        unraisable, and no callback pyasio runs under trio may fail (pyasio reports those on
        stderr, "pyasio: exception in callback", as asyncio's exception handler would)."""
        m.set_wake(self.wake)
        unraisable = []
        hook, sys.unraisablehook = sys.unraisablehook, lambda u: unraisable.append(
            "%s: %s" % (type(u.exc_value).__name__, u.exc_value))
        stderr = io.StringIO()

        async def checked():
            self.assertEqual(m.wake_mode(), self.wake)  # the set-up is the one named
            with trio.fail_after(HANG_GUARD):
                return await fn(*args)

        try:
            with contextlib.redirect_stderr(stderr):
                return trio.run(checked)
        finally:
            m.set_wake("reader")  # the default again, for whatever runs next
            gc.collect()
            sys.unraisablehook = hook
            sys.stderr.write(stderr.getvalue())  # shown, not swallowed
            self.assertEqual(unraisable, [], "errors were reported as unraisable")
            self.assertNotIn("pyasio: exception in callback", stderr.getvalue())


async def trio_sleep(duration):  # pyo3-asyncio's common::TEST_MOD, on trio
    await trio.sleep(duration)


async def sleep_for_1ms(sleep_for):  # TEST_MOD's sleep_for_1s, scaled
    await sleep_for(MS)


class InThread:
    """An awaitable that is not a coroutine and runs a function on a worker thread: trio's
    counterpart of the asyncio.Future of loop.run_in_executor (test_other_awaitables)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __await__(self):
        return trio.to_thread.run_sync(self.fn, *self.args).__await__()


async def cancelled_while_waiting(awaitable):
    """Awaits `awaitable` in a task of its own inside a cancel scope, and cancels the scope once
    every task waits (the await is in flight). (what the await returned, if anything; whether
    the scope caught its cancellation)."""
    scope = trio.CancelScope()
    got = []

    async def waiter():
        with scope:
            got.append(await awaitable)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()
    return got, scope.cancelled_caught


class Pyo3Asyncio:
    """test_peers.Pyo3Asyncio under trio."""

    def test_future_into_py(self):
        # C++ awaits a Python coroutine that awaits C++: C++ -> Python -> C++
        async def main():
            self.assertIsNone(await m.await_py(sleep_for_1ms(m.sleep)))

        self.run_trio(main)

    def test_async_sleep(self):
        # C++ waits on a timer, then awaits trio.sleep (called on the trio thread)
        async def main():
            self.assertIsNone(await m.async_sleep(MS, trio.sleep))

        self.run_trio(main)

    def test_blocking_sleep(self):
        # A synchronous C++ function blocks a worker thread (the GIL released): the run, and
        # C++ work completing on it, go on meanwhile.
        async def main():
            blocked = []

            async def blocking():
                blocked.append(await trio.to_thread.run_sync(m.blocking_sleep, 5 * MS))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(blocking)
                for _ in range(3):
                    self.assertIsNone(await m.sleep(0))
            self.assertEqual(blocked, [None])

        self.run_trio(main)

    def test_into_future(self):
        # C++ awaits a coroutine on task locals it names on a runtime thread, not the trio
        # thread (task_locals::of(get_current_loop())), and on locals it names there for the
        # loop it is given: the pyasio.TrioLoop that stands for the run (asyncio's test gives
        # asyncio.get_running_loop(); under trio, Python has the loop of a future of the
        # module's; another module's loop: AcrossCopies below)
        async def main():
            self.assertIsNone(await m.await_py_on(trio_sleep(MS)))
            first = m.sleep(0)
            loop = first.get_loop()
            await first
            self.assertEqual(type(loop).__name__, "TrioLoop")
            self.assertIsNone(await m.await_py_on(trio_sleep(MS), loop))

        self.run_trio(main)

    def test_other_awaitables(self):
        # C++ awaits an awaitable that is not a coroutine and runs work on a worker thread
        # (trio's counterpart of run_in_executor's asyncio.Future), on task locals it names on
        # a runtime thread, then with await_py
        async def main():
            self.assertFalse(inspect.iscoroutine(InThread(abs, -1)))
            self.assertIsNone(await m.await_py_on(InThread(time.sleep, MS)))
            self.assertEqual(await m.await_py_on(InThread(abs, -3)), 3)
            self.assertEqual(await m.await_py(InThread(abs, -4)), 4)

        self.run_trio(main)

    def test_local_future_into_py(self):
        # local_future_into_py: C++ work on the trio thread (state shared without atomics),
        # awaited by C++ on the runtime
        tag = self.tag()

        async def main():
            self.assertEqual(await m.await_py(m.local_counted_sleep(tag, MS)), MS)

        self.run_trio(main)
        self.assertEqual(m.counts(tag), {"started": 1, "completed": 1})

    def test_panic(self):
        # a C++ exception is the matching Python exception
        async def main():
            with self.assertRaisesRegex(RuntimeError, "^this panic was intentional!$"):
                await m.await_py(m.panic("this panic was intentional!"))  # through C++
            with self.assertRaisesRegex(RuntimeError, "^this panic was intentional!$"):
                await m.panic("this panic was intentional!")
            with self.assertRaisesRegex(SystemError, "not derived from std::exception"):
                await m.panic_unknown()

        self.run_trio(main)

    def test_cancel(self):
        # The future (a TrioFuture) is cancelled before C++ awaits it: C++ gets the
        # cancellation, and the C++ work behind the future is dropped (it never completes).
        tag = self.tag()

        async def main():
            future = m.counted_sleep(tag, LONG)
            self.assertEqual(type(future).__name__, "TrioFuture")
            self.assertTrue(future.cancel())
            with self.assertRaises(CancelledError):
                await m.await_py(future)

        self.run_trio(main)
        self.assert_never_completed(tag)

    def test_cancel_of_a_lazy_future(self):
        # test_cancel as pyo3-asyncio runs it, where no loop runs at the call: a LazyFuture,
        # cancelled there, then awaited by C++ under trio
        tag = self.tag()
        future = m.counted_sleep(tag, LONG)
        self.assertEqual(type(future).__name__, "LazyFuture")
        self.assertFalse(future.done())
        self.assertFalse(future.cancelled())
        called = []
        future.add_done_callback(called.append)
        self.assertTrue(future.cancel())
        self.assertTrue(future.done())
        self.assertTrue(future.cancelled())
        with self.assertRaises(CancelledError):
            future.result()

        async def main():
            with self.assertRaises(CancelledError):
                await m.await_py(future)

        self.run_trio(main)
        self.assertEqual(called, [future])
        self.assert_never_completed(tag)

    def test_local_cancel(self):
        # test_cancel with the C++ work on the trio thread
        tag = self.tag()

        async def main():
            future = m.local_counted_sleep(tag, LONG)
            self.assertTrue(future.cancel())
            with self.assertRaises(CancelledError):
                await m.await_py(future)

        self.run_trio(main)
        self.assert_never_completed(tag)

    def test_multiple_asyncio_run(self):
        # From a worker thread while this trio run runs: pyasio::run with run_options::trio
        # twice (each a trio run of its own), then trio.run twice, each awaiting C++.
        # pyasio::run on the thread of a running trio run is refused, for either family.
        # Afterwards the runtime still serves this run.
        self.addCleanup(m.restore_runtime)

        async def awaits_cpp():
            await trio.sleep(0)
            return await m.sleep(MS)

        def worker_thread():
            for _ in range(2):
                self.assertEqual(m.run_trio(awaits_cpp, False), (None, "TrioLoop"))
            for _ in range(2):
                self.assertIsNone(trio.run(awaits_cpp))

        async def main():
            with self.assertRaisesRegex(RuntimeError, "pyasio::run"):
                m.run_sleep(MS)
            with self.assertRaisesRegex(RuntimeError, "pyasio::run"):
                m.run_trio(awaits_cpp, False)
            await trio.to_thread.run_sync(worker_thread)
            self.assertIsNone(await m.sleep(MS))

        self.run_trio(main)
        self.assertFalse(m.restore_runtime(), "pyasio::run called from Python shut the "
                                              "process's runtime down")

    def test_async_gen_v1(self):
        async def gen():
            for i in range(10):
                await trio.sleep(MS / 10)
                yield i

        async def main():
            self.assertEqual(await m.collect(gen(), 4), list(range(10)))

        self.run_trio(main)

    def test_async_gen_v2(self):
        # the items as Python objects (into_stream<object>)
        async def gen():
            for i in range(10):
                await trio.sleep(MS / 10)
                yield i

        async def main():
            self.assertEqual(await m.collect_objects(gen(), 4), list(range(10)))

        self.run_trio(main)

    def test_async_gen_full_buffer(self):
        # a generator much faster than the reader (no awaits) and more items than the buffer:
        # all of them, in order
        async def gen():
            for i in range(1000):
                yield i

        async def main():
            self.assertEqual(await m.collect(gen(), 10), list(range(1000)))
            self.assertEqual(await m.collect_objects(gen(), 10), list(range(1000)))

        self.run_trio(main)

    def test_async_gen_cancelled_item(self):
        # One next() cancelled by C++ leaves the stream usable; the __anext__ in flight (a trio
        # task) is not cancelled, and its item goes to the next next().
        class Items:
            def __init__(self):
                self.i = 0
                self.cancelled = 0
                self.gate = trio.Event()

            def __aiter__(self):
                return self

            async def __anext__(self):
                if self.i == 2:
                    try:
                        await self.gate.wait()  # item 2 waits until C++ cancelled its next()
                    except trio.Cancelled:
                        self.cancelled += 1
                        raise
                if self.i == 5:
                    raise StopAsyncIteration
                self.i += 1
                return self.i - 1

        async def main():
            items = Items()

            async def open_gate():
                items.gate.set()

            before, race, after, end = await m.read_cancel_read(items, 2, 5 * MS, open_gate)
            self.assertEqual((before, race), ([0, 1], "timeout"))
            self.assertEqual(items.cancelled, 0)
            self.assertEqual((after, end), ([2, 3, 4], "ok"))

        self.run_trio(main)

    def test_cpp_stream_cancelled_item(self):
        # A cancel scope that cancels a task in the __anext__ of a C++ stream leaves the stream
        # usable: no item is taken.
        async def main():
            stream = m.gated_count(5, 2)  # item 2 waits for open_gate()
            self.assertEqual([await stream.__anext__() for _ in range(2)], [0, 1])
            got, cancelled = await cancelled_while_waiting(stream.__anext__())
            self.assertEqual((got, cancelled), ([], True))
            m.open_gate()
            self.assertEqual([x async for x in stream], [2, 3, 4])

        self.run_trio(main)

    def test_contextvars(self):
        # The context of the call into C++ (a copy, made at the call) is the one the Python
        # coroutine C++ awaits later runs in; twice, each in a new trio run.
        cx = contextvars.ContextVar("cx")

        async def contextvars_test():
            await trio.sleep(0)
            self.assertEqual(cx.get(), "foobar")

        async def main():
            cx.set("foobar")
            await m.async_callback(contextvars_test)
            await m.async_callback_on_runtime(contextvars_test)  # called as the Rust one does
            later = m.async_callback(contextvars_test)
            cx.set("changed after the call")
            await later

        for _ in range(2):
            self.run_trio(main)

    def test_race_condition_regression(self):
        # Python cancels a C++ timer's future as the timer completes it: the completion must
        # never reach a cancelled future (InvalidStateError from a callback, which pyasio would
        # report on stderr, or an error out of the run). 200 runs of 1 ms, half with
        # future.cancel() (as the peer), half with a cancel scope around the await (trio's way).
        rng = random.Random(18)

        async def by_cancel(delay):
            future = m.sleep(MS)
            await trio.sleep(delay)
            future.cancel()

        async def by_scope(delay):
            with trio.move_on_after(delay):
                await m.sleep(MS)

        for i in range(200):
            trigger = by_cancel if i % 2 == 0 else by_scope
            self.assertIsNone(self.run_trio(trigger, rng.uniform(0.99 * MS, 1.01 * MS)))

    # --- doc tests and the README ---

    def test_task_locals_doc_example(self):
        # lib.rs: the locals captured at the call (the trio run's loop and a copy of the
        # context) are the ones the C++ work later awaits trio.sleep on
        async def main():
            self.assertIsNone(await m.sleep_with_locals(MS, trio.sleep))

        self.run_trio(main)

    def test_readme_no_running_event_loop(self):
        # pyo3-asyncio's README: `asyncio.run(rust_sleep())` fails, the call being made before
        # a loop runs. pyasio differs: the call returns a LazyFuture that starts in the trio run
        # that awaits it, or that trio.run runs as its main coroutine.
        pending = m.sleep(MS)
        self.assertEqual(type(pending).__name__, "LazyFuture")

        async def main():
            return await pending

        self.assertIsNone(self.run_trio(main))
        lazy = m.sleep(MS)
        self.assertIsNone(trio.run(lambda: lazy))  # trio.run of the made coroutine
        self.assertTrue(lazy.done())
        self.assertIsNone(trio.run(m.sleep, MS))  # trio.run(mod.f, args)


async def dummy(called):
    await trio.sleep(0)
    called.append(True)


async def raising(exception=None):
    await trio.sleep(0)
    raise exception or ZeroDivisionError()


async def echo(value):
    await trio.sleep(0)
    return value


class Pyawaitable:
    """test_peers.Pyawaitable under trio."""

    def test_awaitable_semantics(self):
        # made where no loop runs: a LazyFuture, which warns as a coroutine never awaited;
        # made in a trio run: a TrioFuture. Each is an Awaitable and a Coroutine, not a native
        # coroutine.
        aw = m.sleep(0)
        self.assertIsInstance(aw, collections.abc.Awaitable)
        self.assertIsInstance(aw, collections.abc.Coroutine)
        self.assertFalse(inspect.iscoroutine(aw))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del aw
            gc.collect()
        self.assertIn(RuntimeWarning, [w.category for w in caught])

        async def main():
            aw = m.sleep(0)
            self.assertEqual(type(aw).__name__, "TrioFuture")
            self.assertIsInstance(aw, collections.abc.Awaitable)
            self.assertIsInstance(aw, collections.abc.Coroutine)
            self.assertFalse(inspect.iscoroutine(aw))
            self.assertIsNone(await aw)

        self.run_trio(main)
        called = []
        self.assertIsNone(self.run_trio(m.await_py, dummy(called)))
        self.assertEqual(called, [True])

    def test_coroutine_propagates_exception(self):
        with self.assertRaises(ZeroDivisionError):
            self.run_trio(m.await_py, raising())

    def test_awaitable_new(self):
        lazy = m.sleep(0)
        self.assertEqual(type(lazy).__name__, "LazyFuture")
        lazy.close()

        async def main():
            future = m.sleep(0)  # in a trio run: a TrioFuture of the loop of that run
            self.assertEqual(type(future).__name__, "TrioFuture")
            loop = future.get_loop()
            self.assertEqual(type(loop).__name__, "TrioLoop")
            self.assertTrue(loop.is_running())
            other = m.echo_on_loop(None)  # one loop per run (in this module: AcrossCopies)
            self.assertIs(other.get_loop(), loop)
            await future
            await other
            with self.assertRaises(MemoryError):  # std::bad_alloc in the C++ work
                await m.out_of_memory()

        self.run_trio(main)

    def test_set_result(self):
        value = object()

        async def main():
            before = sys.getrefcount(value)
            future = m.echo_on_loop(value)
            self.assertGreater(sys.getrefcount(value), before)  # the C++ work holds it
            self.assertIs(await future, value)

        self.run_trio(main)

    def test_add_await(self):
        async def main():
            with self.assertRaisesRegex(TypeError, "expected an awaitable"):
                await m.await_py(sys)  # a module is not awaitable
            with self.assertRaisesRegex(TypeError, "expected an awaitable"):
                await m.await_py(None)
            called = []
            self.assertIsNone(await m.await_py(dummy(called)))
            self.assertEqual(called, [True])

        self.run_trio(main)

    def test_add_await_special_cases(self):
        # 16 empty awaitables (C++ futures), then a coroutine, awaited in turn
        async def main():
            called = []
            children = [m.sleep(0) for _ in range(16)]
            self.assertEqual(await m.await_each(children + [dummy(called)]), [None] * 17)
            self.assertEqual(called, [True])

        self.run_trio(main)

    def with_handlers(self, coro, on_result, on_error):
        """Runs m.with_handlers; (its result or exception, what its handlers counted)."""
        tag = self.tag()

        async def main():
            try:
                return await m.with_handlers(tag, coro, on_result, on_error)
            except Exception as e:
                return e

        return self.run_trio(main), m.counts(tag)

    def test_callback_is_called(self):
        outcome, counts = self.with_handlers(echo(None), "ok", "none")
        self.assertIsNone(outcome)
        self.assertEqual(counts, {"result_called": 1})

    def test_callback_not_invoked_when_exception(self):
        outcome, counts = self.with_handlers(raising(), "ok", "none")
        self.assertIsInstance(outcome, ZeroDivisionError)
        self.assertEqual(counts, {})

    def test_error_callback_not_invoked_when_ok(self):
        outcome, counts = self.with_handlers(echo(None), "ok", "swallow")
        self.assertIsNone(outcome)
        self.assertEqual(counts, {"result_called": 1})

    def test_error_callback_gets_exception_from_coro(self):
        outcome, counts = self.with_handlers(raising(), "ok", "swallow")
        self.assertIsNone(outcome)
        self.assertEqual(counts, {"error_called": 1, "error_is_zero_division": 1})

    def test_failing_error_callback_repropagates_exception(self):
        original = ZeroDivisionError("the original")
        outcome, counts = self.with_handlers(raising(original), "ok", "reraise")
        self.assertIs(outcome, original)
        self.assertEqual(counts, {"error_called": 1, "error_is_zero_division": 1})

    def test_error_callback_can_overwrite_exception(self):
        outcome, counts = self.with_handlers(raising(), "ok", "replace")
        self.assertIsInstance(outcome, FileExistsError)
        self.assertEqual(counts, {"error_called": 1, "error_is_zero_division": 1})

    def test_failing_callback_gives_to_error_callback(self):
        outcome, counts = self.with_handlers(echo(None), "raise", "swallow")
        self.assertIsNone(outcome)
        self.assertEqual(counts, {"result_called": 1, "error_called": 1})

    def test_failing_callback_with_no_exception(self):
        # a C++ exception not derived from std::exception is a SystemError
        outcome, counts = self.with_handlers(echo(None), "raise_unknown", "none")
        self.assertIsInstance(outcome, SystemError)
        self.assertEqual(counts, {"result_called": 1})

    def test_forcefully_propagating_callback_error(self):
        outcome, counts = self.with_handlers(echo(None), "raise_force", "swallow")
        self.assertIsInstance(outcome, RuntimeError)
        self.assertEqual(counts, {"result_called": 1})  # the error handler was skipped

    def test_store_and_load_object_values(self):
        # what C++ work keeps (captures) stays alive and is the same object
        values = [999_999_999, "hello"]

        async def main():
            refcounts = [sys.getrefcount(v) for v in values]
            future = m.echo_on_loop(values)
            self.assertIs(await future, values)
            return refcounts

        refcounts = self.run_trio(main)
        gc.collect()
        self.assertEqual([sys.getrefcount(v) for v in values], refcounts)  # and let go of

    def test_object_values_can_outlive_awaitable(self):
        # C++ work that holds an object, cancelled by a cancel scope around the task that
        # awaits it: it lets go of the object, which lives on
        held = object()

        async def main():
            before = sys.getrefcount(held)
            future = m.hold_on_loop(held, LONG)
            self.assertGreater(sys.getrefcount(held), before)
            got, cancelled = await cancelled_while_waiting(future)
            self.assertEqual((got, cancelled), ([], True))
            self.assertTrue(future.cancelled())
            del future
            for _ in range(10_000):  # the work ends on the trio thread soon after
                if sys.getrefcount(held) == before:
                    break
                await trio.sleep(MS)
            self.assertEqual(sys.getrefcount(held), before)

        self.run_trio(main)
        self.assertIsInstance(held, object)

    # --- pyawaitable v1.4's Python tests ---

    def test_new(self):
        # What future_into_py returns is accepted by trio's ways to run an awaitable: await,
        # nursery.start_soon, trio.run; made in the run (a TrioFuture) and made with no loop
        # (a LazyFuture). (asyncio's create_task, ensure_future, gather, wait_for, shield and
        # TaskGroup have no trio counterpart but these.)
        made_before = {name: m.sleep(0) for name in ("await", "nursery.start_soon")}

        async def main():
            for lazy in (False, True):
                def made(name):
                    return made_before.pop(name) if lazy else m.sleep(0)

                with self.subTest("await", lazy=lazy):
                    self.assertIsNone(await made("await"))
                with self.subTest("nursery.start_soon", lazy=lazy):
                    future = made("nursery.start_soon")
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(lambda: future)
                    self.assertTrue(future.done())
                    self.assertIsNone(future.result())

        try:
            self.run_trio(main)
        finally:
            for f in made_before.values():  # left by a failure
                f.close()
        self.assertIsNone(trio.run(m.sleep, 0))  # trio.run(mod.f)

    def test_await(self):
        called = []

        async def many_sleeps():
            for _ in range(1000):  # pyawaitable: 10000
                await trio.sleep(0)
            called.append(True)

        self.run_trio(m.await_py, many_sleeps())
        self.assertEqual(called, [True])

    def test_await_order(self):
        self.assertEqual(self.run_trio(m.await_each, [echo(1), echo(2), echo(3)]), [1, 2, 3])

    def test_await_cancel(self):
        # C++ stops after the first result: the other coroutines are closed, never awaited,
        # and warn of nothing
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.assertEqual(self.run_trio(m.await_until, [echo(1), echo(2), echo(3)], 1), [1])
            gc.collect()
        self.assertEqual([str(w.message) for w in caught if w.category is RuntimeWarning], [])

    def test_awaitable_chaining(self):
        # an awaitable of C++ awaiting an awaitable of C++
        async def main():
            return await m.await_py(m.await_until([echo(1), echo(2)], 1))

        self.assertEqual(self.run_trio(main), [1])

    def test_coro_raise(self):
        original = ZeroDivisionError("test")
        with self.assertRaises(ZeroDivisionError) as caught:
            self.run_trio(m.await_py, raising(original))
        self.assertIs(caught.exception, original)

    def test_await_no_cb_raise(self):
        with self.assertRaisesRegex(TypeError, "expected an awaitable"):
            self.run_trio(m.await_py, 42)

    def test_set_results(self):
        self.assertEqual(self.run_trio(m.await_py, echo("abc")), "abc")

    def test_set_results_tracked_type(self):
        class Result:
            def __init__(self):
                self.value = [1, 2, 3, 4]

        result = Result()
        self.assertIs(self.run_trio(m.await_py, echo(result)), result)
        self.assertEqual(result.value, [1, 2, 3, 4])

    def test_await_function(self):
        async def coro(i, s):
            await trio.sleep(0)
            return str(i * 2) + s

        self.assertEqual(self.run_trio(m.await_call, coro, 21, "hello"), "42hello")

    def test_await_cb(self):
        outcome, counts = self.with_handlers(echo(42), "ok", "none")
        self.assertEqual((outcome, counts), (42, {"result_called": 1}))

    def test_await_cb_err(self):
        async def divide():
            await trio.sleep(0)
            return 0 / 0

        outcome, counts = self.with_handlers(divide(), "ok", "swallow")
        self.assertEqual((outcome, counts), (None, {"error_called": 1,
                                                    "error_is_zero_division": 1}))

    def test_await_cb_err_cb(self):
        outcome, counts = self.with_handlers(echo(1), "raise", "swallow")
        self.assertEqual((outcome, counts), (None, {"result_called": 1, "error_called": 1}))

    def test_await_cb_noerr(self):
        outcome, _ = self.with_handlers(echo(1), "raise_unknown", "none")
        self.assertIsInstance(outcome, SystemError)

    def test_await_cb_err_restore(self):
        outcome, counts = self.with_handlers(echo(1), "raise", "reraise")
        self.assertIsInstance(outcome, RuntimeError)
        self.assertEqual(str(outcome), "the result handler failed")
        self.assertEqual(counts, {"result_called": 1, "error_called": 1})

    def test_await_cb_err_norestore(self):
        outcome, counts = self.with_handlers(echo(1), "raise", "replace")
        self.assertIsInstance(outcome, FileExistsError)
        self.assertEqual(counts, {"result_called": 1, "error_called": 1})

    def test_a_lot_of_coroutines(self):
        called = []
        results = self.run_trio(m.await_each, [dummy(called) for _ in range(500)])
        self.assertEqual((results, called), ([None] * 500, [True] * 500))

    # --- async with (v1.4's PyAwaitable_AsyncWith), from C++ ---

    def context(self, record, enter_error=False, exit_error=False, after_yield_error=False):
        @contextlib.asynccontextmanager
        async def ctx():
            await trio.sleep(0)
            if enter_error:
                raise ZeroDivisionError("on enter")
            try:
                yield 1
                if after_yield_error:
                    raise ZeroDivisionError("after the yield")
            finally:
                record.append("finally")
                if exit_error:
                    raise ZeroDivisionError("in the finally")

        return ctx()

    def test_async_with(self):
        record = []

        def body(value):
            record.append(value)

        self.assertIsNone(self.run_trio(m.async_with, self.context(record), body, "none"))
        self.assertEqual(record, [1, "finally"])

        class EnterOnly:
            async def __aenter__(self):
                pass

        class ExitOnly:
            async def __aexit__(self, *exc):
                pass

        for not_a_context in (1, EnterOnly(), ExitOnly()):
            with self.assertRaisesRegex(TypeError, "has no __a"):
                m.async_with(not_a_context, None, "none")

    def test_async_with_no_callback(self):
        record = []
        self.assertIsNone(self.run_trio(m.async_with, self.context(record), None, "none"))
        self.assertEqual(record, ["finally"])

    def test_async_with_no_callback_error(self):
        record = []
        with self.assertRaisesRegex(ZeroDivisionError, "after the yield"):
            self.run_trio(m.async_with, self.context(record, after_yield_error=True), None,
                          "none")
        self.assertEqual(record, ["finally"])

    def test_async_with_no_callback_exit_error(self):
        record = []
        with self.assertRaisesRegex(ZeroDivisionError, "in the finally"):
            self.run_trio(m.async_with, self.context(record, exit_error=True), None, "none")

    def test_async_with_cb_error(self):
        # The block raises: __aexit__ gets the exception and the finally runs; the exception
        # goes on unless the C++ error handler swallows it.
        def body(value):
            raise RuntimeError("test")

        record = []
        with self.assertRaisesRegex(RuntimeError, "^test$"):
            self.run_trio(m.async_with, self.context(record), body, "none")
        self.assertEqual(record, ["finally"])
        record = []
        self.assertIsNone(self.run_trio(m.async_with, self.context(record), body, "swallow"))
        self.assertEqual(record, ["finally"])

    def test_async_with_exit_error(self):
        record = []
        self.assertIsNone(self.run_trio(m.async_with, self.context(record, exit_error=True),
                                        None, "swallow"))
        self.assertEqual(record, ["finally"])

    def test_async_with_exit_error_cb(self):
        record = []
        self.assertIsNone(self.run_trio(m.async_with, self.context(record, exit_error=True),
                                        record.append, "swallow"))
        self.assertEqual(record, [1, "finally"])

    def test_async_with_enter_error(self):
        record = []
        with self.assertRaisesRegex(ZeroDivisionError, "on enter"):
            self.run_trio(m.async_with, self.context(record, enter_error=True), None, "none")
        self.assertEqual(record, [])


@needs_trio
class AcrossCopies(unittest.TestCase):
    """test_into_future and test_awaitable_new with a loop that another extension module (its
    own copy of pyasio: _pyasio_runtime_test) names for the run, as asyncio's tests use
    asyncio.get_running_loop(), which every module shares.

    Under trio each copy of pyasio has its own pyasio.TrioLoop for a run (its own class and
    bridge: copies stay isolated), and each copy takes another's loop (the same seam version,
    _pyasio_seam). Found by these tests: task_locals::of refused another copy's TrioLoop."""

    def test_into_future_on_another_copys_loop(self):
        async def main():
            loop = rt.current_loop()  # the run's loop, as another module names it
            self.assertIsNone(await m.await_py_on(trio_sleep(MS), loop))

        trio.run(main)

    def test_awaitable_new_each_copy_takes_the_others_loop(self):
        async def main():
            future = m.sleep(0)
            try:
                mine, theirs = future.get_loop(), rt.current_loop()
                self.assertIsNot(mine, theirs)  # one per copy of pyasio
                self.assertIs(type(mine)._pyasio_seam, type(theirs)._pyasio_seam)
                self.assertIs(rt.task_locals_of(mine)[0], mine)
            finally:
                await future

        trio.run(main)


@needs_trio
class OnTrio(TrioSetup, Pyo3Asyncio, Pyawaitable, unittest.TestCase):
    """trio.run, woken by an eventfd that a trio system task waits on (pyasio's default)."""


@needs_trio
class OnTrioThreadsafeWake(TrioSetup, Pyo3Asyncio, Pyawaitable, unittest.TestCase):
    """trio.run, woken with TrioToken.run_sync_soon (pyasio's call_soon_threadsafe wake)."""

    wake = "threadsafe"


class Coverage(unittest.TestCase):
    """Every test of test_peers.py is ported here or listed in NOT_APPLICABLE, not both. Runs
    without trio too (NOTE: on 3.12 and later, a file whose tests all skip fails: "NO TESTS
    RAN")."""

    def test_every_peer_test_is_ported_or_not_applicable(self):
        import test_peers

        def names(cls):
            return {n for n in dir(cls) if n.startswith("test_")}

        peers = names(test_peers.Pyo3Asyncio) | names(test_peers.Pyawaitable)
        ported = names(Pyo3Asyncio) | names(Pyawaitable)
        self.assertEqual(ported & set(NOT_APPLICABLE), set())
        self.assertEqual(peers - ported - set(NOT_APPLICABLE), set(), "neither ported nor n/a")
        self.assertEqual(ported - peers, set(), "ported tests that test_peers.py does not have")
        self.assertEqual(set(NOT_APPLICABLE) - peers, set())


if __name__ == "__main__":
    unittest.main()
