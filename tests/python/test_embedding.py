# SPDX-License-Identifier: BSL-1.0
"""pyasio::run in a C++ program that embeds Python (tests/embed_test.cpp), and pyasio::block_on
from synchronous Python code (test module: pyasio_runtime_ext.cpp)."""
import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import unittest

import _pyasio_runtime_test as m

EMBED = os.environ.get("PYASIO_EMBED_TEST")


def embed(mode, **kwargs):
    return subprocess.run([EMBED, mode], capture_output=True, text=True, timeout=60, **kwargs)


@unittest.skipIf(EMBED is None, "PYASIO_EMBED_TEST is not set (run through ctest)")
class Run(unittest.TestCase):
    def test_the_program_s_argv_is_sys_argv(self):
        # Python's own options (-c, -X) are the program's arguments, not parsed by Python; a
        # byte that is not UTF-8 arrives as a surrogate escape, as in python3's own sys.argv
        done = subprocess.run([EMBED, "argv", "-c", "-X", "dev", b"caf\xe9"], capture_output=True,
                              text=True, timeout=60, errors="replace")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(done.stdout, "sys.argv: ['%s', 'argv', '-c', '-X', 'dev', 'caf\\udce9']\n"
                         % EMBED)

    def test_called_twice_in_one_process(self):
        done = embed("twice")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(done.stdout, "run 1: 20 (interpreter finalized: no)\n"
                                      "run 2: 40 (interpreter finalized: yes)\n")

    def test_a_run_after_a_run_finalized_the_interpreter_is_refused_clearly(self):
        done = embed("after-finalize")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("run 1: 20 (interpreter finalized: yes)\n", done.stdout)
        self.assertRegex(done.stdout, r"run 2 refused: pyasio::run: the Python interpreter was "
                                      r"finalized earlier .* options.finalize = false")

    def test_in_an_interpreter_the_program_started(self):
        done = embed("own-interpreter")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(done.stdout, "result 42; still initialized: yes\n"
                                      "same interpreter: True\n")

    def test_an_exception_from_main_is_rethrown(self):
        done = embed("exception")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(done.stdout, "caught: thrown by main\n")

    def test_a_plain_thread_waits_for_python_and_into_future_uses_the_default_loop(self):
        done = embed("plain-thread")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(done.stdout, "plain thread got: hello from the loop\n"
                                      "default loop: 5\n")

    def test_run_on_the_thread_of_a_running_loop_is_refused(self):
        done = embed("nested-on-the-loop-thread")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        refused = ("pyasio::run: called on a thread whose event loop is running (as asyncio.run() "
                   "cannot be called from a running event loop)")
        lines = done.stdout.splitlines()
        self.assertEqual(len(lines), 4, done.stdout)
        for line, finalize in zip(lines, ("yes", "no")):
            self.assertTrue(line.startswith("refused (finalize %s): %s" % (finalize, refused)),
                            line)
            self.assertIn("co_await the work instead", line)
        self.assertEqual(lines[2:], ["default loop kept: yes",
                                     "outer run: 42 (interpreter finalized: yes)"])

    def test_run_on_another_thread_while_run_runs_twice_in_a_row(self):
        done = embed("nested-on-another-thread")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(done.stdout,
                         "nested run (finalize yes): its loop on the main thread: no\n"
                         "nested run (finalize no): its loop on the main thread: no\n"
                         "default loop kept: yes\n"
                         "outer run's loop on the main thread: yes\n"
                         "outer run: 42 (interpreter finalized: yes)\n")

    def test_the_outer_run_waits_for_a_nested_run_that_ends_after_it(self):
        done = embed("outer-ends-first")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(done.stdout, "outer run: 1 (interpreter finalized: yes)\n"
                                      "nested run: 100\n")

    def test_ctrl_c_cancels_main_and_exits_cleanly(self):
        p = subprocess.Popen([EMBED, "sigint"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        try:
            self.assertEqual(p.stdout.readline(), "waiting for Ctrl-C\n")
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=30)
        finally:
            p.kill()
        self.assertEqual(p.returncode, 130, err)
        self.assertEqual(out, "pyasio: interrupted by Ctrl-C (SIGINT); the main coroutine was "
                              "cancelled\n")

    def test_keyboard_interrupt_in_awaited_python_code_stops_run(self):
        done = embed("keyboard-interrupt")
        self.assertEqual(done.returncode, 130, done.stdout + done.stderr)
        self.assertEqual(done.stdout, "pyasio: interrupted: KeyboardInterrupt was raised in "
                                      "Python code the main coroutine awaited (Ctrl-C, or raised "
                                      "by the code), which stops the event loop; the main "
                                      "coroutine was cancelled\n")


class RunInAPythonProgram(unittest.TestCase):
    def test_on_the_thread_of_a_running_loop_it_is_refused(self):
        async def never():
            raise AssertionError("ran")

        async def main():
            with self.assertRaisesRegex(RuntimeError, r"pyasio::run: called on a thread whose "
                                                      r"event loop is running \(as asyncio.run\(\)"):
                m.run_awaiting(never)
            await m.sleep_ms(1)  # the runtime still runs

        asyncio.run(main())

    def test_on_another_thread_it_leaves_the_runtime_it_did_not_start_running(self):
        async def where():
            await asyncio.sleep(0.001)
            return threading.current_thread()

        async def main():
            await m.sleep_ms(1)  # the runtime runs before pyasio::run starts
            loop = asyncio.get_running_loop()
            for _ in range(2):  # twice in a row, each with a loop of its own
                thread = await loop.run_in_executor(None, m.run_awaiting, where)
                self.assertIsNot(thread, threading.current_thread())
            await m.sleep_ms(1)  # still runs: that run did not start it, so left it running

        asyncio.run(main())


class BlockOnAwaitable(unittest.TestCase):
    def test_a_loop_that_does_not_run_is_refused_not_waited_for(self):
        loop = asyncio.new_event_loop()
        refused = [asyncio.sleep(0), asyncio.sleep(0)]
        try:
            with self.assertRaisesRegex(RuntimeError, "the event loop is not running, so the "
                                                      "awaitable would never run"):
                m.block_on_awaitable(refused[0], loop)
        finally:
            loop.close()
        with self.assertRaisesRegex(RuntimeError, "the event loop is closed"):
            m.block_on_awaitable(refused[1], loop)
        for coro in refused:  # never run: the caller still owns them
            coro.close()


class RunUntilComplete(unittest.TestCase):
    def test_cpp_work_on_a_loop_that_exists(self):
        async def answer():
            await asyncio.sleep(0.001)
            return asyncio.get_running_loop()

        loop = asyncio.new_event_loop()
        try:
            self.assertIs(m.run_cpp_until_complete(loop, answer), loop)
            self.assertFalse(loop.is_closed())  # left open

            async def inside():
                m.run_cpp_until_complete(loop, answer)

            with self.assertRaisesRegex(RuntimeError, "event loop is running.*deadlock"):
                loop.run_until_complete(inside())
        finally:
            loop.close()


class TaskLocalsOf(unittest.TestCase):
    def test_a_loop_that_does_not_run_and_one_that_runs_elsewhere(self):
        loop = asyncio.new_event_loop()
        try:
            self.assertIs(m.task_locals_of(loop)[0], loop)
            started = threading.Event()
            loop.call_soon(started.set)
            t = threading.Thread(target=loop.run_forever)
            t.start()
            try:
                started.wait(10)
                self.assertIs(m.task_locals_of(loop)[0], loop)  # named from this thread
            finally:
                loop.call_soon_threadsafe(loop.stop)
                t.join()
        finally:
            loop.close()


class BlockOn(unittest.TestCase):
    def test_from_synchronous_code_with_the_gil_released(self):
        ticks = []
        stop = threading.Event()

        def python_thread():
            while not stop.is_set():
                ticks.append(1)
                time.sleep(0.001)

        t = threading.Thread(target=python_thread)
        t.start()
        try:
            before = len(ticks)
            self.assertEqual(m.block_on_sleep(200), 200)
            ran = len(ticks) - before
        finally:
            stop.set()
            t.join()
        self.assertGreater(ran, 10)  # the Python thread ran while C++ waited

    def test_on_the_loop_thread_is_a_clear_error(self):
        async def main():
            with self.assertRaisesRegex(RuntimeError, "event loop is running.*deadlock"):
                m.block_on_sleep(1)

        asyncio.run(main())

    def test_ctrl_c_interrupts_the_wait(self):
        script = textwrap.dedent("""
            import _pyasio_runtime_test as m
            print("waiting", flush=True)
            try:
                m.block_on_sleep(60_000, True)  # writes "started" once block_on waits
            except KeyboardInterrupt as e:
                print("interrupted:", e)
        """)
        p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            self.assertEqual(p.stdout.readline(), "waiting\n")
            self.assertEqual(p.stdout.readline(), "started\n")  # from C++: block_on waits
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=30)
        finally:
            p.kill()
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(out, "interrupted: pyasio::block_on: interrupted by Ctrl-C (SIGINT); "
                              "the C++ work was cancelled\n")


if __name__ == "__main__":
    unittest.main()
