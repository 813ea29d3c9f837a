# SPDX-License-Identifier: BSL-1.0
"""Instructions per operation of bench/future_into_py.py's workloads, counted by callgrind.

Time per operation drifts with a shared host; instruction counts do not. For each loop, module
and workload (bench/future_into_py.py's own functions, so both measure the same code), runs the
workload N times and 0 times under `valgrind --tool=callgrind --separate-threads=yes` and prints
(I(N) - I(0)) / N for the loop's thread and for every other thread together (the runtime's, or
the pure-Python floor's worker), beside the pure-Python floors counted the same way. Usage
(after building the CMake target pyasio_bench and, on 3.12+, pyasio_bench_abi3):

  python3 bench/instructions.py --module-dir BUILD/bench [--loops asyncio uvloop]
      [--modules pyasio_bench ...] [--workloads ...] [--keep DIR]

--keep DIR keeps callgrind's files (DIR/<loop>-<module>-<workload>-<n>.out-NN, one per thread)
for callgrind_annotate. --smoke: one workload, a few operations (used by the test command where
valgrind is installed).
"""
import argparse
import glob
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import future_into_py as fip  # noqa: E402  (the workloads themselves)

WORKLOADS = ["seq_noop", "gather_noop", "seq_echo", "await_seq", "await_concurrent",
             "await_seq_local", "await_concurrent_local"]
FLOORS = ["py_soon_gather", "py_threadsafe_seq", "py_seq_task", "py_gather_tasks"]
LOOPS = ["asyncio", "uvloop"]


async def workload(m, kind, n):
    # NOTE: a warm-up, also in the run of 0: the caches, the runtime's threads and the bridge
    # exist; and each workload once with a few operations, so that its own first-use costs
    # (imports, a worker thread's start) are counted in both runs
    await m.noop()
    await m.await_seq(fip.py_noop, 1)
    await m.await_seq_local(fip.py_noop, 1)
    await getattr(fip, kind)(m, 4)
    if n > 0:
        await getattr(fip, kind)(m, n)


def run(loop_name, module, kind, n):
    fip.run_on(fip.loop_factories()[loop_name],
               workload(importlib.import_module(module), kind, n))


def count(args, loop_name, module, kind, n):
    """(instructions on the loop's thread, on every other thread) of one run."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(args.keep or tmp, "%s-%s-%s-%d.out" % (loop_name, module, kind, n))
        for old in glob.glob(out + "*"):
            os.remove(old)
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--separate-threads=yes",
             "--callgrind-out-file=" + out, sys.executable, __file__, "--module-dir",
             args.module_dir, "--run", loop_name, module, kind, str(n)],
            capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit("the run under callgrind failed:\n" + done.stderr[-4000:])
        threads = {}
        for path in glob.glob(out + "-*"):
            with open(path) as f:
                m = re.search(r"^summary: (\d+)", f.read(), re.M)
            if not m:
                raise SystemExit("callgrind wrote no count in " + path)
            threads[int(path.rsplit("-", 1)[1])] = int(m.group(1))
        if 1 not in threads:
            raise SystemExit("callgrind wrote no file for the main thread:\n" + done.stderr)
    return threads.pop(1), sum(threads.values())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--module-dir", required=True)
    p.add_argument("--modules", nargs="+", default=["pyasio_bench"])
    p.add_argument("--loops", nargs="+", default=["asyncio", "uvloop"], choices=LOOPS)
    p.add_argument("--workloads", nargs="+", default=WORKLOADS + FLOORS)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--keep", help="a directory for callgrind's files")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--run", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    sys.path.insert(0, args.module_dir)
    if args.run:
        loop_name, module, kind, n = args.run
        run(loop_name, module, kind, int(n))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    loops = [name for name in args.loops
             if name != "uvloop" or importlib.util.find_spec("uvloop") is not None]
    for skipped in set(args.loops) - set(loops):
        print("%s: not installed, skipped" % skipped)
    workloads = args.workloads
    if args.smoke:
        args.n, loops, workloads = 20, ["asyncio"], ["seq_noop"]
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    print("Instructions per operation, (I(%d) - I(0)) / %d, counted by callgrind; Python %s. "
          "\"loop\": the loop's thread; \"others\": every other thread (the runtime's, or a "
          "floor's worker thread)." % (args.n, args.n, sys.version.split()[0]))
    for loop_name in loops:
        print("\n%s\n\n| workload | " % loop_name +
              " | ".join("`%s` loop | others" % m for m in args.modules) + " |")
        print("|---|" + "---|---|" * len(args.modules))
        for kind in workloads:
            modules = args.modules if not kind.startswith("py_") else args.modules[:1]
            cells = []
            for module in modules:
                base = count(args, loop_name, module, kind, 0)
                full = count(args, loop_name, module, kind, args.n)
                per_op = [(f - b) / args.n for f, b in zip(full, base)]
                if per_op[0] <= 0:
                    raise SystemExit("%s counted no instructions on the loop's thread: the "
                                     "measurement is wrong" % kind)
                cells += ["{:,.0f}".format(v) for v in per_op]
            print("| `%s` | %s |" % (kind, " | ".join(cells)), flush=True)


if __name__ == "__main__":
    main()
