# SPDX-License-Identifier: BSL-1.0
"""Instructions per operation of bench/future_into_py.py's pyasio workloads, counted by callgrind.

Time per operation drifts with a shared host; instruction counts do not. For each module and
workload, runs the workload N times and 0 times under `valgrind --tool=callgrind` (all threads:
the loop's and the runtime's) and prints (I(N) - I(0)) / N, with the ratio of each module to the
first. Usage (after building the modules, e.g. the CMake targets pyasio_bench and, on 3.12+,
pyasio_bench_abi3):

  python3 bench/instructions.py --module-dir BUILD/bench [--modules pyasio_bench pyasio_bench_abi3]

--smoke: one workload, a few operations (used by the test command where valgrind is installed).
"""
import argparse
import asyncio
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

WORKLOADS = ["seq_noop", "gather_noop", "seq_echo", "await_seq", "await_concurrent",
             "await_seq_local", "await_concurrent_local"]


async def py_noop():
    return None


async def workload(m, kind, n):
    # NOTE: a warm-up, also in the run of 0: the caches, the runtime's threads and the bridge exist
    await m.noop()
    await m.await_seq(py_noop, 1)
    await m.await_seq_local(py_noop, 1)
    if n == 0:
        return
    if kind == "seq_noop":
        for _ in range(n):
            await m.noop()
    elif kind == "seq_echo":
        for i in range(n):
            await m.echo(i)
    elif kind == "gather_noop":
        await asyncio.gather(*(m.noop() for _ in range(n)))
    else:
        assert await getattr(m, kind)(py_noop, n) == n


def count(args, module, kind, n):
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + os.path.join(tmp, "out"),
             sys.executable, __file__, "--module-dir", args.module_dir, "--run", module, kind,
             str(n)], check=True, capture_output=True, text=True).stderr
    m = re.search(r"Collected : (\d+)", out)
    if not m:
        raise SystemExit("callgrind printed no count:\n" + out)
    return int(m.group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--module-dir", required=True)
    p.add_argument("--modules", nargs="+", default=["pyasio_bench"])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--run", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    sys.path.insert(0, args.module_dir)
    if args.run:
        module, kind, n = args.run
        asyncio.run(workload(importlib.import_module(module), kind, int(n)))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    workloads = WORKLOADS
    if args.smoke:
        args.n, workloads = 20, ["seq_noop"]
    rows = {}
    for module in args.modules:
        base = count(args, module, "seq_noop", 0)
        rows[module] = {k: (count(args, module, k, args.n) - base) / args.n for k in workloads}
    first = args.modules[0]
    print("instructions per operation, all threads, (I(%d) - I(0)) / %d, Python %s"
          % (args.n, args.n, sys.version.split()[0]))
    print("| workload | " + " | ".join("`%s`" % m for m in args.modules) +
          "".join(" | %s ÷ %s" % (m, first) for m in args.modules[1:]) + " |")
    print("|---|" + "---|" * (2 * len(args.modules) - 1))
    for k in workloads:
        cells = ["{:,.0f}".format(rows[m][k]) for m in args.modules]
        cells += ["%.3f" % (rows[m][k] / rows[first][k]) for m in args.modules[1:]]
        print("| `%s` | %s |" % (k, " | ".join(cells)))
        if rows[first][k] <= 0:
            raise SystemExit("a workload counted no instructions: the measurement is wrong")


if __name__ == "__main__":
    main()
