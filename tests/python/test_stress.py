# SPDX-License-Identifier: BSL-1.0
"""The quick form of the stress scenarios (stress.py): storms of cancellations and exceptions
both ways, many waits in flight, a loop closed with work pending, two loops in two threads on 8
runtime threads. The soak (soak.py) runs the same with 10-100x the sizes."""
import os
import subprocess
import sys
import unittest

import stress


class Stress(unittest.TestCase):
    def test_python_cancels_a_random_half_of_10k_cpp_waits(self):
        outcome = stress.run(stress.python_cancels_cpp(10_000))
        self.assertGreater(outcome["completed"], 0)

    def test_cpp_cancels_a_random_half_of_10k_python_awaits(self):
        outcome = stress.run(stress.cpp_cancels_python(10_000))
        self.assertGreater(outcome["completed"], 0)

    def test_10k_exceptions_each_way(self):
        stress.run(stress.exceptions_both_ways(10_000))

    def test_100k_waits_in_flight(self):
        stress.run(stress.sleeps_in_flight(100_000))

    def test_a_loop_closed_with_1000_waits_pending(self):
        stress.loop_closed_with_work_pending(1000)

    def test_two_loops_in_two_threads_on_8_runtime_threads(self):
        code = stress.TWO_LOOPS.format(threads=8, n=10_000)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=300, cwd=os.path.dirname(os.path.abspath(__file__)))
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(done.stdout, "errors: []\n")


if __name__ == "__main__":
    unittest.main()
