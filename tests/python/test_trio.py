# SPDX-License-Identifier: BSL-1.0
"""pyasio under trio and anyio: the same test modules, built once, used from trio.run and
anyio.run as a trio user would, with no pyasio call that names trio. Skipped (visibly) where
trio or anyio is not installed (Debian: python3-trio, python3-anyio)."""
import asyncio
import contextvars
import gc
import subprocess
import sys
import threading
import time
import unittest
import warnings
import weakref

try:
    import trio
    import trio.testing
except ImportError:
    trio = None
try:
    with warnings.catch_warnings():
        # NOTE: anyio 3.6 on trio 0.22 derives from trio.MultiError, which warns on import
        warnings.simplefilter("ignore")
        import anyio
        import anyio._backends._trio  # noqa: F401
    import sniffio
except ImportError:
    anyio = None

import _pyasio_async_test as cpp  # future_into_py
import _pyasio_into_future_test as py  # into_future, async_function, the loop executor
import _pyasio_peers_test as peers  # pyasio::run
import _pyasio_runtime_test as rt  # block_on, task_locals::of
import _pyasio_stream_test as st  # streams both ways
from stress import wait_until

needs_trio = unittest.skipIf(trio is None, "trio is not installed (Debian: python3-trio)")
needs_anyio = unittest.skipIf(anyio is None or trio is None,
                              "anyio is not installed (Debian: python3-anyio)")

var = contextvars.ContextVar("var", default="unset")


def aborted_since(before):
    return cpp.stats()["aborted"] - before["aborted"]


@needs_trio
class PythonAwaitsCpp(unittest.TestCase):
    def test_results_and_exceptions(self):
        async def main():
            self.assertIsNone(await cpp.noop())
            self.assertEqual(await cpp.echo_int(41), 41)
            with self.assertRaisesRegex(ValueError, "boom"):
                await cpp.fail("boom")
            with self.assertRaises(ConnectionRefusedError):
                await cpp.refuse()
            return "done"

        self.assertEqual(trio.run(main), "done")

    def test_trio_run_takes_the_cpp_function_itself(self):
        # as asyncio.run(mod.f()) does, with no async def around it
        self.assertEqual(trio.run(cpp.echo_int, 7), 7)
        self.assertIsNone(trio.run(cpp.sleep_ms, 1))

    def test_a_nursery_starts_cpp_functions(self):
        async def main():
            async with trio.open_nursery() as nursery:
                for _ in range(10):
                    nursery.start_soon(cpp.sleep_ms, 1)

        trio.run(main)

    def test_10k_at_once_in_one_nursery(self):
        results = {}

        async def one(i):
            results[i] = await cpp.echo_int(i)

        async def main():
            async with trio.open_nursery() as nursery:
                for i in range(10_000):
                    nursery.start_soon(one, i)

        trio.run(main)
        self.assertEqual(results, {i: i for i in range(10_000)})

    def test_one_wake_per_batch(self):
        async def main():
            await cpp.noop()  # the bridge exists
            before = cpp.bridge_counters()
            async with trio.open_nursery() as nursery:
                for _ in range(2000):
                    nursery.start_soon(cpp.noop)
            return before, cpp.bridge_counters()

        (pushes0, drains0, mode), (pushes1, drains1, _) = trio.run(main)
        self.assertEqual(mode, "reader")
        self.assertEqual(pushes1 - pushes0, 2000)
        self.assertLess(drains1 - drains0, 1000)

    def test_move_on_after_cancels_the_cpp_work(self):
        before = cpp.stats()

        async def main():
            started = time.monotonic()
            with trio.move_on_after(0.05) as scope:
                await cpp.sleep_ms(60_000)
            return scope.cancelled_caught, time.monotonic() - started

        caught, elapsed = trio.run(main)
        self.assertTrue(caught)
        self.assertLess(elapsed, 30)
        self.assertTrue(wait_until(lambda: aborted_since(before) == 1),
                        "the C++ wait did not end with operation_aborted")

    def test_fail_after_cancels_the_cpp_work(self):
        before = cpp.stats()

        async def main():
            with trio.fail_after(0.05):
                await cpp.sleep_ms(60_000)

        with self.assertRaises(trio.TooSlowError):
            trio.run(main)
        self.assertTrue(wait_until(lambda: aborted_since(before) == 1))

    def test_a_cancelled_nursery_cancels_every_cpp_wait(self):
        before = cpp.stats()

        async def main():
            async with trio.open_nursery() as nursery:
                for _ in range(100):
                    nursery.start_soon(cpp.sleep_ms, 60_000)
                await trio.sleep(0.05)
                nursery.cancel_scope.cancel()

        trio.run(main)
        self.assertTrue(wait_until(lambda: aborted_since(before) == 100))

    def test_several_tasks_await_one_future(self):
        before = cpp.stats()

        async def main():
            fut = cpp.sleep_ms(200)
            got = []

            async def wait(limit):
                with trio.move_on_after(limit):
                    got.append(await fut)

            async with trio.open_nursery() as nursery:
                for limit in (0.01, 60, 60):  # the first gives up; the others still wait
                    nursery.start_soon(wait, limit)
            return got, fut.cancelled()

        got, cancelled = trio.run(main)
        self.assertEqual(got, [None, None])
        self.assertFalse(cancelled)
        self.assertEqual(aborted_since(before), 0)

    def test_the_last_awaiting_task_that_gives_up_cancels_the_work(self):
        before = cpp.stats()

        async def main():
            fut = cpp.sleep_ms(60_000)

            async def wait():
                await fut

            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(wait)
                await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
            return fut.cancelled()

        self.assertTrue(trio.run(main))
        self.assertTrue(wait_until(lambda: aborted_since(before) == 1))

    def test_the_future_as_a_coroutine(self):
        before = cpp.stats()

        async def main():
            closed = cpp.sleep_ms(60_000)
            thrown = cpp.sleep_ms(60_000)
            # both C++ waits have begun (a cancel before the start ends the work unrun)
            with trio.move_on_after(60):  # a hang guard only
                while cpp.stats()["started"] - before["started"] < 2:
                    await trio.sleep(0.01)
            await trio.sleep(0.05)
            closed.close()  # as a nursery closes what it never started
            with self.assertRaises(KeyError):
                thrown.throw(KeyError("k"))
            done = cpp.echo_int(4)
            with self.assertRaises(StopIteration) as stop:
                await trio.sleep(0.05)  # done by now
                done.send(None)
            with self.assertRaisesRegex(RuntimeError, "cannot reuse"):
                done.send(None)
            with self.assertRaisesRegex(TypeError, "non-None"):
                cpp.echo_int(1).send(5)
            return closed.cancelled(), thrown.cancelled(), stop.exception.value

        self.assertEqual(trio.run(main), (True, True, 4))
        self.assertTrue(wait_until(lambda: aborted_since(before) == 2))

    def test_misuse_of_the_future(self):
        before = cpp.stats()

        async def main():
            fut = cpp.sleep_ms(60_000)
            with trio.move_on_after(60):  # a hang guard only: the C++ wait has begun
                while cpp.stats()["started"] == before["started"]:
                    await trio.sleep(0.01)
            with self.assertRaisesRegex(TypeError, "invalid exception object"):
                fut.set_exception(42)
            fut.set_exception(ValueError)  # a class: raised as ValueError()
            with self.assertRaises(asyncio.InvalidStateError):
                fut.set_result(1)
            self.assertFalse(fut.cancel())
            self.assertIsInstance(fut.exception(), ValueError)
            with self.assertRaises(ValueError):
                await fut
            pending = type(fut)(fut.get_loop())
            with self.assertRaisesRegex(asyncio.InvalidStateError, "not set"):
                pending.result()
            with self.assertRaisesRegex(asyncio.InvalidStateError, "not set"):
                pending.exception()
            self.assertEqual(pending.remove_done_callback(print), 0)
            pending.add_done_callback(print)
            pending.add_done_callback(print)
            self.assertEqual(pending.remove_done_callback(print), 2)
            self.assertTrue(pending.cancel("why"))
            with self.assertRaisesRegex(asyncio.CancelledError, "why"):
                pending.result()
            with self.assertRaises(TypeError):
                type(fut)()  # no loop
            with self.assertRaisesRegex(TypeError, "StopIteration"):
                type(fut)(fut.get_loop()).set_exception(StopIteration(1))
            bare = type(fut).__new__(type(fut))  # never initialised: no loop
            bare.add_done_callback(print)
            with self.assertRaisesRegex(RuntimeError, "has no loop"):
                bare.cancel()
            with self.assertRaisesRegex(RuntimeError, "has no loop"):
                await type(fut).__new__(type(fut))
            with self.assertRaisesRegex(TypeError, "must be the pyasio.TrioLoop"):
                type(fut)(None)
            other_loop = asyncio.new_event_loop()
            with self.assertRaisesRegex(TypeError, "must be the pyasio.TrioLoop"):
                type(fut)(other_loop)
            other_loop.close()
            with self.assertRaisesRegex(TypeError, "cannot create"):
                type(type(fut)(fut.get_loop()).__await__())()
            self.assertIs(weakref.ref(fut)(), fut)

            # a callback whose __eq__ completes the future and changes its callbacks
            other = type(fut)(fut.get_loop())

            class Meddler:
                busy = False

                def __eq__(self, x):
                    if not Meddler.busy:
                        Meddler.busy = True
                        other.add_done_callback(print)
                        other.remove_done_callback(print)
                        other.set_result(None)
                    return False

                __hash__ = object.__hash__

                def __call__(self, fut):
                    pass

            other.add_done_callback(Meddler())
            other.add_done_callback(Meddler())
            other.add_done_callback(Meddler())
            self.assertEqual(other.remove_done_callback(print), 0)
            self.assertTrue(other.done())

        trio.run(main)
        # NOTE: the C++ wait that set_exception cancelled may end after the run: here, not in a
        # later test that counts aborts
        self.assertTrue(wait_until(lambda: aborted_since(before) == 1))

    def test_without_trios_internal_wait_message(self):
        # pyasio yields trio's WaitTaskRescheduled itself when it finds the class; otherwise it
        # goes through the public wait_task_rescheduled. The second path, in a fresh process:
        code = (
            "import trio, trio._core._traps as traps\n"
            "real = traps.WaitTaskRescheduled\n"
            "traps.WaitTaskRescheduled = lambda abort: real(abort)  # not a class: not used\n"
            "import _pyasio_async_test as cpp\n"
            "async def main():\n"
            "    assert await cpp.echo_int(7) == 7\n"
            "    with trio.move_on_after(0.05) as scope:\n"
            "        await cpp.sleep_ms(60_000)\n"
            "    assert scope.cancelled_caught\n"
            "    async with trio.open_nursery() as nursery:\n"
            "        for _ in range(100):\n"
            "            nursery.start_soon(cpp.noop)\n"
            "trio.run(main)\n"
            "print('ok')\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120)
        self.assertEqual(out.stdout.strip(), "ok", out.stderr)

    def test_a_dropped_future_cancels_its_cpp_work(self):
        before = cpp.stats()

        async def main():
            fut = cpp.sleep_ms(60_000)
            await trio.sleep(0.05)  # the C++ wait has begun
            del fut  # never awaited: collected
            gc.collect()
            await trio.sleep(0)

        trio.run(main)
        self.assertTrue(wait_until(lambda: aborted_since(before) == 1))

    def test_a_future_made_before_the_run_starts_in_it(self):
        lazy = cpp.echo_int(5)  # no loop runs: it starts on the loop that awaits it

        async def main():
            return await lazy

        self.assertEqual(trio.run(main), 5)

    def test_the_future_answers_like_an_asyncio_future(self):
        async def main():
            fut = cpp.echo_int(3)
            self.assertFalse(fut.done())
            self.assertEqual(await fut, 3)
            self.assertTrue(fut.done())
            self.assertEqual(fut.result(), 3)
            self.assertIsNone(fut.exception())
            seen = []
            fut.add_done_callback(seen.append)  # soon, as asyncio runs it
            self.assertEqual(seen, [])
            await trio.testing.wait_all_tasks_blocked()
            self.assertEqual(seen, [fut])

        trio.run(main)

    def test_the_bridge_goes_with_the_run(self):
        gc.collect()  # the loops of earlier runs
        bridges = cpp.stats()["bridges"]
        trio.run(cpp.noop)
        gc.collect()
        self.assertTrue(wait_until(lambda: cpp.stats()["bridges"] == bridges))

    def test_the_call_soon_threadsafe_wake(self):
        st.set_wake("threadsafe")  # loops bridged from now on (st's own copy)
        try:
            async def main():
                got = [x async for x in st.count(50, 4)]
                return got, st.counters()

            got, _ = trio.run(main)
            self.assertEqual(got, list(range(50)))
        finally:
            st.set_wake("reader")


@needs_trio
class CppAwaitsPython(unittest.TestCase):
    def test_result_and_exception(self):
        async def double(x):
            await trio.sleep(0.001)
            return 2 * x

        async def raiser():
            await trio.sleep(0)
            raise KeyError("k")

        async def main():
            self.assertEqual(await py.await_py(double(21)), 42)
            with self.assertRaises(KeyError):
                await py.await_py(raiser())
            self.assertEqual(await py.await_call(lambda i, s: double(i), 4, "s"), 8)

        trio.run(main)

    def test_the_coroutine_runs_as_a_trio_task_in_the_callers_context(self):
        async def inside():
            await trio.sleep(0)
            return (var.get(), sniffio.current_async_library() if anyio else "trio",
                    trio.lowlevel.current_task() is not None)

        async def main():
            var.set("from the caller")
            return await py.await_py(inside())

        self.assertEqual(trio.run(main), ("from the caller", "trio", True))

    def test_cpp_cancellation_cancels_the_trio_task(self):
        seen = []

        async def slow():
            try:
                seen.append("started")
                await trio.sleep(60)
            except trio.Cancelled:
                seen.append("cancelled")
                raise

        async def main():
            async with trio.open_nursery() as nursery:
                outcome = []

                async def racer():
                    outcome.append(await py.race(slow(), 7001))

                nursery.start_soon(racer)
                with trio.fail_after(30):  # a hang guard
                    while not seen:  # NOTE: C++ cancels it once it runs
                        await trio.sleep(0.001)
                    self.assertTrue(py.cancel_from_cpp(7001, False, True))
            return outcome

        self.assertEqual(trio.run(main), ["aborted"])
        self.assertEqual(seen, ["started", "cancelled"])

    def test_a_cancel_scope_reaches_the_python_task_cpp_awaits(self):
        seen = []

        async def slow():
            try:
                await trio.sleep(60)
            except trio.Cancelled:
                seen.append("inner cancelled")
                raise

        async def main():
            with trio.move_on_after(0.05):
                await py.await_py(slow())

        trio.run(main)
        self.assertTrue(wait_until(lambda: seen == ["inner cancelled"]))

    def test_a_task_that_ends_reports_its_result(self):
        async def outer():
            async with trio.open_nursery() as nursery:
                result = []

                async def report():
                    result.append(await py.await_py_report(trio.sleep(0.01)))

                nursery.start_soon(report)
            return result

        self.assertEqual(trio.run(outer), ["result"])

    def test_the_loop_executor_runs_on_the_trio_thread(self):
        async def main():
            here = threading.get_ident()
            seen = []
            await py.on_loop(lambda held: seen.append((threading.get_ident(), held)))
            await py.on_loop_after_timer(lambda held: seen.append((threading.get_ident(), held)),
                                         5)

            async def g():
                await trio.sleep(0)
                return "awaited on the loop"

            got = await py.on_loop_await(g())
            return here, seen, got

        here, seen, got = trio.run(main)
        self.assertEqual(seen, [(here, True), (here, True)])
        self.assertEqual(got, "awaited on the loop")


@needs_trio
class Streams(unittest.TestCase):
    def test_async_for_over_a_cpp_producer(self):
        async def main():
            got = [x async for x in st.count(1000, 8)]
            with self.assertRaisesRegex(RuntimeError, "producer failed"):
                async for _ in st.count(3, 8, 0, "producer failed"):
                    pass
            return got

        self.assertEqual(trio.run(main), list(range(1000)))

    def test_an_early_exit_stops_the_producer(self):
        before = st.counters()

        async def main():
            stream = st.count(-1, 4)  # for ever
            async for x in stream:
                if x == 10:
                    break
            await stream.aclose()

        trio.run(main)
        self.assertTrue(wait_until(lambda: st.counters()[3] == before[3] + 1),
                        "the producer was not aborted")

    def test_a_cancel_scope_ends_a_waiting_read(self):
        before = st.counters()

        async def main():
            with trio.move_on_after(0.05) as scope:
                async for _ in st.count(-1, 4, 1000):  # one item a second
                    pass
            return scope.cancelled_caught

        self.assertTrue(trio.run(main))
        # the stream object goes with the run: its producer is cancelled
        gc.collect()
        self.assertTrue(wait_until(lambda: st.counters()[3] == before[3] + 1),
                        "the producer was not aborted")

    def test_cpp_reads_a_trio_async_generator(self):
        async def agen(n):
            for i in range(n):
                if i % 16 == 0:
                    await trio.sleep(0)
                yield i

        async def main():
            return await st.collect(agen(500), 8)

        self.assertEqual(trio.run(main), (list(range(500)), "end"))

    def test_cpp_stops_reading_early_and_the_generator_closes(self):
        closed = []

        async def agen():
            try:
                i = 0
                while True:
                    await trio.sleep(0)
                    yield i
                    i += 1
            finally:
                closed.append(True)

        async def main():
            return await st.collect(agen(), 4, 20)

        items, how = trio.run(main)
        self.assertEqual(items, list(range(20)))
        self.assertEqual(closed, [True])

    def test_cpp_cancels_a_read(self):
        async def agen():
            for i in range(5):
                yield i
            await trio.sleep(0.5)
            for i in range(5, 10):
                yield i

        async def main():
            return await st.read_then_cancel(agen(), 5, "timer")

        before, cancelled, after, how = trio.run(main)
        self.assertEqual(before, list(range(5)))
        self.assertEqual(cancelled, "aborted")


@needs_trio
class RunAndBlockOn(unittest.TestCase):
    def test_run_with_trio_as_the_loop(self):
        async def in_the_run():
            await trio.sleep(0.001)
            return sniffio.current_async_library() if anyio else "trio"

        # main awaits in_the_run() through the default task locals: the trio run's
        self.assertEqual(peers.run_trio(in_the_run, False), ("trio", "TrioLoop"))

    def test_run_refuses_trio_with_uvloop(self):
        async def nothing():
            pass

        with self.assertRaisesRegex(ValueError, "run_options::trio.*set one of them"):
            peers.run_trio(nothing, True)

    def test_run_refuses_a_thread_whose_trio_run_runs(self):
        async def nothing():
            pass

        async def main():
            peers.run_trio(nothing, False)

        with self.assertRaisesRegex(RuntimeError, "whose event loop is running"):
            trio.run(main)

    def test_block_on_a_trio_coroutine_from_a_worker_thread(self):
        async def double(x):
            await trio.sleep(0.001)
            # NOTE: the context was captured on a trio worker thread, where sniffio names none
            if anyio:
                self.assertEqual(sniffio.current_async_library(), "trio")
            return 2 * x

        async def main():
            loop = rt.current_loop()
            return await trio.to_thread.run_sync(rt.block_on_awaitable, double(21), loop)

        self.assertEqual(trio.run(main), 42)

    def test_run_until_complete_refuses_a_trio_loop(self):
        async def main():
            return rt.current_loop()

        loop = trio.run(main)
        with self.assertRaisesRegex(RuntimeError, "trio has no loop to run until a result"):
            rt.run_cpp_until_complete(loop, lambda: None)

    def test_the_loop_of_a_finished_run(self):
        async def main():
            return rt.current_loop()

        loop = trio.run(main)
        self.assertTrue(loop.is_closed())
        with self.assertRaisesRegex(RuntimeError, "the event loop is closed"):
            rt.task_locals_of(loop)


class WithoutTrio(unittest.TestCase):
    def test_a_blocked_trio_is_not_looked_for(self):
        # sys.modules["trio"] = None is how test suites hide a package: pyasio does not use it
        code = ("import sys, asyncio; sys.modules['trio'] = None\n"
                "import _pyasio_async_test as cpp\n"
                "print(asyncio.run(cpp.echo_int(3)), type(cpp.echo_int(4)).__name__)\n")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=120)
        self.assertEqual((done.returncode, done.stdout), (0, "3 LazyFuture\n"), done.stderr)


@needs_trio
class Misuse(unittest.TestCase):
    def test_a_trio_future_awaited_under_asyncio(self):
        kept = []

        async def make():
            fut = cpp.echo_int(1)
            kept.append(fut)
            await fut

        trio.run(make)

        async def under_asyncio():
            fut = cpp.sleep_ms(60_000)
            try:
                return await trio_future_pending
            finally:
                fut.cancel()

        async def pending_in_trio():
            fut = cpp.sleep_ms(60_000)
            kept.append(fut)

        trio.run(pending_in_trio)
        trio_future_pending = kept[-1]
        with self.assertRaisesRegex(RuntimeError, "made under trio.run.*not under asyncio"):
            asyncio.run(under_asyncio())

    def test_a_call_passed_where_the_function_belongs(self):
        # trio's own error, naming the mistake (a future or LazyFuture has a coroutine's names)
        async def main():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(cpp.echo_int(1))

        with self.assertRaisesRegex(TypeError, "expecting an async function"):
            trio.run(main)
        with self.assertRaisesRegex(TypeError, "expecting an async function"):
            trio.run(cpp.echo_int(2))  # made outside the run: a LazyFuture

    def test_a_trio_future_awaited_in_another_run(self):
        kept = []

        async def first():
            kept.append(cpp.sleep_ms(60_000))

        async def second():
            await kept[0]

        trio.run(first)
        with self.assertRaisesRegex(RuntimeError, "another trio run"):
            trio.run(second)

    def test_an_asyncio_future_awaited_under_trio(self):
        kept = []

        async def make():
            kept.append(cpp.sleep_ms(60_000))

        asyncio.run(make())

        async def main():
            await kept[0]

        with self.assertRaisesRegex(TypeError, "asyncio"):
            trio.run(main)

    def test_no_loop_outside_the_run(self):
        async def main():
            return await trio.to_thread.run_sync(lambda: cpp.echo_int(1))

        # a worker thread of trio runs no loop: a LazyFuture, which never starts there
        lazy = trio.run(main)
        self.assertEqual(type(lazy).__name__, "LazyFuture")
        lazy.close()


@needs_anyio
class AnyIO(unittest.TestCase):
    def check_backend(self, backend):
        before = cpp.stats()

        async def slow():
            await anyio.sleep(60)

        async def double(x):
            await anyio.sleep(0)
            return 2 * x

        async def main():
            got = [await cpp.echo_int(5), await py.await_py(double(4))]
            with anyio.move_on_after(0.05) as scope:
                await cpp.sleep_ms(60_000)
            got.append(scope.cancel_called)
            with anyio.move_on_after(0.05):
                await py.await_py(slow())
            async with anyio.create_task_group() as tg:
                for _ in range(100):
                    tg.start_soon(cpp.noop)
            got.append([x async for x in st.count(5, 2)])
            got.append(sniffio.current_async_library())
            return got

        self.assertEqual(anyio.run(main, backend=backend), [5, 8, True, list(range(5)), backend])
        self.assertTrue(wait_until(lambda: aborted_since(before) == 1))

    def test_on_trio(self):
        self.check_backend("trio")

    def test_on_asyncio(self):
        self.check_backend("asyncio")


if __name__ == "__main__":
    unittest.main()
