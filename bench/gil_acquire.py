# SPDX-License-Identifier: BSL-1.0
"""GIL acquire/release on a worker thread, for every CPython here (drives bench/gil_acquire.cpp).

bench/gil_acquire.cpp times PAIRS `pyasio::gil_acquire` scopes (a PyGILState_Ensure/Release
pair) on a std::thread while the main thread idles without the GIL, in two modes: a new thread
state per acquire (a plain thread), and a persistent thread state (pyasio::persistent_thread_state),
REPEATS times each, and prints the median ns per pair with the fastest and slowest run. This
script builds it with g++ (`-std=c++20 -O2 -DNDEBUG -DPYASIO_NO_DEBUG`) against each interpreter
found, the system /usr/bin/python3 and each pyenv interpreter 3.8 or later
($PYENV_ROOT/versions/3.N.*, one per directory), with the include directory and libpython that
the interpreter's own sysconfig names; two compiles at a time, then runs the builds one at a
time, and writes one table row per interpreter.

Usage:
  python3 bench/gil_acquire.py [--pairs 1000000] [--repeat 5] [--write docs/benchmarks.md]
                               [--plots docs/img]
--plots DIR writes DIR/bench-gil-acquire.png (needs matplotlib, Debian: python3-matplotlib).
--smoke measures the system Python only, 1000 pairs once, and checks that the figures are
positive.
"""

import argparse
import concurrent.futures
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from future_into_py import error_bars, machine, publish, pyplot, save  # noqa: E402

BEGIN = "<!-- bench/gil_acquire.py: begin -->"
END = "<!-- bench/gil_acquire.py: end -->"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "bench", "gil_acquire.cpp")
SYSTEM_PYTHON = "/usr/bin/python3"
FLAGS = ["-std=c++20", "-O2", "-DNDEBUG", "-DPYASIO_NO_DEBUG", "-pthread"]
MODES = [("fresh", "new thread state per acquire"), ("kept", "persistent thread state")]

# What the interpreter tells about itself: its version and how to build against it.
QUERY = """
import json, platform, sysconfig
v = sysconfig.get_config_var
print(json.dumps({"version": platform.python_version(),
                  "include": sysconfig.get_paths()["include"],
                  "libdir": v("LIBDIR"), "libpl": v("LIBPL"), "ldlibrary": v("LDLIBRARY"),
                  "libs": v("LIBS") or "", "syslibs": v("SYSLIBS") or ""}))
"""


def interpreters(pyenv_root, smoke):
    """[(label, python executable, its sysconfig)], sorted by version."""
    if os.path.exists(SYSTEM_PYTHON):
        found = [("Debian's `python3`", SYSTEM_PYTHON)]
    else:  # not Debian: the interpreter running this script stands in for the system one
        found = [("`%s`" % sys.executable, sys.executable)]
    if not smoke:
        for directory in sorted(glob.glob(os.path.join(pyenv_root, "versions", "3.*"))):
            m = re.match(r"3\.(\d+)\.", os.path.basename(directory) + ".")
            python = os.path.join(directory, "bin", "python3")
            if m and int(m.group(1)) >= 8 and os.path.exists(python):
                found.append(("pyenv", python))
    result = []
    for kind, python in found:
        config = json.loads(subprocess.run([python, "-c", QUERY], check=True,
                                           capture_output=True, text=True).stdout)
        result.append(("%s (%s)" % (config["version"], kind), python, config))

    def by_version(row):  # the system interpreter first among equal versions
        numbers = tuple(int(x) for x in re.findall(r"\d+", row[2]["version"])[:3])
        return numbers, row[1] != found[0][1]

    return sorted(result, key=by_version)


def link_flags(config):
    """Links libpython: the shared one with an rpath to it, or else the static archive."""
    library = config["ldlibrary"]
    if ".so" in library:
        name = re.sub(r"^lib|\.so.*$", "", library)
        flags = ["-L" + config["libdir"], "-l" + name, "-Wl,-rpath," + config["libdir"]]
    else:
        archive = next((os.path.join(d, library) for d in (config["libpl"], config["libdir"])
                        if d and os.path.exists(os.path.join(d, library))), None)
        if archive is None:
            raise SystemExit("%s not found in LIBPL or LIBDIR" % library)
        flags = [archive, "-Wl,--export-dynamic"]
    return flags + config["libs"].split() + config["syslibs"].split()


def build(python_config, out):
    command = (["g++"] + FLAGS + ["-I" + os.path.join(ROOT, "include"),
                                  "-I" + python_config["include"], SOURCE, "-o", out]
               + link_flags(python_config))
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit("build failed (exit status %d): %s"
                         % (done.returncode, " ".join(command)))
    return out


def parse(output):
    """{mode: (median, min, max)} from bench_gil_acquire's output."""
    result = {}
    for mode, text in MODES:
        m = re.search(re.escape(text) + r":\s*([\d.]+) ns/pair \(min ([\d.]+), max ([\d.]+)\)",
                      output)
        if m is None:
            raise SystemExit("no '%s' line in the output:\n%s" % (text, output))
        result[mode] = tuple(float(x) for x in m.groups())
    return result


def measure(args, found):
    """{label: {mode: (median, min, max)}}, in the order of found."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="pyasio-gil-acquire-") as tmp:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            builds = [pool.submit(build, config, os.path.join(tmp, "bench_gil_acquire-%d" % i))
                      for i, (_, _, config) in enumerate(found)]
            programs = [b.result() for b in builds]
        # Every build is done before the first measurement: nothing else runs beside it.
        for (label, _, _), program in zip(found, programs):
            done = subprocess.run([program, str(args.pairs), str(args.repeat)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit("%s failed (exit status %d):\n%s%s" % (
                    program, done.returncode, done.stdout, done.stderr))
            results[label] = parse(done.stdout)
    return results


def report(args, results):
    lines = [
        "Measured by `bench/gil_acquire.py` on %s; `bench/gil_acquire.cpp` built with "
        "`g++ %s` against each interpreter; %d acquire/release pairs per run, median of %d "
        "runs, fastest and slowest in brackets."
        % (machine(), " ".join(FLAGS[:4]), args.pairs, args.repeat), "",
        "| Python | new thread state per acquire, ns/pair (min–max) "
        "| persistent thread state, ns/pair (min–max) | speed-up |",
        "|---|---|---|---|"]
    for label, row in results.items():
        cells = ["%.1f (%.1f–%.1f)" % row[mode] for mode, _ in MODES]
        lines.append("| %s | %s | %s | %.1f× |"
                     % (label, cells[0], cells[1], row["fresh"][0] / row["kept"][0]))
    lines.append("")
    return "\n".join(lines)


def plot(directory, results):
    """Writes directory/bench-gil-acquire.png; returns its path (None without matplotlib)."""
    plt = pyplot()
    if plt is None:
        return None
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "bench-gil-acquire.png")
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    labels = list(results)
    width = 0.4
    for i, (mode, text) in enumerate(MODES):
        xs = [x + (i - 0.5) * width for x in range(len(labels))]
        rows = [results[label][mode] for label in labels]
        ax.bar(xs, [r[0] for r in rows], width, label=text,
               yerr=error_bars(rows), capsize=3)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels([label.replace("`", "").replace(" (", "\n(") for label in labels],
                       fontsize="small")
    ax.set_ylabel("ns per acquire/release pair")
    ax.set_title("GIL acquire/release on a worker thread (median; bars: fastest to slowest)")
    ax.legend(fontsize="small")
    save(plt, fig, path)
    return path


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=1_000_000, help="acquire/release pairs per run")
    p.add_argument("--repeat", type=int, default=5, help="runs of each mode")
    p.add_argument("--pyenv-root", default=os.environ.get(
        "PYENV_ROOT", os.path.join(os.path.expanduser("~"), ".pyenv")),
        help="where the pyenv interpreters are (default: %(default)s)")
    p.add_argument("--write", metavar="PAGE", help="replace this script's section of PAGE")
    p.add_argument("--plots", metavar="DIR", help="write DIR/bench-gil-acquire.png")
    p.add_argument("--smoke", action="store_true",
                   help="the system Python only, 1000 pairs once; figures checked")
    args = p.parse_args()
    if args.smoke:
        args.pairs, args.repeat = 1000, 1
    start = time.perf_counter()
    results = measure(args, interpreters(args.pyenv_root, args.smoke))
    if args.smoke:
        for label, row in results.items():
            if not all(v > 0 for mode, _ in MODES for v in row[mode]):
                raise SystemExit("no positive figures for %s: %r" % (label, row))
    publish(args, report(args, results), BEGIN, END, start,
            lambda directory: plot(directory, results))


if __name__ == "__main__":
    main()
