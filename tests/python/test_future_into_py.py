# SPDX-License-Identifier: BSL-1.0
"""Python awaits C++: pyasio::future_into_py through the loop bridge (test module built from
pyasio_async_ext.cpp)."""
import asyncio
import contextvars
import gc
import os
import sys
import threading
import time
import unittest
import warnings

import _pyasio_async_test as m
from loops import ProactorLikeLoop
from stress import wait_until

try:
    import uvloop
except ImportError:
    uvloop = None


class FutureIntoPy:
    """The tests, run on each kind of loop and wake mode by the subclasses below."""

    wake = "reader"
    expected_wake = None  # the mode the bridge uses: `wake`, unless the loop refuses add_reader
    loop_factory = staticmethod(asyncio.new_event_loop)

    def run_on_loop(self, coro):
        m.set_wake(self.wake)
        loop = self.loop_factory()
        # NOTE: -X dev turns on asyncio's debug mode, which records a traceback for every future
        # and handle: 100k of them take seconds. Warnings and resource checks stay on.
        loop.set_debug(False)
        errors = []
        loop.set_exception_handler(lambda loop, ctx: errors.append(ctx))
        try:
            return loop.run_until_complete(coro)
        finally:
            loop.close()
            self.assertEqual(errors, [], "the loop reported errors (e.g. InvalidStateError)")

    def test_results_of_every_convertible_type(self):
        async def main():
            self.assertIsNone(await m.noop())
            self.assertEqual(await m.echo_int(-(2**63)), -(2**63))
            self.assertIs(await m.echo_bool(True), True)
            self.assertEqual(await m.echo_float(2.5), 2.5)
            self.assertEqual(await m.echo_str("h\u00e9llo"), "h\u00e9llo")
            self.assertEqual(await m.echo_bytes(b"\x00\xff"), b"\x00\xff")
            self.assertEqual(await m.echo_list([1.5, 2]), [1.5, 2.0])
            self.assertIsNone(await m.echo_optional(None))
            self.assertEqual(await m.echo_optional("x"), "x")
            self.assertEqual(await m.echo_tuple((1, "a", [2, 3])), (1, "a", [2, 3]))
            self.assertEqual(await m.echo_dict({"a": 1}), {"a": 1})
            self.assertEqual(await m.greet("you"), "hello you")  # an asio::awaitable
            self.assertIsNone(await m.timer_wait(1))  # an Asio initiation
            counters = m.bridge_counters()
            self.assertEqual(counters[2], self.expected_wake or self.wake)
            mode, kind, fd = m.wake_info(asyncio.get_running_loop())[:3]
            self.assertEqual(mode, counters[2])
            self.assertEqual(kind == "none", mode == "threadsafe")  # fds closed on a fall back
            self.assertEqual(fd == -1, mode == "threadsafe")

        self.run_on_loop(main())

    def test_wrong_argument_type_raises_at_the_call(self):
        with self.assertRaisesRegex(TypeError, "^expected int, got str$"):
            m.echo_int("1")

    def test_exceptions(self):
        async def main():
            with self.assertRaisesRegex(ValueError, "^boom$"):
                await m.fail("boom")
            with self.assertRaises(ConnectionRefusedError) as cm:
                await m.refuse()
            self.assertEqual(cm.exception.errno, 111)
            self.assertIn("connect", str(cm.exception))
            with self.assertRaises(ConnectionRefusedError) as cm:  # Asio's own error category
                await m.connect_closed_port()
            self.assertEqual(cm.exception.errno, 111)
            original = KeyError("from Python")
            with self.assertRaises(KeyError) as cm:
                await m.raise_later(original)
            self.assertIs(cm.exception, original)
            with self.assertRaises(UnicodeDecodeError):
                await m.bad_result()

        self.run_on_loop(main())

    def test_task_locals_captured_at_the_call(self):
        var = contextvars.ContextVar("var")

        async def main():
            var.set("at the call")
            inside = m.task_locals_here()
            in_initiation = m.task_locals_in_initiation()
            var.set("after the call")
            for future in (inside, in_initiation):
                loop, context = await future
                self.assertIs(loop, asyncio.get_running_loop())
                self.assertIsInstance(context, contextvars.Context)
                self.assertEqual(context[var], "at the call")  # a copy made at the call
            self.assertFalse(m.has_task_locals())  # outside C++ work: none
            loop, context = m.capture_task_locals()  # explicitly, on the loop's thread
            self.assertIs(loop, asyncio.get_running_loop())
            self.assertEqual(context[var], "after the call")

        self.run_on_loop(main())
        with self.assertRaisesRegex(RuntimeError, "no running event loop"):
            m.capture_task_locals()

    def cancelled_in_cpp(self, action):
        before = m.stats()["aborted"]
        self.run_on_loop(action())
        self.assertTrue(wait_until(lambda: m.stats()["aborted"] > before),
                        "the C++ wait never saw operation_aborted")

    @staticmethod
    async def started_in_cpp(started):
        """Until the C++ wait began (else a cancel reaches work that never starts); 10 s at most."""
        for _ in range(10_000):
            if m.stats()["started"] != started:
                return
            await asyncio.sleep(0.001)
        raise AssertionError("the C++ wait did not begin within 10 s")

    def test_cancel_reaches_cpp(self):
        async def action():
            started = m.stats()["started"]
            task = asyncio.ensure_future(m.sleep_ms(60_000))
            await self.started_in_cpp(started)
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task

        self.cancelled_in_cpp(action)

    def test_wait_for_timeout_reaches_cpp(self):
        async def action():
            started = m.stats()["started"]
            task = asyncio.ensure_future(m.sleep_ms(60_000))
            await self.started_in_cpp(started)
            with self.assertRaises(asyncio.TimeoutError):
                await asyncio.wait_for(task, 0.02)

        self.cancelled_in_cpp(action)

    def test_every_asyncio_api_takes_what_it_returns(self):
        # What a user writes every day: create_task(mod.f()), as with an async def's coroutine.
        async def main():
            loop = asyncio.get_running_loop()
            self.assertTrue(asyncio.isfuture(m.noop()) and asyncio.iscoroutine(m.noop()))
            self.assertEqual(await m.echo_int(1), 1)
            self.assertEqual(await asyncio.create_task(m.echo_int(2)), 2)
            self.assertEqual(await loop.create_task(m.echo_int(3)), 3)
            self.assertEqual(await asyncio.ensure_future(m.echo_int(4)), 4)
            self.assertEqual(await asyncio.gather(m.echo_int(5), m.echo_int(6)), [5, 6])
            self.assertEqual(await asyncio.wait_for(m.echo_int(7), 10), 7)
            self.assertEqual(await asyncio.shield(m.echo_int(8)), 8)
            done, _ = await asyncio.wait([asyncio.create_task(m.echo_int(9))])
            self.assertEqual(done.pop().result(), 9)
            if sys.version_info >= (3, 11):
                async with asyncio.TaskGroup() as group:
                    task = group.create_task(m.echo_int(10))
                self.assertEqual(task.result(), 10)
            with self.assertRaisesRegex(ValueError, "^boom$"):
                await asyncio.create_task(m.fail("boom"))
            if sys.version_info >= (3, 11):  # asyncio.wait takes tasks, not coroutines
                call = m.echo_int(11)
                with self.assertRaisesRegex(TypeError, "Passing coroutines is forbidden"):
                    await asyncio.wait([call])
                self.assertEqual(await call, 11)

        self.run_on_loop(main())

    def test_cancelling_a_task_made_by_create_task_reaches_cpp(self):
        async def action():
            started = m.stats()["started"]
            task = asyncio.create_task(m.sleep_ms(60_000))
            await self.started_in_cpp(started)
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task

        self.cancelled_in_cpp(action)

    def test_a_task_cancelled_before_its_first_step_cancels_cpp(self):
        # The task throws CancelledError into what it was given: the work is cancelled with it.
        async def action():
            started = m.stats()["started"]
            future = m.sleep_ms(60_000)
            await self.started_in_cpp(started)
            task = asyncio.create_task(future)
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task

        self.cancelled_in_cpp(action)

    @unittest.skipIf(sys.version_info < (3, 11), "asyncio.TaskGroup is new in 3.11")
    def test_a_task_group_that_aborts_cancels_cpp(self):
        async def action():
            started = m.stats()["started"]
            with self.assertRaises(BaseException):  # ExceptionGroup (3.11+)
                async with asyncio.TaskGroup() as group:
                    group.create_task(m.sleep_ms(60_000))
                    await self.started_in_cpp(started)
                    raise KeyError("abort")

        self.cancelled_in_cpp(action)

    def test_cancel_reaches_an_initiation(self):
        # An Asio initiation gets pyasio's completion handler directly: its cancellation slot
        # must reach the timer, or the 60 s wait (and the timer it holds) would live on.
        async def action():
            freed = m.stats()["timers_freed"]
            task = asyncio.ensure_future(m.timer_wait(60_000))
            await asyncio.sleep(0.01)
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task
            return freed

        freed = self.run_on_loop(action())
        self.assertTrue(wait_until(lambda: m.stats()["timers_freed"] > freed),
                        "the timer's wait was not cancelled")

    def test_garbage_collected_future_cancels_cpp(self):
        async def action():
            started = m.stats()["started"]
            future = m.sleep_ms(60_000)
            await self.started_in_cpp(started)
            del future  # the last reference
            gc.collect()
            await asyncio.sleep(0)

        self.cancelled_in_cpp(action)

    def test_a_future_completed_by_python_cancels_cpp(self):
        for end in ("set_result", "set_exception"):
            with self.subTest(end=end):
                async def action():
                    started, aborted = m.stats()["started"], m.stats()["aborted"]
                    future = m.sleep_ms(60_000)
                    await self.started_in_cpp(started)
                    if end == "set_result":
                        future.set_result("from Python")
                        self.assertEqual(await future, "from Python")
                    else:
                        future.set_exception(KeyError("from Python"))
                        with self.assertRaises(KeyError):
                            await future
                    # NOTE: while the future lives (its collection would cancel the work too)
                    for _ in range(10_000):
                        if m.stats()["aborted"] > aborted:
                            break
                        await asyncio.sleep(0.001)
                    self.assertGreater(m.stats()["aborted"], aborted,
                                       "the C++ wait never saw operation_aborted")
                    self.assertFalse(future.cancelled())

                self.run_on_loop(action())

    def test_the_operation_is_out_of_pythons_reach(self):
        async def main():
            future = m.sleep_ms(1)
            self.assertFalse(hasattr(future, "_pyasio_operation"))
            self.assertFalse(hasattr(type(future), "_pyasio_operation"))
            future._pyasio_operation = None  # the instance's own attribute: no effect
            self.assertIsNone(await future)

        self.run_on_loop(main())

    def test_a_future_ended_behind_its_back_drops_the_result_quietly(self):
        # asyncio.Future's own cancel() does not tell pyasio: the C++ work runs to its end, and
        # its result finds the future done (no InvalidStateError, nothing unraisable)
        unraisable = []
        hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
        try:
            async def main():
                completed = m.stats()["completed"]
                future = m.sleep_ms(30)
                self.assertTrue(asyncio.Future.cancel(future))
                for _ in range(10_000):  # the C++ wait ends and completes
                    if m.stats()["completed"] > completed:
                        break
                    await asyncio.sleep(0.001)
                self.assertGreater(m.stats()["completed"], completed)
                self.assertEqual(await m.echo_int(7), 7)  # its completion was drained before
                self.assertTrue(future.cancelled())

            self.run_on_loop(main())
        finally:
            sys.unraisablehook = hook
        self.assertEqual(unraisable, [])

    many = 20_000  # 100k on the default loop below; fewer here to keep the suite quick

    def test_many_concurrent_futures(self):
        async def main():
            results = await asyncio.gather(*[m.echo_int(i) for i in range(self.many)])
            self.assertEqual(results, list(range(self.many)))
            pushes, drains, _ = m.bridge_counters()
            self.assertGreaterEqual(pushes, self.many)
            self.assertLess(drains, pushes)  # batched: far fewer wakes than completions

        self.run_on_loop(main())

    def test_completion_racing_cancellation(self):
        async def main():
            futures = [m.sleep_ms(i % 3) for i in range(5000)]
            for i, f in enumerate(futures):
                if i % 2:
                    f.cancel()
            await asyncio.sleep(0.001)
            results = await asyncio.gather(*futures, return_exceptions=True)
            cancelled = sum(isinstance(r, asyncio.CancelledError) for r in results)
            self.assertEqual(cancelled, 2500)
            self.assertEqual(results.count(None), 2500)
            await asyncio.sleep(0.05)  # let late completions of cancelled work arrive

        self.run_on_loop(main())


class OnAsyncio(FutureIntoPy, unittest.TestCase):
    many = 100_000


class OnAsyncioThreadsafeWake(FutureIntoPy, unittest.TestCase):
    wake = "threadsafe"


class OnProactorLikeLoop(FutureIntoPy, unittest.TestCase):
    """A loop whose add_reader raises NotImplementedError (Windows' ProactorEventLoop): reader
    mode, chosen, falls back to call_soon_threadsafe by itself."""

    loop_factory = ProactorLikeLoop
    wake = "reader"
    expected_wake = "threadsafe"


@unittest.skipIf(uvloop is None, "uvloop is not installed for this Python "
                 "(Debian's python3-uvloop serves the system python3)")
class OnUvloop(FutureIntoPy, unittest.TestCase):
    loop_factory = staticmethod(lambda: uvloop.new_event_loop())


class WithoutRunningLoop(unittest.TestCase):
    def test_the_lazy_future_type_makes_no_instances(self):
        lazy = m.echo_int(1)  # no loop runs: a pyasio.LazyFuture
        with self.assertRaisesRegex(TypeError, "cannot create"):
            type(lazy)()
        lazy.close()

    def test_the_coroutine_methods_refuse_what_is_not_a_future(self):
        # pyasio.Future's send/throw/close come from a base class of their own, which Python
        # code can reach: on anything but a pyasio.Future they raise, never crash.
        async def future_type():
            fut = m.echo_int(1)
            self.assertEqual(await fut, 1)
            return type(fut)

        methods = next(c for c in asyncio.run(future_type()).__mro__
                       if c.__name__ == "_CoroutineMethods")
        with self.assertRaisesRegex(TypeError, "is for a pyasio.Future"):
            object.__new__(methods).send(None)

        class Odd(methods):
            def __await__(self):
                return [1]

        with self.assertRaisesRegex(TypeError, "non-iterator"):
            Odd().send(None)
        with self.assertRaises(AttributeError):  # no cancel() to call: an error, no crash
            object.__new__(methods).close()

    def test_asyncio_run_takes_the_call_directly(self):
        self.assertEqual(asyncio.run(m.echo_int(42)), 42)
        self.assertIsNone(asyncio.run(m.sleep_ms(1)))
        with self.assertRaisesRegex(ValueError, "boom"):
            asyncio.run(m.fail("boom"))

    def test_never_awaited_starts_nothing_and_warns(self):
        started = m.stats()["started"]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pending = m.sleep_ms(1)
            del pending
            gc.collect()
        messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
        self.assertTrue(any("was never awaited" in text for text in messages), messages)
        time.sleep(0.05)
        self.assertEqual(m.stats()["started"], started)

    def test_awaited_twice_is_an_error(self):
        call = m.echo_int(1)

        async def twice():
            self.assertEqual(await call, 1)
            with self.assertRaisesRegex(RuntimeError, "cannot reuse already awaited coroutine"):
                await call

        asyncio.run(twice())

    def test_asyncio_run_100_times_releases_every_bridge(self):
        for i in range(100):
            self.assertEqual(asyncio.run(m.echo_int(i)), i)
        for _ in range(200):  # a runtime thread may still be letting go of the last operation
            gc.collect()
            if m.stats()["bridges"] == 0:
                break
            time.sleep(0.01)
        self.assertEqual(m.stats()["bridges"], 0)

    def test_two_loops_in_two_threads(self):
        results = {}

        def worker(name):
            async def main():
                return sum(await asyncio.gather(*[m.echo_int(i) for i in range(2000)]))

            results[name] = asyncio.run(main())

        threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, {"a": 1999000, "b": 1999000})

    def test_misuse_of_the_lazy_awaitable(self):
        call = m.noop()
        with self.assertRaisesRegex(TypeError, "can't send non-None value to a just-started"):
            call.send(1)
        call.close()
        call = m.noop()
        with self.assertRaisesRegex(RuntimeError, "no running event loop"):
            call.send(None)  # driven by hand, outside any loop
        with self.assertRaisesRegex(RuntimeError, "cannot reuse already awaited coroutine"):
            call.send(None)
        call = m.noop()
        with self.assertRaises(KeyError):
            call.throw(KeyError("k"))  # never started: raised here, and it is over
        with self.assertRaisesRegex(RuntimeError, "cannot reuse already awaited coroutine"):
            call.send(None)

    def test_the_future_methods_before_and_after_the_start(self):
        call = m.echo_int(5)
        self.assertFalse(call.done())
        self.assertFalse(call.cancelled())
        with self.assertRaisesRegex(asyncio.InvalidStateError, "Result is not set"):
            call.result()
        seen = []
        call.add_done_callback(seen.append)
        self.assertEqual(asyncio.run(call), 5)
        self.assertTrue(call.done())
        self.assertEqual(call.result(), 5)
        self.assertIsNone(call.exception())
        self.assertEqual(len(seen), 1)  # the started future, done with the same result
        self.assertEqual(seen[0].result(), 5)

    def test_cancel_before_the_start_never_starts_the_work(self):
        started = m.stats()["started"]
        call = m.sleep_ms(60_000)
        seen = []
        call.add_done_callback(seen.append)
        self.assertTrue(call.cancel())
        self.assertFalse(call.cancel())
        self.assertEqual(seen, [call])  # no loop runs: called at once
        self.assertTrue(call.done() and call.cancelled())
        with self.assertRaises(asyncio.CancelledError):
            call.result()
        with self.assertRaises(asyncio.CancelledError):
            asyncio.run(call)
        time.sleep(0.02)
        self.assertEqual(m.stats()["started"], started)

    def test_cancel_after_the_start_reaches_cpp(self):
        before, started = m.stats()["aborted"], m.stats()["started"]
        call = m.sleep_ms(60_000)  # no loop runs: a LazyFuture

        async def main():
            task = asyncio.ensure_future(call)  # its first step starts the work
            await FutureIntoPy.started_in_cpp(started)
            self.assertTrue(call.cancel())  # the started future is cancelled
            with self.assertRaises(asyncio.CancelledError):
                await task
            self.assertTrue(call.cancelled())

        asyncio.run(main())
        self.assertTrue(wait_until(lambda: m.stats()["aborted"] > before),
                        "the C++ wait never saw operation_aborted")

    def test_close_without_await_is_quiet(self):
        call = m.noop()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call.close()
            del call
            gc.collect()
        self.assertEqual([w for w in caught if w.category is RuntimeWarning], [])


class UserExecutor(unittest.TestCase):
    def test_cancelled_before_it_starts_never_starts(self):
        async def main():
            started = m.stats()["paused_started"]
            futures = [m.sleep_ms_paused(60_000) for _ in range(100)]
            for f in futures:
                f.cancel()
            # Work queued for a context that is not running holds up nothing else.
            self.assertEqual(await m.echo_int(7), 7)
            m.resume_paused()
            # The paused context has one thread: this runs after the 100 start attempts.
            self.assertIsNone(await m.noop_paused())
            self.assertTrue(all(f.cancelled() for f in futures))
            self.assertEqual(m.stats()["paused_started"], started)
            self.assertIsNone(await m.sleep_ms_paused(1))  # and it runs new work normally
            self.assertEqual(m.stats()["paused_started"], started + 1)

        asyncio.run(main())

    @unittest.skipIf((os.cpu_count() or 1) < 2, "one hardware thread: a batch starts on one")
    def test_a_batch_of_work_starts_on_several_threads(self):
        # Queued for a context that is not running, the two works form one batch. Each waits
        # (busy, up to 5 s) for the other to start: they meet only on different threads.
        async def main():
            futures = [m.meet_paused(2) for _ in range(2)]
            m.resume_paused_pair()
            return await asyncio.gather(*futures)

        self.assertEqual(asyncio.run(main()), [True, True])

    def test_an_initiation_that_throws_reports_its_error(self):
        # Its completion handler is destroyed unrun as the exception leaves: the error, not a
        # cancellation, is the outcome.
        async def main():
            with self.assertRaisesRegex(ValueError, "^the initiation refused before the wait$"):
                await asyncio.wait_for(m.initiation_throws(), 10)

        asyncio.run(main())

    def test_a_users_io_context_runs_until_the_work_that_waits_on_python_ends(self):
        # A user runs their io_context with io.run() and no work guard: run() must not return
        # while future_into_py work on it waits for Python (nothing else is queued there then)
        async def answer():
            await asyncio.sleep(0.2)
            return 41

        async def main():
            return await asyncio.wait_for(m.await_on_run_once_context(answer), 10)

        self.assertEqual(asyncio.run(main()), 41)
        self.assertFalse(m.run_once_context_returned_first())

    def test_work_whose_context_is_destroyed_ends_cancelled(self):
        # Asio destroys the pending work unrun with its context: the future must not wait for
        # ever, and the operation's strand must not be touched after the context is gone.
        async def main():
            future = m.context_destroyed_midway()
            await asyncio.wait([asyncio.create_task(future)], timeout=10)
            return future

        future = asyncio.run(main())
        self.assertTrue(future.cancelled())
        if sys.version_info >= (3, 9):  # a cancel message
            with self.assertRaisesRegex(asyncio.CancelledError, "execution context of this "
                                        "C\\+\\+ work was destroyed .*keep it running"):
                future.result()

    def test_bad_input_reaches_python_as_named_errors(self):
        async def main():
            with self.assertRaisesRegex(UnicodeDecodeError, "a C\\+\\+ string sent to Python "
                                                            "must hold UTF-8; send bytes"):
                await m.bad_utf8()  # the result's conversion fails on the loop thread
            with self.assertRaisesRegex(OverflowError, "out of range for C\\+\\+ long .*wider"):
                m.echo_int(2 ** 70)  # at the call
            with self.assertRaisesRegex(TypeError, "^expected int, got NoneType$"):
                m.echo_int(None)

        asyncio.run(main())

    def test_stop_iteration_from_work_becomes_a_runtime_error(self):
        # A Future refuses StopIteration (before 3.12 with a TypeError, leaving it pending).
        async def main():
            stop = StopIteration("from C++")
            with self.assertRaisesRegex(RuntimeError, "raised StopIteration") as caught:
                await asyncio.wait_for(m.raise_later(stop), 10)
            self.assertIs(caught.exception.__cause__, stop)
            with self.assertRaisesRegex(ValueError, "passes as it is"):
                await m.raise_later(ValueError("passes as it is"))

        asyncio.run(main())

    @unittest.skipIf((os.cpu_count() or 1) < 2, "a batch is cut into runs only with 2+ CPUs")
    def test_work_of_a_posted_run_that_never_ran_ends_cancelled(self):
        # The context runs the batch's start (the first run starts, the others are posted) and
        # is destroyed: each work ends, the never-started ones as cancelled.
        async def main():
            futures = m.batch_then_discard(8)
            # (asyncio.wait takes tasks, not the coroutines that pyasio's futures also are)
            done, pending = await asyncio.wait([asyncio.create_task(f) for f in futures],
                                               timeout=10)
            self.assertEqual(pending, set())
            return [f.cancelled() for f in futures]

        cancelled = asyncio.run(main())
        self.assertEqual(len(cancelled), 8)
        self.assertTrue(cancelled[-1], cancelled)  # the last run was posted


if __name__ == "__main__":
    unittest.main()
