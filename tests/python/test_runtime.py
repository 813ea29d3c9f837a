# SPDX-License-Identifier: BSL-1.0
"""The runtime: configuration, a user's own io_context, shutdown with work in flight, and
interpreter exit with work in flight in both directions (test module: pyasio_runtime_ext.cpp)."""
import asyncio
import contextvars
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import unittest
import warnings

import _pyasio_runtime_test as m
from loops import ProactorLikeLoop

try:
    import uvloop
except ImportError:
    uvloop = None


class Shutdown(unittest.TestCase):
    def tearDown(self):
        m.shutdown_runtime(1000)
        m.configure_runtime(0)  # the default thread count; the runtime may start again

    def test_configured_thread_count(self):
        m.shutdown_runtime(1000)
        m.configure_runtime(3)
        asyncio.run(m.sleep_ms(1))
        self.assertEqual(m.runtime_thread_count(), 3)
        with self.assertRaisesRegex(RuntimeError, "already runs; configure it before"):
            m.configure_runtime(2)

    def test_work_in_flight_ends_cancelled_then_new_work_is_a_clear_error(self):
        async def main():
            futures = [m.sleep_ms(600_000) for _ in range(1000)]
            await asyncio.sleep(0.05)  # the work runs
            m.shutdown_runtime(5000)
            outcomes = await asyncio.gather(*futures, return_exceptions=True)
            self.assertTrue(all(isinstance(o, asyncio.CancelledError) for o in outcomes))
            if sys.version_info >= (3, 9):
                # (asked of the future itself: on 3.9 gather wraps it in a task, which drops
                # the message; 3.8 has none)
                with self.assertRaisesRegex(asyncio.CancelledError, "the runtime was shut down"):
                    futures[0].result()
            with self.assertRaisesRegex(RuntimeError, "runtime was shut down .*configure_runtime"):
                m.sleep_ms(1)
            m.configure_runtime(2)  # set up again: work runs
            await m.sleep_ms(1)

        asyncio.run(main())

    def test_a_lazy_future_runs_on_the_runtime_current_when_it_starts(self):
        lazy = m.sleep_in_work(1)  # no loop runs: a LazyFuture, started by its first await
        later = m.sleep_in_work(1)
        m.shutdown_runtime(1000)
        with self.assertRaisesRegex(RuntimeError, "runtime was shut down .*configure_runtime"):
            asyncio.run(lazy)
        m.configure_runtime(2)
        # on the new runtime (on the old one it never ran)
        self.assertIsNone(asyncio.run(asyncio.wait_for(later, 10)))

    def test_own_io_context(self):
        m.shutdown_runtime(1000)
        m.install_own_io_context()
        self.assertTrue(asyncio.run(m.on_own_io_context()))
        with self.assertRaisesRegex(RuntimeError, "already runs; install yours before"):
            m.install_own_io_context()
        m.shutdown_runtime(1000)
        self.assertFalse(m.own_io_context_stopped())  # pyasio lets go of it, never stops it


var = contextvars.ContextVar("var", default="unset")


async def where():
    """Which thread runs the coroutine, and what it sees of `var`."""
    await asyncio.sleep(0.001)
    return threading.current_thread().name, var.get()


class TaskLocalsNamedFromAnotherThread(unittest.TestCase):
    """pyasio::task_locals::of on this thread for a loop that runs on another one (pyo3's
    TaskLocals::new(event_loop)), then into_future from a plain C++ thread with those locals."""
    loop_factory = staticmethod(asyncio.new_event_loop)
    wake = "reader"
    expected_wake = None  # the mode the bridge uses: `wake`, unless the loop refuses add_reader

    def setUp(self):
        m.set_loop_wake(self.wake)  # for the bridges made from now on
        self.addCleanup(m.set_loop_wake, "reader")
        self.loop = self.loop_factory()
        started = threading.Event()
        self.loop.call_soon(started.set)
        self.thread = threading.Thread(target=self.loop.run_forever, name="the loop's thread")
        self.thread.start()
        self.assertTrue(started.wait(30))

    def tearDown(self):
        # the bridge was made on this thread, for a loop running on another one: its reader is
        # added (or refused) there, before the first C++ completion is drained
        mode = m.wake_info(self.loop)[0]
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()
        self.assertEqual(mode, self.expected_wake or self.wake)

    def test_the_coroutine_runs_on_the_loop_s_thread_in_the_context_given(self):
        context = contextvars.copy_context()
        context.run(var.set, "given")
        self.assertEqual(m.await_with_locals_of(self.loop, where, context),
                         ("the loop's thread", "given"))
        locals_ = m.task_locals_of(self.loop, context)
        self.assertIs(locals_[0], self.loop)
        self.assertIs(locals_[1], context)  # the context itself, not a copy

    def test_without_a_context_a_copy_of_the_caller_s_current_one(self):
        token = var.set("the caller's")
        try:
            self.assertEqual(m.await_with_locals_of(self.loop, where),
                             ("the loop's thread", "the caller's"))
        finally:
            var.reset(token)

    def test_many_threads_name_the_same_loop_at_once(self):
        results = []

        def name_and_await():
            results.append(m.await_with_locals_of(self.loop, where))

        threads = [threading.Thread(target=name_and_await) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [("the loop's thread", "unset")] * 8)


class TaskLocalsNamedFromAnotherThreadThreadsafe(TaskLocalsNamedFromAnotherThread):
    wake = "threadsafe"


class TaskLocalsNamedFromAnotherThreadProactorLike(TaskLocalsNamedFromAnotherThread):
    """A loop whose add_reader raises NotImplementedError (Windows' ProactorEventLoop), first
    named from another thread: its thread finds it out when it runs the bridge's attach callback,
    and falls back to call_soon_threadsafe with C++ work queued already."""

    loop_factory = ProactorLikeLoop
    expected_wake = "threadsafe"


@unittest.skipIf(uvloop is None, "uvloop is not installed")
class TaskLocalsNamedFromAnotherThreadUvloop(TaskLocalsNamedFromAnotherThread):
    loop_factory = staticmethod(lambda: uvloop.new_event_loop())


class TaskLocalsMisuse(unittest.TestCase):
    def test_a_closed_loop_a_non_loop_and_a_non_context(self):
        loop = asyncio.new_event_loop()
        try:
            with self.assertRaisesRegex(TypeError, r"pyasio::task_locals::of: expected a "
                                                   r"contextvars.Context, got dict"):
                m.task_locals_of(loop, {})
        finally:
            loop.close()
        with self.assertRaisesRegex(RuntimeError, r"pyasio::task_locals::of: the event loop is "
                                                  r"closed"):
            m.task_locals_of(loop)
        with self.assertRaisesRegex(TypeError, r"pyasio::task_locals::of: expected an event "
                                               r"loop, got int"):
            m.task_locals_of(42)


class CurrentLoop(unittest.TestCase):
    def test_the_running_loop_else_a_clear_error(self):
        with self.assertRaisesRegex(RuntimeError, r"pyasio::get_current_loop: no task locals "
                                                  r"are current and no event loop runs"):
            m.current_loop()

        async def main():
            self.assertIs(m.current_loop(), asyncio.get_running_loop())

        asyncio.run(main())


class AsyncGil(unittest.TestCase):
    def test_holds_the_gil_across_10k_timer_waits_while_python_threads_run(self):
        seen = []
        ticks = []
        stop = threading.Event()

        def python_thread():
            while not stop.is_set():
                ticks.append(1)
                time.sleep(0.0005)

        threads = [threading.Thread(target=python_thread) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            self.assertEqual(asyncio.run(m.gil_timers(seen.append, 10_000)), 10_000)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(seen, list(range(10_000)))
        self.assertGreater(len(ticks), 0)


@unittest.skipUnless(hasattr(os, "fork"), "no os.fork on this platform")
class Fork(unittest.TestCase):
    def test_the_child_of_a_fork_starts_a_fresh_runtime(self):
        # The parent's runtime threads keep finishing work (taking pyasio's locks) while the
        # main thread forks: the child has none of those threads, and must neither hang on a
        # lock they held nor wait for them. It starts a runtime of its own.
        stop = threading.Event()

        def busy():
            async def main():
                while not stop.is_set():
                    await asyncio.gather(*[m.sleep_ms(0) for _ in range(100)])

            asyncio.run(main())

        t = threading.Thread(target=busy)
        t.start()
        try:
            time.sleep(0.1)
            for _ in range(5):
                with warnings.catch_warnings():  # 3.12+: "use of fork() may lead to deadlocks"
                    warnings.simplefilter("ignore", DeprecationWarning)
                    pid = os.fork()
                if pid == 0:
                    code = 3
                    try:
                        async def child():
                            await asyncio.gather(*[m.sleep_ms(1) for _ in range(100)])
                            return m.runtime_thread_count()

                        code = 0 if asyncio.run(child()) > 0 else 2
                    finally:
                        os._exit(code)
                deadline = time.monotonic() + 30
                while True:
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        break
                    if time.monotonic() > deadline:
                        os.kill(pid, signal.SIGKILL)
                        os.waitpid(pid, 0)
                        self.fail("the child of a fork hung")
                    time.sleep(0.01)
                self.assertTrue(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0,
                                "the child of a fork failed: status %d" % status)
            asyncio.run(m.sleep_ms(1))  # and the parent goes on
        finally:
            stop.set()
            t.join()


class ExitWithWorkInFlight(unittest.TestCase):
    def test_exit_with_10k_operations_in_flight_each_way(self):
        script = textwrap.dedent("""
            import asyncio
            import atexit
            import _pyasio_runtime_test as r
            import _pyasio_into_future_test as f

            # registered before pyasio's own hook, so it runs after it (atexit is LIFO)
            atexit.register(lambda: print("threads at exit:", r.runtime_thread_count()))

            async def start():
                global keep
                keep = [r.sleep_ms(600_000) for _ in range(10_000)]  # Python awaits C++
                keep += [asyncio.ensure_future(f.await_py(asyncio.sleep(3600)))  # C++ awaits Python
                         for _ in range(10_000)]
                await asyncio.sleep(0.2)

            loop = asyncio.new_event_loop()
            loop.run_until_complete(start())
            print("exiting with work in flight; threads:", r.runtime_thread_count())
            # no close, no cancel: the interpreter exits with everything in flight
        """)
        # NOTE: ASan builds: LeakSanitizer's exit-time scan is off in this child (memory errors
        # are still checked). Its tracer, which stops every thread to scan them, crashed at this
        # child's exit ("Tracer caught signal 11", at a near-null address inside the sanitizer's
        # runtime) in every run of one build of this code, and in no run of another build of
        # the same code: a failure of the tool that the test cannot work around otherwise.
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=120, env=env)
        self.assertEqual(done.returncode, 0, done.stderr[-3000:])
        # pyasio's atexit hook stopped and joined the runtime before finalization
        self.assertEqual(done.stdout, "exiting with work in flight; threads: %d\nthreads at exit: 0\n"
                         % max(os.cpu_count(), 2))
        self.assertNotIn("Fatal", done.stderr)


if __name__ == "__main__":
    unittest.main()
