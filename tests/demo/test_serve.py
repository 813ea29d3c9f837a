# SPDX-License-Identifier: BSL-1.0
"""The demo's --serve PORT (demo/http_demo.cpp), as a client sees it: both servers answer both
handlers over HTTP, Ctrl-C (SIGINT) or SIGTERM ends the program with status 0, and a port that
cannot be had stops it at once with a one-line reason. ctest runs it with PYASIO_HTTP_DEMO set
to the built http_demo."""
import http.client
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import unittest
import urllib.request
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from demo_wrk import free_port_pair  # noqa: E402  (the benchmark's: one copy)

DEMO = os.environ.get("PYASIO_HTTP_DEMO")
# Generous limits for a loaded machine: they bound a hang, they measure nothing.
START_LIMIT = 60
EXIT_LIMIT = 30


def get(url):
    with urllib.request.urlopen(url, timeout=EXIT_LIMIT) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


class Served:
    """http_demo --serve on a free port pair, until stop()."""

    def __init__(self, *args):
        for _ in range(3):  # another program may take the ports between the choice and the start
            self.port = free_port_pair()
            self.process = subprocess.Popen([DEMO, "--serve", str(self.port), *args],
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            text=True)
            if self._wait_until_both_answer():
                return
            out, err = self.process.communicate(timeout=EXIT_LIMIT)
            if "is in use" not in err:
                raise AssertionError("http_demo --serve did not start (status %s):\n%s%s"
                                     % (self.process.returncode, out, err))
        raise AssertionError("http_demo --serve found its ports taken three times")

    def _wait_until_both_answer(self):
        for _ in range(START_LIMIT * 10):
            if self.process.poll() is not None:
                return False
            try:
                for port in (self.port, self.port + 1):
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        pass
                return True
            except OSError:
                try:
                    self.process.wait(timeout=0.1)
                except subprocess.TimeoutExpired:
                    pass
        self.process.kill()
        self.process.communicate()
        raise AssertionError("http_demo --serve did not listen within %d s" % START_LIMIT)

    def url(self, python, path):
        return "http://127.0.0.1:%d%s" % (self.port + (1 if python else 0), path)

    def stop(self, signum):
        """Sends the signal; (status, stdout, stderr) once the program ended."""
        self.process.send_signal(signum)
        try:
            out, err = self.process.communicate(timeout=EXIT_LIMIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
            raise AssertionError("http_demo --serve still ran %d s after the signal:\n%s%s"
                                 % (EXIT_LIMIT, out, err))
        return self.process.returncode, out, err


@unittest.skipIf(DEMO is None, "PYASIO_HTTP_DEMO is not set (run through ctest)")
class Serve(unittest.TestCase):
    def check_both_servers_and_handlers(self, served):
        for python in (False, True):
            for i, path in enumerate(("/hello", "/crc")):
                name = "client%d-%d" % (python, i)
                status, kind, body = get(served.url(python, "%s?name=%s" % (path, name)))
                self.assertEqual((status, kind), (200, "text/plain; charset=utf-8"))
                if path == "/crc":
                    self.assertEqual(body, "hello, %s; crc32 %08x\n"
                                     % (name, zlib.crc32(name.encode())))
                else:
                    self.assertEqual(body, "hello, %s\n" % name)

    def check_clean_end(self, served, signum, status, out, err):
        self.assertEqual(status, 0, out + err)
        self.assertEqual(err, "")
        for python in (False, True):  # the start named both URLs
            self.assertIn(served.url(python, "/crc?name=you"), out)
        self.assertIn("/crc runs handle_awaiting_cpp", out)
        self.assertTrue(out.endswith("%s: both servers closed\n" % signum.name), out)

    def test_both_servers_answer_both_handlers_until_ctrl_c(self):
        served = Served()
        self.check_both_servers_and_handlers(served)
        # a keep-alive connection still open at the end is closed, not waited for
        idle = http.client.HTTPConnection("127.0.0.1", served.port, timeout=EXIT_LIMIT)
        idle.request("GET", "/hello?name=idle")
        self.assertEqual(idle.getresponse().read(), b"hello, idle\n")
        try:
            self.check_clean_end(served, signal.SIGINT, *served.stop(signal.SIGINT))
        finally:
            idle.close()

    def test_sigterm_on_uvloop(self):
        if importlib.util.find_spec("uvloop") is None:  # (the demo's interpreter is this one)
            self.skipTest("uvloop is not installed (Debian: python3-uvloop)")
        served = Served("--uvloop")
        self.check_both_servers_and_handlers(served)
        self.check_clean_end(served, signal.SIGTERM, *served.stop(signal.SIGTERM))

    def start_refused(self, *args):
        done = subprocess.run([DEMO, "--serve", *args], capture_output=True, text=True,
                              timeout=START_LIMIT)
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        self.assertNotIn("Traceback", done.stderr)
        self.assertEqual(done.stderr.count("\n"), 1, done.stderr)  # one line
        return done.stderr

    def test_a_port_in_use(self):
        port = free_port_pair()
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", port + 1))
            taken.listen()
            # the Python server's port, PORT+1
            err = self.start_refused(str(port))
            self.assertRegex(err, r"^error: the Python server cannot listen on 127.0.0.1:%d .*: "
                                  r"port %d is in use; stop what uses it, or choose another "
                                  r"PORT\n$" % (port + 1, port + 1))
            # the C++ server's port, PORT
            err = self.start_refused(str(port + 1))
            self.assertRegex(err, r"^error: the C\+\+ server cannot listen on 127.0.0.1:%d .*: "
                                  r"port %d is in use; stop what uses it, or choose another "
                                  r"PORT\n$" % (port + 1, port + 1))

    def test_a_port_that_is_not_one(self):
        for bad in ("http", "0", "65535", "-1", "8080x"):
            err = self.start_refused(bad)
            self.assertEqual(err, "error: --serve needs a port from 1 to 65534 (the C++ server's; "
                                  "the Python server takes PORT+1), not '%s'\n" % bad)


if __name__ == "__main__":
    unittest.main()
