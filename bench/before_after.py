# SPDX-License-Identifier: BSL-1.0
"""Two builds of pyasio_bench side by side: bench/future_into_py.py's workloads, before and after.

Each round runs bench/future_into_py.py once (--repeat 1, no memory figures) with each build's
module, each in a fresh interpreter, the two in turn (which goes first alternates from round to
round), so that the host's slow moments hit both builds. Prints, per loop, each workload's
median (fastest–slowest) over the rounds for each build and the ratio of the medians. The
pure-Python floors (py_*, trio_*) do not use the module: their ratio is the noise between the two
columns.

Usage (after building the CMake target pyasio_bench in both trees):
  python3 bench/before_after.py --before OLD/bench --after NEW/bench [--rounds 7] \\
      [--loops asyncio uvloop] [--n 20000]
--smoke: one round, tiny counts (the test command runs it with the same build twice).
"""
import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def one_run(args, module_dir, path):
    command = [sys.executable, os.path.join(HERE, "future_into_py.py"), "--module-dir",
               module_dir, "--n", str(args.n), "--repeat", "1", "--inflight", "0",
               "--json", path]
    if args.loops:
        command += ["--loops", *args.loops]
    if args.smoke:
        command.append("--smoke")
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    with open(path) as f:
        return json.load(f)


def spread(samples):
    return "%.2f (%.2f–%.2f)" % (statistics.median(samples), min(samples), max(samples))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True, help="directory holding the first pyasio_bench")
    p.add_argument("--after", required=True, help="directory holding the second pyasio_bench")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--n", type=int, default=20_000, help="operations per workload")
    p.add_argument("--loops", nargs="+", help="passed to future_into_py.py (default: asyncio, "
                   "uvloop where installed; the before build may predate trio)")
    p.add_argument("--smoke", action="store_true", help="one round, tiny counts")
    args = p.parse_args()
    if args.smoke:
        args.rounds = 1
    if args.loops is None:
        args.loops = ["asyncio"]
        if importlib.util.find_spec("uvloop") is None:
            print("uvloop: not installed, skipped (Debian: apt-get install python3-uvloop)")
        else:
            args.loops.append("uvloop")
    builds = {"before": args.before, "after": args.after}
    samples = {}  # (build, loop, workload) -> [µs per op, one per round]
    modules = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            order = ["before", "after"] if i % 2 == 0 else ["after", "before"]
            for build in order:
                out = one_run(args, builds[build], os.path.join(tmp, build + ".json"))
                modules[build] = out["module"]
                for loop, row in out["results"].items():
                    for workload, s in row.items():
                        if isinstance(s, dict):
                            samples.setdefault((build, loop, workload), []).extend(s["samples"])
            print("round %d of %d done" % (i + 1, args.rounds), file=sys.stderr)
    if modules["before"] == modules["after"] and not args.smoke:
        print("note: both columns measured the same module file, %s" % modules["before"])
    print("before: %s\nafter: %s\n%s; %d operations per workload, median of %d rounds "
          "(fastest–slowest), µs per operation\n"
          % (modules["before"], modules["after"], out["machine"], out["n"], args.rounds))
    for loop in args.loops:
        workloads = [w for (b, lp, w) in samples if b == "before" and lp == loop]
        print("### %s\n\n| workload | before, µs | after, µs | after ÷ before |" % loop)
        print("|---|---|---|---|")
        for w in workloads:
            before, after = samples[("before", loop, w)], samples[("after", loop, w)]
            print("| `%s` | %s | %s | %.2f |" % (w, spread(before), spread(after),
                                                statistics.median(after)
                                                / statistics.median(before)))
        print()


if __name__ == "__main__":
    main()
