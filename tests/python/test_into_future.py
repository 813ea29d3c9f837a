# SPDX-License-Identifier: BSL-1.0
"""C++ awaits Python: pyasio::into_future (test module built from pyasio_into_future_ext.cpp).
Each test gives C++ work (started by future_into_py) a Python awaitable to await."""
import asyncio
import contextvars
import gc
import random
import sys
import threading
import time
import unittest
import warnings

import _pyasio_into_future_test as m
from loops import ProactorLikeLoop

try:
    import uvloop
except ImportError:
    uvloop = None

var = contextvars.ContextVar("var", default="unset")


class IntoFuture:
    """The tests, run on each kind of loop by the subclasses below."""

    loop_factory = staticmethod(asyncio.new_event_loop)
    expected_wake = "reader"  # the default; call_soon_threadsafe for a loop without add_reader

    def run_on_loop(self, coro, expected_errors=()):
        loop = self.loop_factory()
        loop.set_debug(False)  # -X dev's debug mode records a traceback per handle: slow
        errors = []
        # NOTE: only the message: keeping the context would keep (resurrect) a dying task.
        loop.set_exception_handler(lambda loop, ctx: errors.append(ctx["message"]))
        try:
            return loop.run_until_complete(coro)
        finally:
            loop.close()
            self.assertEqual(errors, list(expected_errors), "the loop reported errors")

    def test_the_loop_is_woken_as_expected(self):
        async def coro(x):
            await asyncio.sleep(0.001)
            return x

        async def main():
            self.assertEqual(await m.await_py(coro("woken")), "woken")
            mode, kind, fd = m.wake_info(asyncio.get_running_loop())[:3]
            self.assertEqual(mode, self.expected_wake)
            self.assertEqual((kind == "none", fd == -1), (mode == "threadsafe",) * 2)

        self.run_on_loop(main())

    def test_every_kind_of_awaitable(self):
        class Awaitable:
            def __await__(self):
                yield from asyncio.sleep(0.001).__await__()
                return "dunder"

        async def coro(x):
            await asyncio.sleep(0.001)
            return x

        async def main():
            loop = asyncio.get_running_loop()
            self.assertEqual(await m.await_py(coro("coroutine")), "coroutine")
            self.assertEqual(await m.await_py(asyncio.ensure_future(coro("task"))), "task")
            future = loop.create_future()
            loop.call_later(0.001, future.set_result, "future")
            self.assertEqual(await m.await_py(future), "future")
            self.assertEqual(await m.await_py(Awaitable()), "dunder")
            self.assertEqual(await m.await_py_int(coro(2**40)), 2**40)
            self.assertEqual(await m.await_py_void(coro("dropped")), "done")

            async def fail():
                raise ValueError("from a void await")

            with self.assertRaisesRegex(ValueError, "from a void await"):
                await m.await_py_void(fail())

        self.run_on_loop(main())

    def test_every_completion_token(self):
        async def word(w):
            await asyncio.sleep(0.001)
            return w

        async def main():
            text = await m.await_py_tokens(word("callback"), word("use_future"), word("deferred"))
            self.assertEqual(text, "callback use_future deferred")

        self.run_on_loop(main())

    def test_not_awaitable_is_type_error_at_the_call(self):
        async def main():
            for bad, hint in ((42, "got int; pass the coroutine an async function returns"),
                              ("text", "got str; pass the coroutine"),
                              (None, "got NoneType; a function returned None where a coroutine "
                                     "was expected: is it an `async def`"),
                              (lambda: None, "got function; did you forget to call it"),
                              (asyncio.sleep, "did you forget to call it")):
                with self.assertRaisesRegex(TypeError, "expected an awaitable .* " + hint):
                    await m.await_py(bad)

        self.run_on_loop(main())

    def test_result_of_the_wrong_type(self):
        async def text():
            return "not an int"

        async def main():
            with self.assertRaisesRegex(
                    TypeError, "^pyasio::into_future<T>: the awaitable's result does not convert "
                               "to T: expected int, got str \\(await something that returns "
                               "that, or ask for into_future<pyasio::object>") as caught:
                await m.await_py_int(text())
            # the conversion's own error is its cause, with its traceback
            self.assertIsInstance(caught.exception.__cause__, TypeError)
            self.assertEqual(str(caught.exception.__cause__), "expected int, got str")
            with self.assertRaisesRegex(OverflowError, "out of range for C\\+\\+ long"):
                await m.await_py_int(asyncio.sleep(0, 2 ** 64))

        self.run_on_loop(main())

    def test_python_exception_arrives_as_itself(self):
        original = KeyError("from Python")

        async def fail():
            await asyncio.sleep(0)
            raise original

        async def main():
            with self.assertRaises(KeyError) as cm:
                await m.await_py(fail())
            self.assertIs(cm.exception, original)  # C++ rethrew the same object
            self.assertEqual(await m.await_py_report(fail()),
                             "python_error: KeyError: 'from Python'")

        self.run_on_loop(main())

    def test_a_coroutine_the_loop_refuses_is_closed_and_the_error_arrives(self):
        # The loop's create_task raises RuntimeError (here its task factory does, as a closed
        # loop would): C++ gets that error, and the coroutine is closed, as ensure_future closes
        # it, not left to warn "was never awaited"
        refusal = RuntimeError("this loop takes no more tasks")

        def refuse(loop, coro, **kwargs):
            raise refusal

        async def never():
            return 1

        async def main():
            coro = never()
            loop = asyncio.get_running_loop()
            loop.set_task_factory(refuse)
            try:
                with self.assertRaises(RuntimeError) as cm:
                    await m.await_py(coro)
            finally:
                loop.set_task_factory(None)
            self.assertIs(cm.exception, refusal)
            self.assertIsNone(coro.cr_frame)  # closed

        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            self.run_on_loop(main())

    def test_coroutine_awaited_twice_vs_function_called_each_time(self):
        async def once():
            return 1

        async def main():
            # one coroutine: usable once; Python's error, with what to do, arrives in C++
            self.assertRegex(await m.await_py_twice(once()),
                             "^ok;RuntimeError: cannot reuse already awaited coroutine "
                             r"\S*once: a coroutine object runs once; call the async function "
                             "again for each await")
            # the async function: C++ calls it for each use
            async def double(i):
                await asyncio.sleep(0)
                return 2 * i

            self.assertEqual(await m.await_py_each(double, 5), 2 * (0 + 1 + 2 + 3 + 4))

        self.run_on_loop(main())

    def test_async_function_is_called_on_the_loop_thread(self):
        main_thread = threading.current_thread()
        calls = []

        async def body(i, s):
            await asyncio.sleep(0.001)
            return (i, s)

        def fn(i, s):  # the synchronous part: where and in which context it is called
            calls.append((threading.current_thread() is main_thread, var.get()))
            return body(i, s)

        async def main():
            var.set("set before the call")
            self.assertEqual(await m.await_call(fn, 7, "seven"), (7, "seven"))
            self.assertEqual(calls, [(True, "set before the call")])
            with self.assertRaisesRegex(TypeError, "returned a int, not an awaitable"):
                await m.await_call(lambda i, s: 42, 1, "")

            def fails(i, s):
                raise KeyError(s)

            with self.assertRaisesRegex(KeyError, "from the call"):
                await m.await_call(fails, 1, "from the call")
            with self.assertRaisesRegex(TypeError, "expected a callable .*got int"):
                m.async_function_of(42)

            async def receive(g):  # an async_function argument arrives as its callable
                return g

            self.assertIs(await m.await_call_with(receive, print), print)

        self.run_on_loop(main())

    def test_runs_in_the_context_of_the_call(self):
        async def read_var():
            return var.get()

        async def main():
            var.set("caller's value")
            future = m.await_py(read_var())
            var.set("changed after the call")
            self.assertEqual(await future, "caller's value")

        self.run_on_loop(main())

    def test_cpp_cancels_the_python_task(self):
        seen = []

        async def slow():
            try:
                await asyncio.sleep(5)  # the C++ timer (20 ms) wins unless cancel fails
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

        async def fast():
            return 1

        async def main():
            self.assertEqual(await m.await_py_timeout(slow(), 20), "timeout")
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
            self.assertEqual(seen, ["cancelled"])  # the Python task saw the cancellation
            self.assertEqual(await m.await_py_timeout(fast(), 10_000), "result")

        self.run_on_loop(main())

    def test_python_cancels_the_task(self):
        async def cancel_myself():
            asyncio.current_task().cancel()
            await asyncio.sleep(1)

        async def main():
            self.assertEqual(await m.await_py_report(cancel_myself()), "cancelled by python")
            # not caught in C++: Python sees CancelledError
            with self.assertRaisesRegex(asyncio.CancelledError, "cancelled by Python"):
                await m.await_py(cancel_myself())

        self.run_on_loop(main())

    def test_many_at_once(self):
        async def echo(i):
            await asyncio.sleep(0)
            return i

        async def main():
            n = 10_000
            results = await asyncio.gather(*[m.await_py_int(echo(i)) for i in range(n)])
            self.assertEqual(results, list(range(n)))

        self.run_on_loop(main())

    def test_from_four_runtime_threads_at_once(self):
        async def echo(i):
            await asyncio.sleep(0)
            return i

        async def main():
            total, threads = await m.await_from_threads(echo, 4, 2500)
            self.assertEqual(total, sum(range(10_000)))
            self.assertEqual(threads, 4)

        self.run_on_loop(main())

    def test_cancellation_both_ways_at_random_moments(self):
        rng = random.Random(4)  # a fixed seed: a failure can be replayed
        n = 1000
        finished, saw_cancel = set(), set()
        cancelled_by_python, cancelled_by_cpp = set(), set()
        tasks = {}

        async def work(i):
            tasks[i] = asyncio.current_task()
            try:
                await asyncio.sleep(rng.uniform(0, 0.020))
            except asyncio.CancelledError:
                saw_cancel.add(i)
                raise
            finished.add(i)

        async def cancel_some(outcomes):
            # a third cancelled by Python (task.cancel()), a third by C++ (its cancellation
            # signal), each at a random loop iteration after its task started
            order = rng.sample(range(n), n)
            by_python, by_cpp = set(order[: n // 3]), set(order[n // 3: 2 * n // 3])
            while (by_python or by_cpp) and not outcomes.done():
                await asyncio.sleep(0)  # one loop iteration: C++ and the tasks move on
                for i in sorted(by_python | by_cpp):
                    if i not in tasks or rng.random() >= 0.3:
                        continue  # not started yet, or not now
                    if i in by_python:
                        by_python.discard(i)
                        if tasks[i].cancel():
                            cancelled_by_python.add(i)
                    else:
                        by_cpp.discard(i)
                        if m.cancel_from_cpp(i):
                            cancelled_by_cpp.add(i)

        async def main():
            outcomes = asyncio.gather(*[m.race(work(i), i) for i in range(n)])
            await cancel_some(outcomes)
            return await outcomes

        outcomes = self.run_on_loop(main())
        self.assertEqual(len(outcomes), n)
        for i, outcome in enumerate(outcomes):
            if outcome == "result":
                self.assertIn(i, finished)
            elif outcome == "cancelled by python":
                self.assertIn(i, cancelled_by_python)
                self.assertIn(i, saw_cancel)
            elif outcome == "aborted":
                self.assertIn(i, cancelled_by_cpp)
            else:
                self.fail("unexpected outcome %r for %d" % (outcome, i))
            if i in saw_cancel:
                self.assertIn(outcome, ("aborted", "cancelled by python"))
        self.assertEqual(set(outcomes), {"result", "aborted", "cancelled by python"})
        self.assertTrue(all(t.done() for t in tasks.values()))

    def test_terminal_cancellation_completes_at_once_total_waits_for_the_task(self):
        # the coroutine swallows its cancellation and returns: only a total cancellation, which
        # waits for the task's outcome, reports that result
        started = {}

        async def stubborn(key):
            started[key] = True
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                await asyncio.sleep(0.01)  # cleaning up takes a while
                return "cleaned up"

        async def outcome(key, total):
            race = asyncio.ensure_future(m.race(stubborn(key), key))
            while key not in started:
                await asyncio.sleep(0.001)
            self.assertTrue(m.cancel_from_cpp(key, total))
            return await race

        async def main():
            self.assertEqual(await outcome(1, False), "aborted")  # terminal: at once
            self.assertEqual(await outcome(2, True), "result")  # total: the task's outcome

        self.run_on_loop(main())

    def test_loop_closed_while_cpp_waits(self):
        async def wait_long():
            await asyncio.sleep(3600)

        async def main():
            m.start_await_recorded(wait_long())
            await asyncio.sleep(0.01)  # the task has started

        loop = self.loop_factory()
        loop.set_exception_handler(lambda loop, ctx: None)  # "Task was destroyed..." later
        loop.run_until_complete(main())
        self.assertEqual(m.recorded_outcome(0), "still waiting")
        loop.close()  # no collection needed: the close itself tells C++
        self.assertRegex(m.recorded_outcome(5000),
                         r"^loop closed: .*closed while C\+\+ awaited this task")
        del loop
        gc.collect()

    def test_cancelling_every_timer_of_the_loop_leaves_the_bridge_open(self):
        # Code that cancels every timer of a loop (some test fixtures do) also cancels the close
        # timer of a call_soon_threadsafe-mode bridge: the bridge must not take that for a close.
        async def main():
            loop = asyncio.get_running_loop()
            self.assertEqual(await m.await_py(asyncio.sleep(0, 1)), 1)
            await asyncio.sleep(0.01)  # the close timer is armed by now
            for timer in list(getattr(loop, "_scheduled", ())):
                timer.cancel()
            gc.collect()
            self.assertEqual(await m.await_py(asyncio.sleep(0, 2)), 2)
            await asyncio.sleep(0.01)
            self.assertEqual(await m.await_py(asyncio.sleep(0, 3)), 3)

        self.run_on_loop(main())

    def test_what_cpp_awaits_is_kept_alive(self):
        # a Future that only C++ refers to (made by future_into_py inside C++ work), awaited
        # with into_future: C++ holds it while it waits, as an await does
        async def main():
            for _ in range(3):
                gc.collect()
                self.assertEqual(await m.loop_awaits_cpp(20), 20)

        self.run_on_loop(main())


class LoopExecutor:
    """C++ coroutines and handlers on pyasio::loop_executor: on the loop thread, with the GIL."""

    def test_coroutine_runs_on_the_loop_thread(self):
        main_thread = threading.current_thread()

        def where(gil_held):
            return (threading.current_thread() is main_thread, gil_held)

        async def coro():
            await asyncio.sleep(0.001)
            return "awaited on the loop"

        async def main():
            self.assertEqual(await m.on_loop(where), (True, True))
            self.assertEqual(await m.on_loop_after_timer(where, 5), (True, True))
            self.assertEqual(await m.on_loop_await(coro()), "awaited on the loop")

        self.run_on_loop(main())

    def test_awaits_in_a_row_in_the_context_of_the_call(self):
        async def read_var(i):
            await asyncio.sleep(0)
            return i if var.get() == "set before the call" else -10_000

        async def main():
            var.set("set before the call")
            self.assertEqual(await m.on_loop_await_each(read_var, 50), sum(range(50)))

        self.run_on_loop(main())

    def test_post_from_the_runtime(self):
        main_thread = threading.current_thread()
        seen = []

        def record(i):
            self.assertIs(threading.current_thread(), main_thread)
            seen.append((i, var.get()))

        async def main():
            await m.on_loop(lambda gil_held: None)  # the loop's bridge is made: var unset
            var.set("set before the call")
            self.assertEqual(await m.post_to_loop(record, 1000), 1000)
            # every handler ran in the context captured with the executor
            self.assertEqual(sorted(seen), [(i, "set before the call") for i in range(1000)])

        self.run_on_loop(main())


    def test_resumes_from_the_done_callback_without_the_bridge(self):
        async def main():
            pending = asyncio.get_running_loop().create_future()
            at_call = m.bridge_pushes()
            task = asyncio.ensure_future(m.on_loop_await(pending))
            while not pending._callbacks:  # until C++ started awaiting it
                await asyncio.sleep(0.001)
            # one job: the coroutine's first step, sent from the runtime to the loop; into_future
            # called on the loop thread started the awaitable at once (no job)
            self.assertEqual(m.bridge_pushes() - at_call, 1)
            before = m.bridge_pushes()
            pending.set_result("ready")
            self.assertEqual(await task, "ready")
            # one job: the C++ work's own completion; resuming it took none
            self.assertEqual(m.bridge_pushes() - before, 1)

        self.run_on_loop(main())

    def test_a_coroutine_cpp_cancelled_before_it_started_is_closed_unrun(self):
        started = []

        async def never():
            started.append(True)
            await asyncio.sleep(60)

        async def main():
            coro = never()
            race = m.race(coro, 4242)
            # the loop does not run meanwhile, so the await cannot start before the cancel
            deadline = time.monotonic() + 10
            while not m.cancel_from_cpp(4242, False, True):  # returns once it was emitted
                self.assertLess(time.monotonic(), deadline, "the C++ await did not begin")
                time.sleep(0.001)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self.assertEqual(await race, "aborted")
                self.assertEqual(started, [])
                self.assertIsNone(coro.cr_frame)  # closed
                del coro
                gc.collect()  # a coroutine never awaited nor closed would warn here
            self.assertEqual([str(w.message) for w in caught], [])

        self.run_on_loop(main())

    def test_a_future_of_another_loop_fails_from_the_loop_thread(self):
        # into_future starts at once on the loop thread; ensure_future's error is then posted
        # to the coroutine (Asio's rule: no completion inside the initiating call)
        other = asyncio.new_event_loop()
        try:
            async def main():
                with self.assertRaisesRegex(ValueError, "different loop.*await it on that "
                                                        "loop.*or make it on this one") as caught:
                    await m.on_loop_await(other.create_future())
                self.assertIsInstance(caught.exception.__cause__, ValueError)  # asyncio's own
                with self.assertRaisesRegex(ValueError, "different loop"):
                    await m.await_py(other.create_future())  # from the runtime: the same
                self.assertFalse(m.completes_inside_the_call(other.create_future()))
                await asyncio.sleep(0.01)  # the posted handler runs

            self.run_on_loop(main())
        finally:
            other.close()

    def test_a_coroutine_bound_to_another_loop_fails_with_python_s_error(self):
        other = asyncio.new_event_loop()
        try:
            elsewhere = other.create_future()

            async def bound():
                return await elsewhere

            async def main():
                with self.assertRaisesRegex(RuntimeError, "attached to a different loop"):
                    await m.await_py(bound())

            self.run_on_loop(main())
        finally:
            other.close()

    @staticmethod
    async def reported(start):
        """What sys.unraisablehook receives once start() ran (waits up to 5 s for one)."""
        seen = []
        old_hook = sys.unraisablehook
        sys.unraisablehook = seen.append
        try:
            start()
            for _ in range(500):
                if seen:
                    break
                await asyncio.sleep(0.01)
        finally:
            sys.unraisablehook = old_hook
        return seen

    def test_a_throwing_handler_is_reported(self):
        seen = self.run_on_loop(self.reported(m.post_throwing))
        self.assertEqual(len(seen), 1)
        self.assertIsInstance(seen[0].exc_value, RuntimeError)
        self.assertEqual(str(seen[0].exc_value), "a loop_executor handler failed")


    def test_keyboard_interrupt_in_an_awaited_coroutine_stops_the_loop(self):
        # asyncio lets KeyboardInterrupt out of the loop; the C++ side that awaited the
        # coroutine is cancelled with the rest as the loop ends, and nothing hangs.
        async def interrupted():
            await asyncio.sleep(0)
            raise KeyboardInterrupt("stop")

        async def main():
            return await m.await_py_report(interrupted())

        loop = self.loop_factory()
        try:
            with self.assertRaises(KeyboardInterrupt):
                loop.run_until_complete(main())
            tasks = asyncio.all_tasks(loop)  # asyncio.run's ending: cancel what is left
            for t in tasks:
                t.cancel()
            outcomes = loop.run_until_complete(
                asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10))
            self.assertTrue(all(isinstance(o, (asyncio.CancelledError, KeyboardInterrupt))
                                for o in outcomes), outcomes)
        finally:
            loop.close()
        self.assertEqual(self.run_on_loop(m.await_py(asyncio.sleep(0, "still works"))),
                         "still works")

    def test_a_throwing_completion_handler_is_reported_and_work_goes_on(self):
        # Asio would end the thread that runs it (std::terminate on a runtime thread), and a
        # handler run inside pyasio's done callback would be lost: each is reported instead.
        for on_loop in (False, True):
            with self.subTest(on_loop=on_loop):
                async def main():
                    seen = await self.reported(
                        lambda: m.into_future_throwing_handler(asyncio.sleep(0), on_loop))
                    return seen, await m.await_py(asyncio.sleep(0, "still works"))

                seen, after = self.run_on_loop(main())
                self.assertEqual(after, "still works")
                self.assertEqual(len(seen), 1)
                self.assertIsInstance(seen[0].exc_value, RuntimeError)
                self.assertEqual(str(seen[0].exc_value), "a completion handler failed")
                self.assertIn("catch it inside the handler", str(seen[0].object))


class OnAsyncio(IntoFuture, LoopExecutor, unittest.TestCase):
    pass


class OnProactorLikeLoop(IntoFuture, LoopExecutor, unittest.TestCase):
    """A loop whose add_reader raises NotImplementedError (Windows' ProactorEventLoop): the
    bridge wakes it with call_soon_threadsafe."""

    loop_factory = ProactorLikeLoop
    expected_wake = "threadsafe"


@unittest.skipIf(uvloop is None, "uvloop is not installed (Debian: python3-uvloop)")
class OnUvloop(IntoFuture, LoopExecutor, unittest.TestCase):
    loop_factory = staticmethod(uvloop.new_event_loop if uvloop else None)


@unittest.skipIf(uvloop is None, "uvloop is not installed (Debian: python3-uvloop)")
class OnUvloopThreadsafeWake(IntoFuture, LoopExecutor, unittest.TestCase):
    """uvloop woken with call_soon_threadsafe (chosen): its close is heard through the close
    timer (call_later) that uvloop drops when it closes."""

    loop_factory = staticmethod(uvloop.new_event_loop if uvloop else None)
    expected_wake = "threadsafe"

    def setUp(self):
        m.set_wake("threadsafe")

    def tearDown(self):
        m.set_wake("reader")


class LoopGoneBeforeTheStart(unittest.TestCase):
    def test_a_loop_collected_before_the_start_is_a_clear_error(self):
        class Awaitable:  # never started: no "never awaited" warning either way
            def __await__(self):
                return iter(())

        async def remember():
            m.remember_task_locals()

        first = asyncio.new_event_loop()
        first.run_until_complete(remember())
        first.close()
        del first
        gc.collect()  # the loop is gone: its bridge closed

        async def main():
            return await m.await_with_remembered(Awaitable())

        second = asyncio.new_event_loop()
        try:
            text = second.run_until_complete(main())
        finally:
            second.close()
        self.assertEqual(text, "loop closed: pyasio::into_future: the event loop closed before "
                         "the awaitable started")


class WithoutTaskLocals(unittest.TestCase):
    def test_outside_cpp_work_is_a_clear_error(self):
        async def coro():
            pass

        c = coro()
        with self.assertRaisesRegex(RuntimeError, "no event loop to run on.*"
                                    r"future_into_py.*task_locals::of\(loop\) on any thread"):
            m.into_future_here(c)
        c.close()

    def test_on_the_loop_thread_the_running_loop_is_used(self):
        ran = []

        async def coro():
            ran.append(asyncio.get_running_loop())

        async def main():
            m.into_future_here(coro())
            for _ in range(1000):
                if ran:
                    break
                await asyncio.sleep(0.001)
            self.assertEqual(ran, [asyncio.get_running_loop()])

        asyncio.run(main())

    def test_not_awaitable_outside_cpp_work(self):
        with self.assertRaisesRegex(TypeError, "got int"):
            m.into_future_here(1)


if __name__ == "__main__":
    unittest.main()
