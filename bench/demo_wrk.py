# SPDX-License-Identifier: BSL-1.0
"""The demo's two servers under wrk (Debian's HTTP load generator, not ours): requests per second
and latency of the C++ Asio server (pyasio) and of the pure-Python asyncio.start_server server,
for both handlers, on asyncio's loop and on uvloop.

It builds nothing: it runs a built http_demo (./scripts/demo --wrk builds it in Release mode and
runs this script). For each round and loop it starts `http_demo --serve PORT [--uvloop]`, checks
one answer of each server and handler, then for each handler runs wrk against the C++ server and
the Python one in turn (the handler `handle` at /hello?name=wrk, `handle_awaiting_cpp` at
/crc?name=wrk; a short untimed wrk run first warms each up), and ends the demo with Ctrl-C
(SIGINT), which must exit 0. The table gives each figure's median over the rounds, and the
ratio C++/Python of each round (both servers measured back to back, so the host's load
affects both alike). A second table gives the CPU time each request cost the demo (from
/proc, over the same wrk runs): on its event loop's thread, the one that holds the GIL, and in
the whole process (the loop, the runtime); the host's other load hardly moves these. Then the
demo's own measuring runs (its built-in C++ load generator) for the same loops, unless
--no-builtin.

Usage:
  /usr/bin/python3 bench/demo_wrk.py --demo build/demo/demo/http_demo [--duration 10]
      [--connections 64] [--wrk-threads 2] [--rounds 5] [--pin-wrk CPU] [--loops asyncio,uvloop]
      [--no-builtin] [--write docs/demo.md]
--write replaces the section of the page between this script's markers. --smoke runs
everything once, briefly (one round of 1 s wrk runs, 500 requests per built-in run), and checks
that it works (the test command runs it).

Cores: on a 2-core machine wrk, the demo's event loop thread and its runtime thread(s) share
them; the C++ server keeps two threads busy (the loop's and the runtime's), the Python server
one. By default nothing is pinned and wrk runs `-t2 -c64` (its usual form): the machine as a
client on it sees it, the C++ server paying for its second thread. --pin-wrk CPU runs wrk on that
CPU alone (taskset), which caps wrk at one core and leaves the servers the other one and what
wrk leaves; the output says which was used.
"""

import argparse
import datetime
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from future_into_py import machine, write_section  # noqa: E402

BEGIN = "<!-- bench/demo_wrk.py: begin -->"
END = "<!-- bench/demo_wrk.py: end -->"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HANDLERS = (("handle", "/hello?name=wrk"), ("handle_awaiting_cpp", "/crc?name=wrk"))
SERVERS = ("C++", "Python")
START_LIMIT = 60  # seconds: a bound on a hang, not a measurement


def free_port_pair():
    """A port P such that P and P+1 were both free a moment ago."""
    for _ in range(100):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise SystemExit("no two free neighbouring ports")


def expected_body(path):
    name = "wrk"
    if path.startswith("/crc"):
        return "hello, %s; crc32 %08x\n" % (name, zlib.crc32(name.encode()))
    return "hello, %s\n" % name


class Demo:
    """http_demo --serve on a free port pair, until stop(); a context manager that kills it if
    it still runs at the end (when a measurement failed)."""

    def __init__(self, demo, loop, extra):
        for attempt in range(3):  # another program may take the ports before the demo does
            self.port = free_port_pair()
            self.command = [demo, "--serve", str(self.port)] + (
                ["--uvloop"] if loop == "uvloop" else []) + extra
            self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True)
            failure = self._wait_until_listening()
            if failure is None:
                return
            if "is in use" not in failure or attempt == 2:
                raise SystemExit(failure)

    def _wait_until_listening(self):
        """None once both servers listen; else why not."""
        deadline = time.monotonic() + START_LIMIT
        while True:
            if self.process.poll() is not None:
                out, err = self.process.communicate()
                return "%s did not start (status %d):\n%s%s" % (
                    shlex.join(self.command), self.process.returncode, out, err)
            try:
                for server in SERVERS:
                    with socket.create_connection(("127.0.0.1", self.server_port(server)), 1):
                        pass
                return None
            except OSError:
                if time.monotonic() > deadline:
                    self.process.kill()
                    self.process.communicate()
                    return "%s did not listen within %d s" % (shlex.join(self.command),
                                                               START_LIMIT)
                time.sleep(0.1)

    def check_answers(self):
        """One request to each server and handler: the figures are of right answers only."""
        for server in SERVERS:
            for _, path in HANDLERS:
                with urllib.request.urlopen(self.url(server, path), timeout=30) as r:
                    body = r.read().decode()
                if r.status != 200 or body != expected_body(path):
                    raise SystemExit("%s answered %d %r" % (self.url(server, path), r.status, body))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()

    def server_port(self, server):
        return self.port + SERVERS.index(server)

    def url(self, server, path):
        return "http://127.0.0.1:%d%s" % (self.server_port(server), path)

    def stop(self):
        """Ctrl-C; the demo's output. It must end with status 0 within START_LIMIT seconds."""
        self.process.send_signal(signal.SIGINT)
        try:
            out, err = self.process.communicate(timeout=START_LIMIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise SystemExit("%s still ran %d s after Ctrl-C" % (shlex.join(self.command),
                                                                 START_LIMIT))
        if self.process.returncode != 0 or err:
            raise SystemExit("%s ended with status %d after Ctrl-C:\n%s%s"
                             % (shlex.join(self.command), self.process.returncode, out, err))
        return out


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def milliseconds(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s)", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def cpu_seconds(pid, tid=None):
    """The user and system CPU time of a process, or of one of its threads, so far."""
    path = "/proc/%d/task/%d/stat" % (pid, tid) if tid else "/proc/%d/stat" % pid
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(args, url, seconds, pid=None):
    """wrk's requests per second and latency percentiles (ms) for `url`; with the server's
    process id, also its CPU microseconds per request: on the main thread (the demo's event
    loop) and in the whole process."""
    before = (cpu_seconds(pid, pid), cpu_seconds(pid)) if pid else None
    command = ["wrk", "-t%d" % args.wrk_threads, "-c%d" % args.connections, "-d%ds" % seconds,
               "--latency", url]
    if args.pin_wrk is not None:
        command = ["taskset", "-c", str(args.pin_wrk)] + command
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    out = done.stdout
    rate = re.search(r"^Requests/sec:\s+([0-9.]+)", out, re.M)
    if done.returncode != 0 or rate is None:
        raise SystemExit("%s failed (status %d):\n%s%s" % (shlex.join(command), done.returncode,
                                                            out, done.stderr))
    # a status other than 2xx/3xx: the handler's answers are wrong, the figure means nothing
    if "Non-2xx or 3xx responses" in out:
        raise SystemExit("%s: answers that are not 200:\n%s" % (shlex.join(command), out))
    latency = {p: milliseconds(v) for p, v in re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M)}
    # wrk's socket errors (a connection refused or reset, a request over 2 s) are reported
    errors = re.search(r"^\s+Socket errors: (.*)$", out, re.M)
    figures = {"rate": float(rate.group(1)), "p50": latency["50"], "p99": latency["99"],
               "errors": errors.group(1) if errors else ""}
    if pid:
        requests = int(re.search(r"^\s*(\d+) requests in", out, re.M).group(1))
        figures["loop_us"] = (cpu_seconds(pid, pid) - before[0]) * 1e6 / requests
        figures["process_us"] = (cpu_seconds(pid) - before[1]) * 1e6 / requests
    return figures


def measure_wrk(args):
    """{(loop, handler): [round {server: wrk figures}]}; also the demo's runtime thread count."""
    results = {}
    threads = set()
    extra = ["--threads", str(args.runtime_threads)] if args.runtime_threads else []
    for r in range(args.rounds):
        for loop in args.loops:
            with Demo(args.demo, loop, extra) as demo:
                demo.check_answers()
                for handler, path in HANDLERS:
                    # alternate which server goes first, so that a trend in the host's load
                    # does not favour one
                    order = SERVERS if r % 2 == 0 else tuple(reversed(SERVERS))
                    figures = {}
                    for server in order:
                        if args.warmup:
                            run_wrk(args, demo.url(server, path), args.warmup)
                        figures[server] = run_wrk(args, demo.url(server, path), args.duration,
                                                  demo.process.pid)
                        f = figures[server]
                        print("round %d, %s, %s, %s server: %.0f req/s, p50 %.2f ms, p99 %.2f ms, "
                              "CPU per request %.1f µs on the loop thread, %.1f µs in all%s"
                              % (r + 1, loop, handler, server, f["rate"], f["p50"], f["p99"],
                                 f["loop_us"], f["process_us"],
                                 "; wrk's socket errors: " + f["errors"] if f["errors"] else ""),
                              flush=True)
                    results.setdefault((loop, handler), []).append(figures)
                out = demo.stop()
            threads.update(re.findall(r"runtime threads: (\d+)", out))
    return results, ", ".join(sorted(threads))


def measure_builtin(args):
    """The demo's own measuring runs: {(loop, handler): {server: req/s}}, and its command."""
    results = {}
    commands = []
    extra = ["--threads", str(args.runtime_threads)] if args.runtime_threads else []
    if args.smoke:
        extra += ["--requests", "500"]
    for loop in args.loops:
        command = [args.demo] + (["--uvloop"] if loop == "uvloop" else []) + extra
        commands.append(command)
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SystemExit("%s failed (status %d):\n%s%s" % (shlex.join(command),
                                                                done.returncode, done.stdout,
                                                                done.stderr))
        for server, handler, p50, p99, rate in re.findall(
                r"^  (C\+\+|Python) .*? (handle\w*) +\d+ +\d+ +([0-9.]+) +([0-9.]+) +([0-9.]+)$",
                done.stdout, re.M):
            results.setdefault((loop, handler), {})[server] = {
                "rate": float(rate), "p50": float(p50), "p99": float(p99)}
    return results, commands


def git(*args):
    done = subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def report(args, wrk, runtime_threads, builtin, started, load_before):
    median = statistics.median
    head = git("log", "-1", "--format=%h")
    headers = git("log", "-1", "--format=%h, %cs", "--", "include")
    dirty = [d for d in ("include", "demo") if git("status", "--porcelain", "--", d)]
    pinning = ("wrk pinned to CPU %d (taskset), the demo not pinned" % args.pin_wrk
               if args.pin_wrk is not None else "nothing pinned")
    lines = [
        "Measured by `%s` on %s, %s UTC; the checkout at commit %s (the headers last changed in "
        "%s)%s; runtime threads: %s; load average %.2f before, %.2f after (1 min)."
        % (shlex.join(["bench/demo_wrk.py"] + args.argv), machine(), started, head, headers,
           ", with uncommitted changes in " + " and ".join(d + "/" for d in dirty) if dirty else "",
           runtime_threads or "?", load_before, os.getloadavg()[0]),
        "",
        "wrk: `wrk -t%d -c%d -d%ds --latency URL`%s, %s; median of %d rounds; each round "
        "measures the C++ and the Python server back to back (in alternating order), and its "
        "ratio is theirs. wrk, the demo's loop thread and its runtime share %d cores."
        % (args.wrk_threads, args.connections, args.duration,
           " after a %d s warm-up" % args.warmup if args.warmup else "", pinning, args.rounds,
           os.cpu_count()),
        "",
        "| loop | handler | C++ req/s | Python req/s | C++/Python: median of the rounds' "
        "ratios | C++/Python per round | C++ p50 / p99 ms | Python p50 / p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (loop, handler), rounds in wrk.items():
        rate = {s: median(r[s]["rate"] for r in rounds) for s in SERVERS}
        p50 = {s: median(r[s]["p50"] for r in rounds) for s in SERVERS}
        p99 = {s: median(r[s]["p99"] for r in rounds) for s in SERVERS}
        ratios = [r["C++"]["rate"] / r["Python"]["rate"] for r in rounds]
        lines.append("| %s | `%s` | %.0f | %.0f | **%.2f×** | %s | %.2f / %.2f | %.2f / %.2f |"
                     % (loop, handler, rate["C++"], rate["Python"], median(ratios),
                        ", ".join("%.2f" % x for x in ratios), p50["C++"], p99["C++"],
                        p50["Python"], p99["Python"]))
    lines += [
        "",
        "CPU time per request in the demo's process during those wrk runs (median over the "
        "rounds; from /proc): on the event loop's thread, which holds the GIL, and in the whole "
        "process (the loop's thread and the runtime's). wrk's own CPU is not counted.",
        "",
        "| loop | handler | C++ server: loop thread µs | C++ server: whole process µs | "
        "Python server: loop thread µs | Python server: whole process µs |",
        "|---|---|---|---|---|---|",
    ]
    for (loop, handler), rounds in wrk.items():
        lines.append("| %s | `%s` | %s |" % (loop, handler, " | ".join(
            "%.1f" % median(r[s][k] for r in rounds)
            for s in SERVERS for k in ("loop_us", "process_us"))))
    errors = ["%s, `%s`, %s server, round %d: %s" % (loop, handler, s, i + 1, r[s]["errors"])
              for (loop, handler), rounds in wrk.items() for i, r in enumerate(rounds)
              for s in SERVERS if r[s]["errors"]]
    lines += ["", "wrk's socket errors: " + "; ".join(errors) + "." if errors else
              "wrk reported no socket errors and no status other than 200."]
    if builtin:
        results, commands = builtin
        lines += [
            "",
            "The demo's built-in load generator, in the same session (`%s`: %s requests "
            "per run over 64 keep-alive connections; one run each):"
            % ("`, `".join(shlex.join([os.path.relpath(c[0], ROOT)] + c[1:]) for c in commands),
               500 if args.smoke else 20000),
            "",
            "| loop | handler | C++ req/s | Python req/s | C++/Python | C++ p50 / p99 ms | "
            "Python p50 / p99 ms |",
            "|---|---|---|---|---|---|---|",
        ]
        for (loop, handler), r in results.items():
            lines.append("| %s | `%s` | %.0f | %.0f | **%.2f×** | %.2f / %.2f | %.2f / %.2f |"
                         % (loop, handler, r["C++"]["rate"], r["Python"]["rate"],
                            r["C++"]["rate"] / r["Python"]["rate"], r["C++"]["p50"],
                            r["C++"]["p99"], r["Python"]["p50"], r["Python"]["p99"]))
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--demo", default=os.path.join(ROOT, "build/demo/demo/http_demo"),
                   help="the built http_demo (default: ./scripts/demo's build)")
    p.add_argument("--duration", type=int, default=10, help="seconds of each wrk run (10)")
    p.add_argument("--warmup", type=int, default=2,
                   help="seconds of the untimed wrk run before each (2; 0: none)")
    p.add_argument("--connections", type=int, default=64, help="wrk's connections (64)")
    p.add_argument("--wrk-threads", type=int, default=2, help="wrk's threads (2)")
    p.add_argument("--rounds", type=int, default=5, help="rounds, for the medians (5)")
    p.add_argument("--pin-wrk", type=int, metavar="CPU", help="run wrk on this CPU (taskset)")
    p.add_argument("--runtime-threads", type=int, help="http_demo --threads (its default)")
    p.add_argument("--loops", default="asyncio,uvloop", help="asyncio,uvloop")
    p.add_argument("--no-builtin", action="store_true",
                   help="skip the demo's own measuring runs")
    p.add_argument("--write", metavar="PAGE", help="replace this script's section of PAGE")
    p.add_argument("--smoke", action="store_true", help="one brief round: checks that it runs")
    args = p.parse_args()
    if args.smoke:
        args.duration, args.warmup, args.rounds = 1, 0, 1
    # the command as it ran, for the report (paths in this checkout relative to it)
    args.argv = [a[len(ROOT) + 1:] if a.startswith(ROOT + os.sep) else a for a in sys.argv[1:]]
    args.loops = [x for x in args.loops.split(",") if x]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    if not os.access(args.demo, os.X_OK):
        raise SystemExit("%s is not a built http_demo: build it (./scripts/demo builds "
                         "build/demo/demo/http_demo) or give --demo" % args.demo)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    load_before = os.getloadavg()[0]
    wrk, runtime_threads = measure_wrk(args)
    builtin = None if args.no_builtin else measure_builtin(args)
    text = report(args, wrk, runtime_threads, builtin, started, load_before)
    print()
    print(text)
    if args.write:
        write_section(args.write, text, BEGIN, END)


if __name__ == "__main__":
    main()
