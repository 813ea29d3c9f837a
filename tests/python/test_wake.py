# SPDX-License-Identifier: BSL-1.0
"""How C++ threads wake a loop (the loop bridge): the file descriptor this platform and build use
(an eventfd on Linux; a pipe with PYASIO_USE_PIPE_WAKE=1, and on macOS and the BSDs), and the
fall back to call_soon_threadsafe for a loop whose add_reader raises NotImplementedError
(Windows' ProactorEventLoop), on the loop's thread and from another thread.

PYASIO_EXPECT_WAKE_FD (eventfd, pipe2, pipe, none) names the kind the test modules must have been
built with; without it, the platform's default. Each test module has its own copy of pyasio, so
its own bridges: each is checked."""
import asyncio
import asyncio.proactor_events
import gc
import os
import sys
import threading
import time
import unittest

import _pyasio_async_test as fut  # future_into_py
import _pyasio_into_future_test as inf  # into_future, loop_executor
import _pyasio_runtime_test as rt  # task_locals::of from another thread
import _pyasio_stream_test as st  # into_stream, stream_into_py
from loops import ProactorLikeLoop, add_reader_refused

MODULES = (fut, inf, rt, st)
PLATFORM_KIND = ("eventfd" if sys.platform.startswith("linux") else
                 "none" if sys.platform == "win32" else
                 "pipe" if sys.platform == "darwin" else "pipe2")
EXPECTED_KIND = os.environ.get("PYASIO_EXPECT_WAKE_FD") or PLATFORM_KIND
HANG = 60  # seconds: a hang guard only


def fd_target(fd):
    return os.readlink("/proc/self/fd/%d" % fd)


def wake_fds():
    """The eventfds and pipes this process has open (Linux)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink("/proc/self/fd/" + name)
        except OSError:
            continue  # the listing's own descriptor, closed already
        if target == "anon_inode:[eventfd]" or target.startswith("pipe:"):
            found.append(target)
    return found


async def use_every_module():
    """Each module's bridge for the running loop: future_into_py, into_future, the loop executor,
    C++ reading a Python async iterator, Python reading a C++ producer."""

    async def coro(x):
        await asyncio.sleep(0.001)
        return x

    async def numbers(n):
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    assert await fut.echo_int(7) == 7
    assert await inf.await_py(coro("awaited")) == "awaited"
    assert await inf.on_loop_await(coro("on the loop")) == "on the loop"
    assert await st.collect(numbers(100)) == (list(range(100)), "end")
    assert [x async for x in st.count(100)] == list(range(100))
    assert await rt.gil_timers(lambda i: None, 3) == 3


class TheWakeFileDescriptor(unittest.TestCase):
    def test_every_module_was_built_with_the_expected_kind(self):
        self.assertEqual([m.wake_fd_kind() for m in MODULES], [EXPECTED_KIND] * len(MODULES))

    @unittest.skipIf(EXPECTED_KIND == "none", "no wake file descriptor on this platform")
    def test_a_selector_loop_watches_it_non_blocking_and_close_on_exec(self):
        async def main():
            await use_every_module()
            loop = asyncio.get_running_loop()
            for m in MODULES:
                mode, kind, fd, pushes = m.wake_info(loop)
                self.assertEqual((mode, kind), ("reader", EXPECTED_KIND), m.__name__)
                self.assertGreater(pushes, 0, m.__name__)
                self.assertFalse(os.get_blocking(fd))
                self.assertFalse(os.get_inheritable(fd))
                self.assertIsNotNone(loop._selector.get_key(fd))  # watched with add_reader
                if os.path.isdir("/proc/self/fd"):
                    target = fd_target(fd)
                    if EXPECTED_KIND == "eventfd":
                        self.assertEqual(target, "anon_inode:[eventfd]")
                    else:
                        self.assertTrue(target.startswith("pipe:["), target)

        asyncio.run(main())


class LoopsWithoutAddReader(unittest.TestCase):
    """ProactorLikeLoop's add_reader is ProactorEventLoop's: asyncio.AbstractEventLoop's, which
    raises NotImplementedError. Reader mode (the default, chosen explicitly here) falls back to
    call_soon_threadsafe for it, and closes the bridge's file descriptors."""

    def setUp(self):
        for m in (fut, st):
            m.set_wake("reader")
        rt.set_loop_wake("reader")

    def test_the_test_loop_refuses_add_reader_as_proactor_does(self):
        self.assertIs(asyncio.proactor_events.BaseProactorEventLoop.add_reader,
                      asyncio.AbstractEventLoop.add_reader)
        self.assertIs(ProactorLikeLoop.add_reader, asyncio.AbstractEventLoop.add_reader)
        self.assertTrue(add_reader_refused())

    def test_used_on_the_loop_s_thread_every_module_falls_back(self):
        async def main():
            await use_every_module()
            for m in MODULES:
                mode, kind, fd, pushes = m.wake_info(asyncio.get_running_loop())
                self.assertEqual((mode, kind, fd), ("threadsafe", "none", -1), m.__name__)

        loop = ProactorLikeLoop()
        try:
            loop.run_until_complete(main())
        finally:
            loop.close()

    @unittest.skipUnless(os.path.isdir("/proc/self/fd"), "no /proc/self/fd")
    def test_the_fall_back_closes_the_file_descriptors(self):
        async def main():
            await fut.echo_int(1)
            return fut.wake_info(asyncio.get_running_loop())[0]

        def open_loops(factory, n=10):
            """The modes of n loops, and the descriptors open while they are."""
            loops = [factory() for _ in range(n)]
            try:
                return [loop.run_until_complete(main()) for loop in loops], len(wake_fds())
            finally:
                for loop in loops:
                    loop.close()

        before = len(wake_fds())
        # the control: a loop with add_reader keeps its bridge's descriptors while it lives
        modes, with_selectors = open_loops(asyncio.SelectorEventLoop)
        self.assertEqual(modes, ["reader"] * 10)
        if EXPECTED_KIND != "none":
            per_loop = 1 if EXPECTED_KIND == "eventfd" else 2
            self.assertEqual(with_selectors - before, 10 * per_loop)
        gc.collect()  # a bridge is destroyed with its loop, and closes its descriptors then
        self.assertEqual(len(wake_fds()), before)
        modes, with_proactors = open_loops(ProactorLikeLoop)
        self.assertEqual(modes, ["threadsafe"] * 10)
        self.assertEqual(with_proactors, before)  # each bridge closed its own at once


class FirstUsedFromAnotherThread(unittest.TestCase):
    """The loop runs on its own thread; this thread names it first (task_locals::of): the loop's
    thread finds out that add_reader is missing when it runs the bridge's attach callback."""

    def setUp(self):
        rt.set_loop_wake("reader")
        self.loop = ProactorLikeLoop()
        started = threading.Event()
        self.loop.call_soon(started.set)
        self.thread = threading.Thread(target=self.loop.run_forever, name="the loop's thread")
        self.thread.start()
        self.assertTrue(started.wait(HANG))

    def tearDown(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()

    def test_work_queued_before_the_fall_back_is_not_lost(self):
        # NOTE: the loop's thread is held in a callback while C++ names the loop and queues the
        # start of an awaitable: that wake went to the file descriptor, which no reader watches
        # then, nor ever. The fall back runs a drain for it.
        release = threading.Event()
        held = threading.Event()

        def hold():
            held.set()
            release.wait(HANG)

        self.loop.call_soon_threadsafe(hold)
        self.assertTrue(held.wait(HANG))
        results = []

        async def answer():
            return threading.current_thread().name

        waiter = threading.Thread(
            target=lambda: results.append(rt.await_with_locals_of(self.loop, answer)), daemon=True)
        waiter.start()
        try:
            deadline = HANG
            while rt.wake_info(self.loop)[3] == 0 and deadline > 0:  # the start is queued
                deadline -= 0.01
                threading.Event().wait(0.01)
            queued = rt.wake_info(self.loop)
        finally:
            release.set()
        waiter.join(HANG)
        self.assertFalse(waiter.is_alive(), "the queued work was never run")
        self.assertEqual(results, ["the loop's thread"])
        mode, kind, fd, pushes = queued
        self.assertEqual(pushes, 1)
        if EXPECTED_KIND != "none":
            self.assertEqual((mode, kind), ("reader", EXPECTED_KIND))  # not attached yet
        self.assertEqual(rt.wake_info(self.loop)[:3], ("threadsafe", "none", -1))

    def test_many_threads_at_once(self):
        results = []

        async def answer(i):
            await asyncio.sleep(0.001)
            return i

        threads = [threading.Thread(
            target=lambda i=i: results.append(rt.await_with_locals_of(self.loop, lambda: answer(i))),
            daemon=True) for i in range(16)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + HANG
        for t in threads:
            t.join(max(0, deadline - time.monotonic()))
        self.assertEqual(sorted(results), list(range(16)), "queued work was never run")
        self.assertEqual(rt.wake_info(self.loop)[:3], ("threadsafe", "none", -1))


class OtherErrorsFromAddReader(unittest.TestCase):
    """An add_reader that fails otherwise than with NotImplementedError is an error, as before:
    raised to the caller on the loop's thread."""

    def test_raised_at_the_first_call_on_the_loop_s_thread(self):
        class Refusing(asyncio.SelectorEventLoop):
            def add_reader(self, fd, callback, *args):
                raise OSError("add_reader refused")

        fut.set_wake("reader")
        loop = Refusing()
        try:
            async def main():
                with self.assertRaisesRegex(OSError, "add_reader refused"):
                    await fut.echo_int(1)

            if EXPECTED_KIND != "none":
                loop.run_until_complete(main())
        finally:
            loop.close()


if __name__ == "__main__":
    unittest.main()
