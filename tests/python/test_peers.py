# SPDX-License-Identifier: BSL-1.0
"""The peers' test suites, ported to pyasio (test module built from pyasio_peers_ext.cpp): the
pytests of pyo3-asyncio 0.17-0.20 and pyo3-async-runtimes (Python's side of them; the C++ side
is tests/test_peers.cpp), and pyawaitable's tests. Each test is named after the peer test it
ports; docs/peers.md maps every peer test to its port, and says where pyasio differs.

Every test runs under three loop set-ups (the classes at the end): asyncio's loop, uvloop's,
and asyncio's loop woken with call_soon_threadsafe (pyasio::set_loop_wake). The peers sleep 1 s
where these sleep a millisecond (MS): the behaviour is tested, not the duration, and nothing
asserts a duration (timeouts only guard against hangs)."""
import asyncio
import collections.abc
import contextlib
import contextvars
import functools
import gc
import inspect
import itertools
import random
import sys
import threading
import time
import unittest
import warnings

import _pyasio_peers_test as m

try:
    import uvloop
except ImportError:
    uvloop = None

MS = 0.001  # what the peers' tests spend a second on
LONG = 60.0  # a wait that only a cancellation ends within a test (a 5 ms one raced the cancel)
tags = itertools.count()


def wait_until(predicate, timeout=10.0):
    """Polls predicate (C++ work ends on other threads); False after timeout seconds.
    NOTE: not stress.wait_until: stress.py imports every other test module."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def finish(loop):
    """asyncio.run's ending for `loop`: the tasks left are cancelled, async generators and the
    default executor shut down, and the loop closed."""
    try:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        if hasattr(loop, "shutdown_default_executor"):
            loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


class CountedWork:
    """The C++ work of one test, counted by tag (test_peers_trio.py's set-ups use it too)."""

    def tag(self):
        """A tag for the C++ work of one test (m.counts(tag) counts only that work)."""
        return "%s.%s.%d" % (type(self).__name__, self._testMethodName, next(tags))

    def assert_never_completed(self, tag):
        """The tag's C++ work (a wait of LONG) was dropped: each wait that began ended
        cancelled (none could have completed meanwhile), and none of them completes later."""
        def settled():
            c = m.counts(tag)
            return "completed" in c or c.get("started", 0) == c.get("aborted", 0)

        self.assertTrue(wait_until(settled), "a C++ wait that began never ended: %s"
                        % m.counts(tag))
        time.sleep(20 * MS)
        self.assertNotIn("completed", m.counts(tag))


class LoopSetup(CountedWork):
    """One loop set-up: the kind of loop, and how C++ threads wake it (chosen per loop at its
    first use by pyasio, so each run makes a fresh loop)."""

    wake = "reader"
    loop_factory = staticmethod(asyncio.new_event_loop)

    def new_loop(self):
        m.set_wake(self.wake)
        loop = self.loop_factory()
        # NOTE: -X dev turns asyncio's debug mode on, which keeps a traceback per handle (slow);
        # the race test turns it on for its own loops.
        loop.set_debug(False)
        return loop

    def run_loop(self, main):
        """asyncio.run(main) on this set-up's loop; the loop must report no error, and nothing
        may be reported as unraisable."""
        loop = self.new_loop()
        errors = []
        loop.set_exception_handler(lambda loop, ctx: errors.append(ctx.get("message")))
        unraisable = []
        hook, sys.unraisablehook = sys.unraisablehook, lambda u: unraisable.append(
            "%s: %s" % (type(u.exc_value).__name__, u.exc_value))

        async def checked():
            self.assertEqual(m.wake_mode(), self.wake)  # the set-up is the one named
            return await main

        try:
            return loop.run_until_complete(checked())
        finally:
            finish(loop)
            gc.collect()
            sys.unraisablehook = hook
            self.assertEqual(errors, [], "the loop reported errors")
            self.assertEqual(unraisable, [], "errors were reported as unraisable")

    def run_call(self, f, *args):
        """self.run_loop of f(*args), called while the loop runs (C++ work on the loop's thread)."""
        async def main():
            return await f(*args)

        return self.run_loop(main())



async def py_sleep(duration):  # pyo3-asyncio's common::TEST_MOD
    await asyncio.sleep(duration)


async def sleep_for_1ms(sleep_for):  # TEST_MOD's sleep_for_1s, scaled
    await sleep_for(MS)


class Pyo3Asyncio:
    """pyo3-asyncio's pytests (0.17 to 0.20, the same in each), with pyo3-async-runtimes'
    additions: Python's side of each; the C++ side is in tests/test_peers.cpp."""

    def test_future_into_py(self):
        # C++ awaits a Python coroutine that awaits C++: C++ -> Python -> C++
        async def main():
            self.assertIsNone(await m.await_py(sleep_for_1ms(m.sleep)))

        self.run_loop(main())

    def test_async_sleep(self):
        # C++ waits on a timer, then awaits asyncio.sleep
        async def main():
            self.assertIsNone(await m.async_sleep(MS))

        self.run_loop(main())

    def test_blocking_sleep(self):
        # A synchronous C++ function blocks a thread of its own (the GIL released): the loop,
        # and C++ work completing on it, go on meanwhile.
        async def main():
            blocking = asyncio.get_running_loop().run_in_executor(None, m.blocking_sleep, 5 * MS)
            for _ in range(3):
                self.assertIsNone(await m.sleep(0))
            self.assertIsNone(await blocking)

        self.run_loop(main())

    def test_into_future(self):
        # C++ awaits a coroutine on task locals it names on a runtime thread, not the loop's
        # (TaskLocals::new(get_current_loop()): task_locals::of(get_current_loop())), and on
        # locals it names there for the loop it is given (TaskLocals::new(event_loop))
        async def main():
            self.assertIsNone(await m.await_py_on(py_sleep(MS)))
            self.assertIsNone(await m.await_py_on(py_sleep(MS), asyncio.get_running_loop()))

        self.run_loop(main())

    def test_other_awaitables(self):
        # C++ awaits an asyncio.Future (an executor's), not a coroutine, on task locals it
        # names on a runtime thread (task_locals::of(get_current_loop()))
        async def main():
            loop = asyncio.get_running_loop()
            task = loop.run_in_executor(None, functools.partial(time.sleep, MS))
            self.assertIsInstance(task, asyncio.Future)
            self.assertIsNone(await m.await_py_on(task))
            self.assertEqual(await m.await_py_on(loop.run_in_executor(None, abs, -3)), 3)
            self.assertEqual(await m.await_py(loop.run_in_executor(None, abs, -4)), 4)

        self.run_loop(main())

    def test_local_future_into_py(self):
        # pyo3-asyncio's local_future_into_py: C++ work on the loop's own thread (state shared
        # without atomics), awaited by C++ on the runtime
        tag = self.tag()

        async def main():
            self.assertEqual(await m.await_py(m.local_counted_sleep(tag, MS)), MS)

        self.run_loop(main())
        self.assertEqual(m.counts(tag), {"started": 1, "completed": 1})

    def test_panic(self):
        # pyasio has no RustPanic: a C++ exception is the matching Python exception
        async def main():
            with self.assertRaisesRegex(RuntimeError, "^this panic was intentional!$"):
                await m.await_py(m.panic("this panic was intentional!"))  # through C++
            with self.assertRaisesRegex(RuntimeError, "^this panic was intentional!$"):
                await m.panic("this panic was intentional!")
            with self.assertRaisesRegex(SystemError, "not derived from std::exception"):
                await m.panic_unknown()

        self.run_loop(main())

    def test_cancel(self):
        # The future is cancelled before C++ awaits it: C++ gets CancelledError, and the C++
        # work behind the future is dropped (it never completes).
        tag = self.tag()

        async def main():
            future = m.counted_sleep(tag, LONG)
            self.assertTrue(future.cancel())
            with self.assertRaises(asyncio.CancelledError):
                await m.await_py(future)

        self.run_loop(main())
        self.assert_never_completed(tag)

    def test_cancel_of_a_lazy_future(self):
        # test_cancel as pyo3-asyncio runs it, where no loop runs at the call: pyasio then
        # returns a LazyFuture, which has Future's cancel(), done(), cancelled(), result() and
        # add_done_callback().
        tag = self.tag()
        future = m.counted_sleep(tag, LONG)
        self.assertFalse(future.done())
        self.assertFalse(future.cancelled())
        called = []
        future.add_done_callback(called.append)
        self.assertTrue(future.cancel())
        self.assertTrue(future.done())
        self.assertTrue(future.cancelled())
        with self.assertRaises(asyncio.CancelledError):
            future.result()

        async def main():
            with self.assertRaises(asyncio.CancelledError):
                await m.await_py(future)

        self.run_loop(main())
        self.assertEqual(called, [future])
        self.assert_never_completed(tag)

    def test_local_cancel(self):
        # test_cancel with the C++ work on the loop's own thread
        tag = self.tag()

        async def main():
            future = m.local_counted_sleep(tag, LONG)
            self.assertTrue(future.cancel())
            with self.assertRaises(asyncio.CancelledError):
                await m.await_py(future)
            # NOTE: the wait ends on the loop's thread (the loop executor): the loop runs until
            # it did, or a loop closed first would drop its end (1 run in the clean clone's
            # uvloop set-up: "a C++ wait that began never ended")
            for _ in range(2000):
                c = m.counts(tag)
                if c.get("started", 0) == c.get("aborted", 0):
                    break
                await asyncio.sleep(0.005)

        self.run_loop(main())
        self.assert_never_completed(tag)

    def test_multiple_asyncio_run(self):
        # From a thread of its own while this loop runs: pyasio::run twice (each makes, runs
        # and closes a loop), then a new loop twice, each awaiting C++. pyasio::run on the
        # thread of a running loop is refused. Afterwards the runtime still serves this loop.
        self.addCleanup(m.restore_runtime)

        async def awaits_cpp():
            return await m.sleep(MS)

        def blocking_thread():
            for _ in range(2):
                self.assertEqual(m.run_sleep(MS), MS)
            for _ in range(2):
                loop = self.new_loop()
                try:
                    self.assertIsNone(loop.run_until_complete(awaits_cpp()))
                finally:
                    finish(loop)

        async def main():
            with self.assertRaisesRegex(RuntimeError, "pyasio::run"):
                m.run_sleep(MS)
            await asyncio.get_running_loop().run_in_executor(None, blocking_thread)
            self.assertIsNone(await m.sleep(MS))

        self.run_loop(main())
        self.assertFalse(m.restore_runtime(), "pyasio::run called from Python shut the "
                                              "process's runtime down")

    def test_async_gen_v1(self):
        async def gen():
            for i in range(10):
                await asyncio.sleep(MS / 10)
                yield i

        async def main():
            self.assertEqual(await m.collect(gen(), 4), list(range(10)))

        self.run_loop(main())

    def test_async_gen_v2(self):
        # the items as Python objects (into_stream<object>)
        async def gen():
            for i in range(10):
                await asyncio.sleep(MS / 10)
                yield i

        async def main():
            self.assertEqual(await m.collect_objects(gen(), 4), list(range(10)))

        self.run_loop(main())

    def test_async_gen_full_buffer(self):
        # pyo3-async-runtimes: a generator much faster than the reader (no awaits) and more
        # items than the buffer: all of them, in order
        async def gen():
            for i in range(1000):
                yield i

        async def main():
            self.assertEqual(await m.collect(gen(), 10), list(range(1000)))
            self.assertEqual(await m.collect_objects(gen(), 10), list(range(1000)))

        self.run_loop(main())

    def test_async_gen_cancelled_item(self):
        # No peer test (pyo3-asyncio's streams cannot be cancelled): one next() cancelled by
        # C++ leaves the stream usable; the __anext__ in flight is not cancelled, and its item
        # goes to the next next() (docs/streams.md).
        class Items:
            def __init__(self):
                self.i = 0
                self.cancelled = 0
                self.gate = asyncio.Event()

            def __aiter__(self):
                return self

            async def __anext__(self):
                if self.i == 2:
                    try:
                        await self.gate.wait()  # item 2 waits until C++ cancelled its next()
                    except asyncio.CancelledError:
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

        self.run_loop(main())

    def test_cpp_stream_cancelled_item(self):
        # No peer test (pyo3-asyncio has no C++ -> Python stream): a cancelled __anext__ of a
        # C++ stream leaves it usable.
        async def main():
            stream = m.gated_count(5, 2)  # item 2 waits for open_gate()
            self.assertEqual([await stream.__anext__() for _ in range(2)], [0, 1])
            step = asyncio.ensure_future(stream.__anext__())
            await asyncio.sleep(0)
            step.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await step
            m.open_gate()
            self.assertEqual([x async for x in stream], [2, 3, 4])

        self.run_loop(main())

    def test_contextvars(self):
        # The context of the call into C++ (a copy, made at the call) is the one the Python
        # coroutine C++ awaits later runs in; twice, each on a new loop.
        cx = contextvars.ContextVar("cx")

        async def contextvars_test():
            self.assertEqual(cx.get(), "foobar")

        async def main():
            cx.set("foobar")
            await m.async_callback(contextvars_test)
            await m.async_callback_on_runtime(contextvars_test)  # called as the Rust one does
            later = m.async_callback(contextvars_test)
            cx.set("changed after the call")
            await later

        for _ in range(2):
            self.run_loop(main())

    def test_race_condition_regression(self):
        # Python cancels a C++ timer's future as the timer completes it: the completion must
        # never reach a cancelled future (InvalidStateError in the loop's exception handler).
        # pyo3-asyncio: 1000 x 100 ms; here 200 x 1 ms, each on a new loop in debug mode.
        triggered = []

        async def trigger_race_condition(delay):
            future = asyncio.wrap_future(m.sleep(MS))
            await asyncio.sleep(delay)
            future.cancel()

        rng = random.Random(18)
        for _ in range(200):
            loop = self.new_loop()
            loop.set_debug(True)
            loop.set_exception_handler(lambda loop, context: triggered.append(context))
            try:
                loop.run_until_complete(trigger_race_condition(rng.uniform(0.99 * MS, 1.01 * MS)))
            finally:
                finish(loop)
            self.assertEqual(triggered, [], "race condition triggered")

    def test_run_forever(self):
        # A loop in run_forever is stopped by C++ on the runtime: loop.call_soon_threadsafe
        # (loop.stop) under the GIL, as the peers do; then through pyasio's loop_executor.
        for stop_later in (m.stop_later, m.stop_later_on_loop):
            with self.subTest(stop_later.__name__):
                loop = self.new_loop()
                asyncio.set_event_loop(loop)
                guard = []
                try:
                    loop.call_later(10, lambda: (guard.append("fired"), loop.stop()))  # hangs
                    stop_later(loop, MS)
                    loop.run_forever()
                    self.assertEqual(guard, [], "C++ did not stop the loop")
                    if stop_later is m.stop_later:
                        self.assertTrue(wait_until(lambda: m.stop_outcome() != ""))
                        self.assertEqual(m.stop_outcome(), "stopped")
                    self.assertNotIn("error", m.stop_outcome())
                finally:
                    asyncio.set_event_loop(None)
                    finish(loop)

    def test_uvloop(self):
        # pyasio::run makes its loop with asyncio.new_event_loop(), so uvloop's policy applies;
        # run_options::uvloop asks for it directly. The pyo3-async-runtimes mains skip where
        # uvloop does not exist (free-threaded builds, new Pythons); so does this test. Under
        # -X dev, run's loop is in debug mode.
        if uvloop is None:
            self.skipTest("uvloop is not installed for this Python (Debian: python3-uvloop)")
        self.addCleanup(m.restore_runtime)
        m.set_wake(self.wake)  # for run's loop too
        policy = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        try:
            self.assertEqual(self.hang_guarded(m.run_loop_type, False), "uvloop.Loop")
        finally:
            asyncio.set_event_loop_policy(policy)
        self.assertEqual(self.hang_guarded(m.run_loop_type, True), "uvloop.Loop")
        self.assertNotEqual(self.hang_guarded(m.run_loop_type, False), "uvloop.Loop")

    def hang_guarded(self, f, *args):
        """f(*args) on a thread of its own: its result, or a failure if it has not returned
        within 5 s (the thread is then left to itself)."""
        outcome = []

        def call():
            try:
                outcome.append((True, f(*args)))
            except BaseException as e:
                outcome.append((False, e))

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        thread.join(5)
        if not outcome:
            self.fail("%s%r did not return within 5 s (the loop never woke up?)"
                      % (f.__name__, args))
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    # --- doc tests and the README (docs/peers.md lists each block) ---

    def test_run_until_complete(self):
        # the doc test of run_until_complete: C++ work runs on a loop that is left open
        loop = self.new_loop()
        try:
            self.assertEqual(m.run_until_complete_sleep(loop, MS), MS)
            self.assertFalse(loop.is_closed())
        finally:
            finish(loop)

    def test_task_locals_doc_example(self):
        # lib.rs: the locals captured at the call (with_running_loop + copy_context) are the
        # ones the C++ work later awaits Python on
        async def main():
            self.assertIsNone(await m.sleep_with_locals(MS))

        self.run_loop(main())

    def test_readme_no_running_event_loop(self):
        # pyo3-asyncio's README: `asyncio.run(rust_sleep())` fails, "no running event loop",
        # because the call is made before a loop runs. pyasio deliberately differs: the call
        # returns a LazyFuture that starts on the loop that awaits it.
        pending = m.sleep(MS)
        self.assertEqual(type(pending).__name__, "LazyFuture")
        self.assertIsNone(self.run_loop(pending))
        if self.loop_factory is asyncio.new_event_loop:
            self.assertIsNone(asyncio.run(m.sleep(MS)))


async def dummy(called):
    await asyncio.sleep(0)
    called.append(True)


async def raising(exception=None):
    await asyncio.sleep(0)
    raise exception or ZeroDivisionError()


async def echo(value):
    await asyncio.sleep(0)
    return value


class Pyawaitable:
    """pyawaitable's tests (v2: test_main.py and the C tests; v1.4: the Python tests), where
    pyasio has an equivalent: C++ work that awaits Python awaitables in turn. Its callbacks
    are C++ code after each co_await, its error callbacks catch blocks."""

    def test_awaitable_semantics(self):
        aw = m.sleep(0)  # made with no loop running: a LazyFuture
        self.assertIsInstance(aw, collections.abc.Awaitable)
        self.assertIsInstance(aw, collections.abc.Coroutine)
        self.assertFalse(inspect.iscoroutine(aw))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del aw
            gc.collect()
        # pyawaitable warns with ResourceWarning; pyasio warns as a coroutine never awaited
        self.assertIn(RuntimeWarning, [w.category for w in caught])
        called = []
        self.assertIsNone(self.run_loop(m.await_py(dummy(called))))
        self.assertEqual(called, [True])

    def test_coroutine_propagates_exception(self):
        with self.assertRaises(ZeroDivisionError):
            self.run_loop(m.await_py(raising()))

    def test_awaitable_new(self):
        lazy = m.sleep(0)
        self.assertEqual(type(lazy).__name__, "LazyFuture")
        lazy.close()

        async def main():
            future = m.sleep(0)  # with a loop running: an asyncio.Future of that loop
            self.assertIsInstance(future, asyncio.Future)
            self.assertIs(future.get_loop(), asyncio.get_running_loop())
            await future
            with self.assertRaises(MemoryError):  # std::bad_alloc in the C++ work
                await m.out_of_memory()

        self.run_loop(main())

    def test_set_result(self):
        value = object()

        async def main():
            before = sys.getrefcount(value)
            future = m.echo_on_loop(value)
            self.assertGreater(sys.getrefcount(value), before)  # the C++ work holds it
            self.assertIs(await future, value)

        self.run_loop(main())

    def test_add_await(self):
        async def main():
            with self.assertRaisesRegex(TypeError, "expected an awaitable"):
                await m.await_py(sys)  # a module is not awaitable
            with self.assertRaisesRegex(TypeError, "expected an awaitable"):
                await m.await_py(None)
            called = []
            self.assertIsNone(await m.await_py(dummy(called)))
            self.assertEqual(called, [True])

        self.run_loop(main())

    def test_add_await_special_cases(self):
        # 16 empty awaitables (C++ futures), then a coroutine, awaited in turn
        async def main():
            called = []
            children = [m.sleep(0) for _ in range(16)]
            self.assertEqual(await m.await_each(children + [dummy(called)]), [None] * 17)
            self.assertEqual(called, [True])

        self.run_loop(main())

    def with_handlers(self, coro, on_result, on_error):
        """Runs m.with_handlers; (its result or exception, what its handlers counted)."""
        tag = self.tag()

        async def main():
            try:
                return await m.with_handlers(tag, coro, on_result, on_error)
            except Exception as e:
                return e

        return self.run_loop(main()), m.counts(tag)

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
        # pyawaitable: a callback returning -1 with no exception set is a SystemError; pyasio:
        # a C++ exception not derived from std::exception is
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

        refcounts = self.run_loop(main())
        gc.collect()
        self.assertEqual([sys.getrefcount(v) for v in values], refcounts)  # and let go of

    def test_object_values_can_outlive_awaitable(self):
        # C++ work that holds an object, cancelled: it lets go of the object, which lives on
        held = object()

        async def main():
            before = sys.getrefcount(held)
            future = m.hold_on_loop(held, 60.0)
            self.assertGreater(sys.getrefcount(held), before)
            future.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await future
            for _ in range(10_000):  # the work ends on the loop thread soon after
                if sys.getrefcount(held) == before:
                    break
                await asyncio.sleep(MS)
            self.assertEqual(sys.getrefcount(held), before)

        self.run_loop(main())
        self.assertIsInstance(held, object)

    # --- pyawaitable v1.4's Python tests ---

    def test_new(self):
        # What future_into_py returns is accepted by every asyncio API that takes an awaitable:
        # made while a loop runs (an asyncio.Future) and made with none (a LazyFuture).
        made_before = {name: m.sleep(0) for name in (
            "await", "create_task", "loop.create_task", "ensure_future", "gather", "wait_for",
            "shield", "TaskGroup.create_task")}

        async def main():
            for lazy in (False, True):
                def made(name):
                    return made_before.pop(name) if lazy else m.sleep(0)

                loop = asyncio.get_running_loop()
                ways = {
                    "await": lambda f: f,
                    "create_task": asyncio.create_task,
                    "loop.create_task": loop.create_task,
                    "ensure_future": asyncio.ensure_future,
                    "gather": lambda f: asyncio.gather(f),
                    "wait_for": lambda f: asyncio.wait_for(f, 10),
                    "shield": asyncio.shield,
                }
                for name, way in ways.items():
                    with self.subTest(name, lazy=lazy):
                        result = await way(made(name))
                        self.assertIn(result, (None, [None]))
                if hasattr(asyncio, "TaskGroup"):
                    with self.subTest("TaskGroup.create_task", lazy=lazy):
                        async with asyncio.TaskGroup() as group:
                            task = group.create_task(made("TaskGroup.create_task"))
                        self.assertIsNone(task.result())

        try:
            self.run_loop(main())
        finally:
            for f in made_before.values():  # left by a failure, or no TaskGroup
                f.close()
        self.assertIsNone(asyncio.run(m.sleep(0)))  # asyncio.run(mod.f())

    def test_await(self):
        called = []

        async def many_sleeps():
            for _ in range(1000):  # pyawaitable: 10000
                await asyncio.sleep(0)
            called.append(True)

        self.run_loop(m.await_py(many_sleeps()))
        self.assertEqual(called, [True])

    def test_await_order(self):
        self.assertEqual(self.run_loop(m.await_each([echo(1), echo(2), echo(3)])), [1, 2, 3])

    def test_await_cancel(self):
        # C++ stops after the first result (pyawaitable cancels from its callback): the other
        # coroutines are closed, never awaited, and warn of nothing
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.assertEqual(self.run_loop(m.await_until([echo(1), echo(2), echo(3)], 1)), [1])
            gc.collect()
        self.assertEqual([str(w.message) for w in caught if w.category is RuntimeWarning], [])

    def test_awaitable_chaining(self):
        # an awaitable of C++ awaiting an awaitable of C++
        self.assertEqual(self.run_loop(m.await_py(m.await_until([echo(1), echo(2)], 1))), [1])

    def test_coro_raise(self):
        original = ZeroDivisionError("test")
        with self.assertRaises(ZeroDivisionError) as caught:
            self.run_loop(m.await_py(raising(original)))
        self.assertIs(caught.exception, original)

    def test_await_no_cb_raise(self):
        with self.assertRaisesRegex(TypeError, "expected an awaitable"):
            self.run_loop(m.await_py(42))

    def test_set_results(self):
        self.assertEqual(self.run_loop(m.await_py(echo("abc"))), "abc")

    def test_set_results_tracked_type(self):
        class Result:
            def __init__(self):
                self.value = [1, 2, 3, 4]

        result = Result()
        self.assertIs(self.run_loop(m.await_py(echo(result))), result)
        self.assertEqual(result.value, [1, 2, 3, 4])

    def test_await_function(self):
        async def coro(i, s):
            await asyncio.sleep(0)
            return str(i * 2) + s

        self.assertEqual(self.run_loop(m.await_call(coro, 21, "hello")), "42hello")

    def test_await_cb(self):
        outcome, counts = self.with_handlers(echo(42), "ok", "none")
        self.assertEqual((outcome, counts), (42, {"result_called": 1}))

    def test_await_cb_err(self):
        async def divide():
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
        results = self.run_loop(m.await_each([dummy(called) for _ in range(500)]))
        self.assertEqual((results, called), ([None] * 500, [True] * 500))

    # --- async with (v1.4's PyAwaitable_AsyncWith), from C++ ---

    def context(self, record, enter_error=False, exit_error=False, after_yield_error=False):
        @contextlib.asynccontextmanager
        async def ctx():
            await asyncio.sleep(0)
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

        self.assertIsNone(self.run_call(m.async_with, self.context(record), body, "none"))
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
        self.assertIsNone(self.run_call(m.async_with, self.context(record), None, "none"))
        self.assertEqual(record, ["finally"])

    def test_async_with_no_callback_error(self):
        record = []
        with self.assertRaisesRegex(ZeroDivisionError, "after the yield"):
            self.run_call(m.async_with, self.context(record, after_yield_error=True), None,
                          "none")
        self.assertEqual(record, ["finally"])

    def test_async_with_no_callback_exit_error(self):
        record = []
        with self.assertRaisesRegex(ZeroDivisionError, "in the finally"):
            self.run_call(m.async_with, self.context(record, exit_error=True), None, "none")

    def test_async_with_cb_error(self):
        # The block raises: __aexit__ gets the exception and the finally runs. pyawaitable
        # then completes; pyasio's C++ does what `async with` does (the exception goes on)
        # unless its error handler swallows it.
        def body(value):
            raise RuntimeError("test")

        record = []
        with self.assertRaisesRegex(RuntimeError, "^test$"):
            self.run_call(m.async_with, self.context(record), body, "none")
        self.assertEqual(record, ["finally"])
        record = []
        self.assertIsNone(self.run_call(m.async_with, self.context(record), body, "swallow"))
        self.assertEqual(record, ["finally"])

    def test_async_with_exit_error(self):
        record = []
        self.assertIsNone(self.run_call(m.async_with, self.context(record, exit_error=True), None,
                                        "swallow"))
        self.assertEqual(record, ["finally"])

    def test_async_with_exit_error_cb(self):
        record = []
        self.assertIsNone(self.run_call(m.async_with, self.context(record, exit_error=True),
                                        record.append, "swallow"))
        self.assertEqual(record, [1, "finally"])

    def test_async_with_enter_error(self):
        record = []
        with self.assertRaisesRegex(ZeroDivisionError, "on enter"):
            self.run_call(m.async_with, self.context(record, enter_error=True), None, "none")
        self.assertEqual(record, [])


class OnAsyncio(LoopSetup, Pyo3Asyncio, Pyawaitable, unittest.TestCase):
    """asyncio's own loop, woken by an eventfd (pyasio's default)."""


@unittest.skipIf(uvloop is None, "uvloop is not installed for this Python "
                 "(Debian's python3-uvloop serves the system python3)")
class OnUvloop(LoopSetup, Pyo3Asyncio, Pyawaitable, unittest.TestCase):
    """uvloop's loop."""

    loop_factory = staticmethod(uvloop.new_event_loop if uvloop else None)


class OnAsyncioThreadsafeWake(LoopSetup, Pyo3Asyncio, Pyawaitable, unittest.TestCase):
    """asyncio's loop, woken with loop.call_soon_threadsafe (the mode for loops without
    add_reader)."""

    wake = "threadsafe"


if __name__ == "__main__":
    unittest.main()
