# SPDX-License-Identifier: BSL-1.0
"""What users do that no design had in mind: a thread ended under pyasio's frames (as CPython ends
a thread at interpreter exit), an interpreter exiting while a daemon thread's loop reads a C++
stream, and an empty pyasio::object crossing into Python."""
import asyncio
import os
import subprocess
import sys
import textwrap
import unittest

import _pyasio_stream_test  # noqa: F401 (built beside; the exit scenario imports it)
import _pyasio_test as ext

HERE = os.path.dirname(os.path.abspath(__file__))
SANITIZED = "LD_PRELOAD" in os.environ  # the ASan/TSan stages: each child is slower


def run_child(script, *args, timeout=120):
    """Runs `script` in a new interpreter (-X dev, as the tests run); (returncode, output)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE] + sys.path))
    proc = subprocess.run([sys.executable, "-X", "dev", "-c", textwrap.dedent(script), *args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                          timeout=timeout)
    return proc.returncode, proc.stdout.decode(errors="replace")


# A daemon thread runs its own loop; each kind ends that thread (pthread_exit, as CPython does
# to a thread that wants the GIL during finalization) inside another kind of pyasio frame. The
# thread's thread_local destructors count it only once the forced unwind crossed every frame.
# A catch-all that swallowed it aborts the process ("FATAL: exception not rethrown"); a noexcept
# frame on its way, std::terminate.
END_THREAD = r"""
    import asyncio, sys, threading, time
    import _pyasio_test as ext

    async def ends_in_factory():
        loop = asyncio.get_running_loop()
        loop.set_task_factory(lambda loop, coro: (coro.close(), ext.end_thread()))
        await ext.await_in_cpp(asyncio.sleep(0), False)

    async def agen():
        yield 1
        ext.end_thread()
        yield 2

    async def read_in_cpp():
        await ext.read_in_cpp(agen())

    async def read_stream():
        async for _ in ext.stream_ending_thread():
            pass

    kinds = {
        # a function that Python calls (pyasio::entry_point)
        "entry_point": ext.end_thread,
        # future_into_py's completion, converted in the loop bridge's drain
        "completion": lambda: asyncio.run(ext.result_ending_thread()),
        # into_future's start job, run by the drain (the task factory is Python code)
        "drain": lambda: asyncio.run(ends_in_factory()),
        # into_future's outcome, converted to C++ in the task's done callback
        "done callback": lambda: asyncio.run(ext.await_in_cpp(asyncio.sleep(0), True)),
        # stream_into_py's __anext__, converting an item
        "stream step (Python reads C++)": lambda: asyncio.run(read_stream()),
        # into_stream's pump, stepping the Python async generator
        "stream step (C++ reads Python)": lambda: asyncio.run(read_in_cpp()),
    }
    kind = sys.argv[1]
    threading.Thread(target=kinds[kind], daemon=True).start()
    deadline = time.monotonic() + 60
    while ext.threads_ended() == 0:
        if time.monotonic() > deadline:
            sys.exit("the thread was never ended")
        time.sleep(0.002)
    print("ended:", kind)
"""

# A daemon thread reads a C++ stream (1 ms between items) on its own loop in debug mode while
# the main thread returns: CPython ends the daemon thread when it next wants the GIL, often
# inside pyasio's drain (a segfault in 12 of 30 exits before forced unwinds were let through).
EXIT_WHILE_READING = r"""
    import asyncio, threading
    import _pyasio_stream_test as ext

    reading = threading.Event()

    def reader():
        async def main():
            async for i in ext.count(10**9, 64, 1):
                if i == 3:
                    reading.set()
        try:
            asyncio.run(main(), debug=True)
        except BaseException:
            # NOTE: the exit's runtime shutdown ends the stream (CancelledError). Printing that
            # traceback does file I/O, releasing and taking the GIL again during finalization,
            # where CPython 3.12.1 itself can crash (take_gil, ceval_gil.c:358, seen in gdb
            # with no pyasio frame on the stack); this test is about pyasio's frames.
            pass

    threading.Thread(target=reader, daemon=True).start()
    # NOTE: returns once the reader reads (not while its thread still imports and starts its
    # loop: a daemon thread importing modules during finalization is a hazard of CPython's own)
    if not reading.wait(60):
        raise SystemExit("the reader never read")
"""


class Subinterpreters(unittest.TestCase):
    # Once a subinterpreter has existed, PyGILState_Check answers 1 on every thread (3.8-3.12):
    # pyasio's own "does this thread hold the GIL" must not trust it (its runtime threads then
    # stopped the program, "a runtime thread still holds the GIL", while the loop ran Python).
    def test_work_after_a_subinterpreter_was_created(self):
        try:
            import _xxsubinterpreters  # noqa: F401  (3.8-3.12; 3.13 renamed it)
        except ImportError:
            self.skipTest("no _xxsubinterpreters in this Python")
        code, out = run_child("""
            import asyncio, _xxsubinterpreters as interpreters
            import _pyasio_async_test as ext
            interpreters.destroy(interpreters.create())
            async def main():
                for _ in range(20):
                    await asyncio.gather(*(ext.sleep_ms(1) for _ in range(50)))
            asyncio.run(main())
            print("done")
            """)
        self.assertEqual((code, out.strip().splitlines()[-1:]), (0, ["done"]), out)


class ForcedUnwind(unittest.TestCase):
    def test_a_thread_ended_inside_each_kind_of_entry_point_ends_cleanly(self):
        for kind in ["entry_point", "completion", "drain", "done callback",
                     "stream step (Python reads C++)", "stream step (C++ reads Python)"]:
            with self.subTest(kind=kind):
                code, out = run_child(END_THREAD, kind)
                self.assertEqual(code, 0, out)
                self.assertIn("ended: " + kind, out)

    def test_interpreter_exit_while_a_daemon_loop_reads_a_cpp_stream(self):
        runs = 10 if SANITIZED else 50
        # two at a time: each run mostly waits for its interpreter to start and exit
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE] + sys.path))
        script = textwrap.dedent(EXIT_WHILE_READING)
        failures = []
        for _ in range(runs // 2):
            procs = [subprocess.Popen([sys.executable, "-X", "dev", "-c", script], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                     for _ in range(2)]
            for p in procs:
                out, _ = p.communicate(timeout=120)
                if p.returncode != 0:
                    failures.append((p.returncode, out.decode(errors="replace")[-2000:]))
        self.assertEqual(failures, [], "%d of %d exits failed" % (len(failures), runs))


class EmptyObject(unittest.TestCase):
    MESSAGE = r"an empty pyasio::object .* cannot cross into Python; for None use"

    def test_returned_from_entry_point(self):
        with self.assertRaisesRegex(ValueError, self.MESSAGE):
            ext.empty_object("return")

    def test_inside_a_converted_tuple(self):
        with self.assertRaisesRegex(ValueError, self.MESSAGE):
            ext.empty_object("tuple")

    def test_as_the_result_of_cpp_work(self):
        async def main():
            with self.assertRaisesRegex(ValueError, self.MESSAGE):
                await ext.empty_object("result")

        asyncio.run(main())


if __name__ == "__main__":
    unittest.main()
