# SPDX-License-Identifier: BSL-1.0
"""The foundation seen from Python: an extension module built on pyasio."""
import gc
import sys
import unittest
import weakref

import _pyasio_test as ext


class Conversions(unittest.TestCase):
    def test_integers(self):
        self.assertEqual(ext.echo_int64(-(2**63)), -(2**63))
        self.assertEqual(ext.echo_uint8(255), 255)
        with self.assertRaisesRegex(OverflowError, r"out of range for C\+\+ unsigned char \[0, 255\]"):
            ext.echo_uint8(256)
        with self.assertRaisesRegex(OverflowError, "out of range"):
            ext.echo_int64(2**63)
        with self.assertRaisesRegex(TypeError, "^expected int, got float$"):
            ext.echo_int64(1.0)

    def test_text_and_bytes(self):
        self.assertEqual(ext.echo_str("h\u00e9llo \u2713"), "h\u00e9llo \u2713")
        with self.assertRaisesRegex(TypeError, "^expected str, got bytes$"):
            ext.echo_str(b"x")
        with self.assertRaises(UnicodeEncodeError):
            ext.echo_str("\ud800")
        self.assertEqual(ext.echo_bytes(b"\x00\xff"), b"\x00\xff")
        self.assertEqual(ext.echo_bytes(bytearray(b"ab")), b"ab")

    def test_records(self):
        self.assertEqual(ext.echo_record((1, "a", None)), (1, "a", None))
        self.assertEqual(ext.echo_record([1, "a", [0.5, 2]]), (1, "a", [0.5, 2.0]))
        with self.assertRaisesRegex(TypeError, "^expected tuple of 3 items, got tuple of 2 items$"):
            ext.echo_record((1, "a"))
        with self.assertRaisesRegex(TypeError, "^expected float, got str$"):
            ext.echo_record((1, "a", ["x"]))


class Errors(unittest.TestCase):
    def test_cpp_exceptions_become_python_exceptions(self):
        with self.assertRaisesRegex(ValueError, "^invalid argument from C\\+\\+$"):
            ext.raise_cpp("value")
        with self.assertRaisesRegex(IndexError, "^out of range from C\\+\\+$"):
            ext.raise_cpp("index")
        with self.assertRaises(FileNotFoundError) as cm:
            ext.raise_cpp("os")
        self.assertEqual(cm.exception.errno, 2)
        with self.assertRaisesRegex(RuntimeError, "^runtime error from C\\+\\+$"):
            ext.raise_cpp("runtime")

    def test_python_exception_passes_through_cpp_unchanged(self):
        original = KeyError("mine")

        def raiser(a, b):
            raise original

        with self.assertRaises(KeyError) as cm:
            ext.call_through(raiser, 1, 2)
        self.assertIs(cm.exception, original)
        self.assertEqual(ext.call_through(lambda a, b: a + b, 1, 2), 3)
        with self.assertRaisesRegex(ValueError, "needs f"):
            ext.call_through()


class ForeignThreads(unittest.TestCase):
    def test_objects_dropped_without_gil_are_all_released(self):
        class Thing:
            pass

        n = 100_000
        things = [Thing() for _ in range(n)]
        released = []
        refs = [weakref.ref(t, released.append) for t in things]
        self.assertEqual(ext.drop_in_thread(things), n)
        del things
        gc.collect()
        # Queued, not yet released: the C++ thread had no GIL.
        self.assertEqual(len(released), 0)
        # The next library call that holds the GIL releases them.
        ext.echo_int64(0)
        gc.collect()
        self.assertEqual(len(released), n)
        self.assertTrue(all(r() is None for r in refs))


if __name__ == "__main__":
    unittest.main()
