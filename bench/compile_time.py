# SPDX-License-Identifier: BSL-1.0
"""Compile time: what including pyasio.hpp costs a translation unit, against Asio and Python alone.

Compiles, with `-std=c++20 -fPIC -c`, the project's include/ and the system Python's include
directory, these translation units (written from strings below into a temporary directory):
  asio_python    <Python.h> and <asio.hpp>, and a trivial exported function: the baseline
  pyasio         <pyasio.hpp> and the same function: the cost of the headers alone
  pyasio_used    <pyasio.hpp>, the same function and a small real use: an entry point that
                 returns future_into_py of an asio::awaitable<long> coroutine that co_awaits
                 into_future<long>(its argument): what the templates cost once instantiated
  pybind11_asio  <pybind11/pybind11.h> and <asio.hpp>, and the same function: what a
                 hand-rolled pybind11 bridge starts from (only where pybind11 is installed,
                 Debian: pybind11-dev)
with g++ -O2, clang++ -O2 (where installed) and g++ -O0 -g (the edit-compile loop). Each compile
runs R times, interleaved across translation units so that a slow moment hits every one; the
script records the wall seconds of each run and the compiler's peak resident set (ru_maxrss of
the compiler driver as returned by wait4, which covers the cc1plus it waited for). A compile
that fails stops the script with the compiler's messages.

Usage:
  python3 bench/compile_time.py [--repeat R] [--write docs/benchmarks.md] [--plots docs/img]
--plots DIR writes DIR/bench-compile-time.png (needs matplotlib, Debian: python3-matplotlib).
--smoke compiles asio_python and pyasio once with g++ -O2 and checks that the figures are
positive.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from future_into_py import error_bars, machine, publish, pyplot, save  # noqa: E402

BEGIN = "<!-- bench/compile_time.py: begin -->"
END = "<!-- bench/compile_time.py: end -->"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = "asio_python"

TRIVIAL = """
// Something to emit: a C entry point that returns its argument.
extern "C" PyObject* compile_time_identity(PyObject*, PyObject* arg) {
    Py_INCREF(arg);
    return arg;
}
"""

USED = """
// A small real use: Python awaits C++ work on the runtime that awaits a Python awaitable.
// (Not extern "C": g++ 12 emits a coroutine lambda nested in a lambda of an extern "C"
// function twice under one name, and the assembler rejects it.)
PyObject* compile_time_await(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        return pyasio::future_into_py(
            [aw = pyasio::borrow(arg)]() mutable -> asio::awaitable<long> {
                long value = co_await pyasio::into_future<long>(std::move(aw));
                co_return value + 1;
            });
    });
}
"""

UNITS = {  # name: source; the order is the table's
    "asio_python": "#include <Python.h>\n#include <asio.hpp>\n" + TRIVIAL,
    "pyasio": "#include <pyasio.hpp>\n" + TRIVIAL,
    "pyasio_used": "#include <pyasio.hpp>\n\n#include <utility>\n" + TRIVIAL + USED,
    "pybind11_asio": "#include <pybind11/pybind11.h>\n#include <asio.hpp>\n" + TRIVIAL,
}
PYBIND11_HEADER = "/usr/include/pybind11/pybind11.h"


def system_python():
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def python_include(python):
    """The include directory of the interpreter python, from its own sysconfig."""
    return subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"],
        check=True, capture_output=True, text=True).stdout.strip()


def version(compiler):
    out = subprocess.run([compiler, "--version"], check=True, capture_output=True, text=True)
    return out.stdout.splitlines()[0].strip()


def configurations(smoke):
    """(compiler, label of the flags, flags) to compile with."""
    configs = [("g++", "-O2", ["-O2"])]
    if not smoke:
        if shutil.which("clang++"):
            configs.append(("clang++", "-O2", ["-O2"]))
        else:
            print("clang++: not installed, skipped")
        configs.append(("g++", "-O0 -g", ["-O0", "-g"]))
    return configs


def units(smoke):
    names = ["asio_python", "pyasio"]
    if not smoke:
        names.append("pyasio_used")
        if os.path.exists(PYBIND11_HEADER):
            names.append("pybind11_asio")
        else:
            print("pybind11: not installed, pybind11_asio skipped (Debian: apt-get install "
                  "pybind11-dev)")
    return names


def exit_code(status):
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return -os.WTERMSIG(status)


def compile_once(command):
    """Runs one compile: (wall seconds, peak resident set of the compiler in KiB).

    wait4 returns the resource usage of the child including that of the descendants it waited
    for, so ru_maxrss is the largest of the driver (g++, clang++) and the programs it ran: the
    compiler proper's (g++'s cc1plus), in practice."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    messages = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.stderr.close()
    proc.returncode = exit_code(status)  # reaped here: Popen must not wait for it again
    if proc.returncode != 0:
        sys.stderr.write(messages.decode(errors="replace"))
        raise SystemExit("compile failed (exit status %d): %s"
                         % (proc.returncode, " ".join(command)))
    return seconds, usage.ru_maxrss


def measure(args, configs, names, includes):
    """{(compiler, flags label, unit): [(seconds, KiB), ...]}"""
    samples = {(c, label, n): [] for c, label, _ in configs for n in names}
    with tempfile.TemporaryDirectory(prefix="pyasio-compile-time-") as tmp:
        commands = {}
        for name in names:
            source = os.path.join(tmp, name + ".cpp")
            with open(source, "w") as f:
                f.write("// SPDX-License-Identifier: BSL-1.0\n" + UNITS[name])
            for compiler, label, flags in configs:
                obj = os.path.join(tmp, "%s-%s%s.o" % (name, compiler, label.replace(" ", "")))
                commands[(compiler, label, name)] = (
                    [compiler, "-std=c++20"] + flags + ["-fPIC", "-c"]
                    + ["-I" + d for d in includes] + [source, "-o", obj])
        # Untimed: each compiler preprocesses each unit once, so that every header is in the
        # page cache before the first timed run (and a missing header stops the script early).
        for compiler in sorted({c for c, _, _ in configs}):
            for name in names:
                compile_once([compiler, "-std=c++20", "-E"] + ["-I" + d for d in includes]
                             + [os.path.join(tmp, name + ".cpp"), "-o", os.devnull])
        for _ in range(args.repeat):  # interleaved, so that a slow moment hits every unit
            for compiler, label, _ in configs:
                for name in names:
                    key = (compiler, label, name)
                    samples[key].append(compile_once(commands[key]))
    return samples


def summarize(runs):
    seconds = [s for s, _ in runs]
    return {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds),
            "mb": max(k for _, k in runs) * 1024 / 1e6}


def report(args, configs, names, results):
    compilers = []
    for compiler, _, _ in configs:
        if compiler not in compilers:
            compilers.append(compiler)
    lines = [
        "Measured by `bench/compile_time.py` on %s; one translation unit compiled with "
        "`-std=c++20 -fPIC -c`, the flags below and the include directories of pyasio and of "
        "Python %s; %s; wall seconds, median of %d runs (interleaved), fastest and slowest in "
        "brackets; peak memory is the compiler's largest resident set over the runs."
        % (machine(), args.python_version,
           "; ".join("`%s`: %s" % (c, version(c)) for c in compilers), args.repeat), "",
        "| translation unit | compiler, flags | seconds, median (min–max) | peak memory, MB "
        "| vs `%s` |" % BASELINE,
        "|---|---|---|---|---|"]
    for compiler, label, _ in configs:
        base = results[(compiler, label, BASELINE)]["median"]
        for name in names:
            s = results[(compiler, label, name)]
            lines.append("| `%s` | %s %s | %.2f (%.2f–%.2f) | %.0f | %.2f× |"
                         % (name, compiler, label, s["median"], s["min"], s["max"], s["mb"],
                            s["median"] / base))
    lines.append("")
    return "\n".join(lines)


def plot(directory, configs, names, results):
    """Writes directory/bench-compile-time.png; returns its path (None without matplotlib)."""
    plt = pyplot()
    if plt is None:
        return None
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "bench-compile-time.png")
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    group_ticks, group_labels = [], []
    for g, (compiler, label, _) in enumerate(configs):
        top = g * (len(names) + 1)  # a blank row between groups
        for i, name in enumerate(names):
            s = results[(compiler, label, name)]
            ax.barh(top + i, s["median"], color=colors[i % len(colors)],
                    xerr=error_bars([(s["median"], s["min"], s["max"])]), capsize=3,
                    label=name if g == 0 else None)
        group_ticks.append(top + (len(names) - 1) / 2)
        group_labels.append("%s %s" % (compiler, label))
    ax.set_yticks(group_ticks)
    ax.set_yticklabels(group_labels)
    ax.invert_yaxis()
    ax.set_xlabel("seconds (median; bars: fastest to slowest run)")
    ax.set_title("Compile time of one translation unit")
    ax.legend(loc="lower right", fontsize="small")
    save(plt, fig, path)
    return path


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="runs of each compile")
    p.add_argument("--python", default=system_python(),
                   help="the interpreter whose include directory is used (default: %(default)s)")
    p.add_argument("--write", metavar="PAGE", help="replace this script's section of PAGE")
    p.add_argument("--plots", metavar="DIR", help="write DIR/bench-compile-time.png")
    p.add_argument("--smoke", action="store_true",
                   help="one run, g++ -O2, asio_python and pyasio only; figures checked")
    args = p.parse_args()
    if args.smoke:
        args.repeat = 1
    start = time.perf_counter()
    args.python_version = subprocess.run(
        [args.python, "-c", "import platform; print(platform.python_version())"],
        check=True, capture_output=True, text=True).stdout.strip()
    includes = [os.path.join(ROOT, "include"), python_include(args.python)]
    configs = configurations(args.smoke)
    names = units(args.smoke)
    results = {k: summarize(v) for k, v in measure(args, configs, names, includes).items()}
    if args.smoke:
        for key, s in results.items():
            if not (s["min"] > 0 and s["mb"] > 0):
                raise SystemExit("no positive figures for %s: %r" % (" ".join(key), s))
    publish(args, report(args, configs, names, results), BEGIN, END, start,
            lambda directory: plot(directory, configs, names, results))


if __name__ == "__main__":
    main()
