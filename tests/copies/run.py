#!/usr/bin/env python3
# SPDX-License-Identifier: BSL-1.0
"""Many vendored copies of pyasio in one process (docs/foundation.md, "Many copies in one
process"). Builds one extension module (copy_ext.cpp) four times, as four users would, each
vendoring pyasio's include/ and built with a plain compiler line:

    copy_gcc_o1      g++ -O1, no visibility flag (a plain `g++ -shared` line)
    copy_gcc_ndebug  g++ -O2 -DNDEBUG -fvisibility=hidden (what setuptools does, plus the flag)
    copy_clang_o2    clang++ -O2, no visibility flag
    copy_old         g++ -O2 -fvisibility=hidden, from a copy of include/ whose version is 0.0.9

then imports them into one interpreter in several orders, each time running every module's
operations concurrently on one loop, a second loop and uvloop (scenario.py); runs an embedding
program with its own copy that imports them too; and checks with the dynamic linker's own report
(LD_DEBUG=bindings) that no symbol of pyasio's or Asio's binds from one copy to another.

    run.py [--python PYTHON] [--build-dir DIR]

Exits non-zero on any failure. Uses ccache when it is installed.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def python_flags(python):
    code = ("import sysconfig, sys; v = sysconfig.get_config_var; "
            "print(sysconfig.get_paths()['include']); print(v('EXT_SUFFIX')); "
            "print(v('LIBDIR')); print(v('LDLIBRARY')); print(v('VERSION') + (v('ABIFLAGS') or ''))")
    inc, suffix, libdir, ldlib, ver = subprocess.check_output([python, "-c", code], text=True).split("\n")[:5]
    return inc, suffix, libdir, ver


def compile_line(cxx, out, include, py_include, extra, shared=True):
    launcher = [shutil.which("ccache")] if shutil.which("ccache") else []
    cmd = launcher + [cxx, "-std=c++20", "-Wall", "-Wextra", "-Werror", "-I" + include, "-I" + py_include]
    cmd += ["-fPIC", "-shared"] if shared else []
    return cmd + extra + ["-o", out]


def run(cmd, **kw):
    print("$ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    print(r.stdout, end="", flush=True)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}")
    return r.stdout


def old_version_include(build):
    """A copy of include/ that says it is pyasio 0.0.9: another vendored version."""
    dst = os.path.join(build, "old-include")
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(os.path.join(ROOT, "include"), dst)
    config = os.path.join(dst, "pyasio", "config.hpp")
    text = open(config).read()
    text = re.sub(r"#define PYASIO_VERSION_MINOR \d+", "#define PYASIO_VERSION_MINOR 0", text)
    text = re.sub(r"#define PYASIO_VERSION_PATCH \d+", "#define PYASIO_VERSION_PATCH 9", text)
    open(config, "w").write(text)
    return dst


# A symbol of the C++ standard library (mangled: std:: is St, or one of its abbreviations Sa Sb
# Ss Si So Sd; libstdc++'s __gnu_cxx; the global operator new and delete), possibly a vtable,
# typeinfo, guard variable or local static of one. libstdc++ gives its templates default
# visibility explicitly, so their instances over a pyasio type are exported whatever pyasio does;
# two copies of the same version share such an instance, whose code is the same source in both.
BUILTIN_TYPEINFO = re.compile(r"^_ZT[IS]P?K?[a-z]$")
STD_SYMBOL = re.compile(r"^_Z(?:T[VIS]|GV)?Z?N?[rVKRO]*(?:S[tabsiod]|9__gnu_cxx)|^_Z(?:nw|na|dl|da)")


def demangle(sym):
    return subprocess.run(["c++filt", sym], capture_output=True, text=True).stdout.strip()


def check_bindings(log_prefix, files):
    """No symbol other than the standard library's binds from one of `files` to another."""
    names = {os.path.realpath(f) for f in files}
    bad, shared_std = [], set()
    pattern = re.compile(r"binding file (\S+) \[\d+\] to (\S+) \[\d+\]: normal symbol `([^']+)'")
    logs = [f for f in os.listdir(os.path.dirname(log_prefix))
            if f.startswith(os.path.basename(log_prefix) + ".")]
    if not logs:
        raise SystemExit("LD_DEBUG wrote no log")
    for log in logs:
        for line in open(os.path.join(os.path.dirname(log_prefix), log), errors="replace"):
            m = pattern.search(line)
            if not m:
                continue
            src, dst, sym = (os.path.realpath(m.group(1)), os.path.realpath(m.group(2)), m.group(3))
            if src not in names or dst not in names or src == dst:
                continue
            # NOTE: C symbols are the C library's or CPython's (a PIE program holds copies of
            # the data ones that modules use, e.g. PyExc_ValueError, stderr): pyasio defines no
            # C symbol but PyInit_. The typeinfo of a fundamental type (_ZTIv) is the runtime's.
            if not sym.startswith("_Z") or BUILTIN_TYPEINFO.match(sym):
                continue
            # NOTE: a standard library instance over a pyasio or Asio type counts against the
            # copies too (its inlined code reaches the copy's state), though the compiler exports
            # it; at -O1 and above none is bound (docs/foundation.md, "Many copies")
            if STD_SYMBOL.match(sym) and "asio" not in demangle(sym):
                shared_std.add(sym)
            else:
                bad.append((src, dst, sym))
    print(f"bindings between copies: {len(bad)} of pyasio's or Asio's; "
          f"{len(shared_std)} of the standard library's:")
    for sym in sorted(shared_std):
        print("  " + demangle(sym))
    for src, dst, sym in bad[:40]:
        print(f"  {os.path.basename(src)} -> {os.path.basename(dst)}: {demangle(sym)}")
    if bad:
        raise SystemExit("a copy binds to another copy's symbols")


def exported(path):
    """Defined dynamic symbols of a shared object other than the standard library's."""
    out = subprocess.check_output(["nm", "-D", "--defined-only", path], text=True)
    syms = [line.split()[-1] for line in out.splitlines() if line.strip()]
    return [s for s in syms if not STD_SYMBOL.match(s) and not s.startswith("_init")
            and not s.startswith("_fini")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build", "copies"))
    args = ap.parse_args()
    build = os.path.abspath(args.build_dir)
    os.makedirs(build, exist_ok=True)
    py_include, suffix, libdir, ver = python_flags(args.python)
    include = os.path.join(ROOT, "include")
    src = os.path.join(HERE, "copy_ext.cpp")
    modules = {
        "copy_gcc_o1": ("g++", include, ["-O1"]),
        "copy_gcc_ndebug": ("g++", include, ["-O2", "-DNDEBUG", "-fvisibility=hidden"]),
        "copy_clang_o2": ("clang++", include, ["-O2"]),
        "copy_old": ("g++", old_version_include(build), ["-O2", "-fvisibility=hidden"]),
    }
    jobs = []
    for name, (cxx, inc, flags) in modules.items():
        out = os.path.join(build, name + suffix)
        jobs.append(compile_line(cxx, out, inc, py_include, flags + [f"-DCOPY_NAME={name}", src, "-pthread"]))
    embed = os.path.join(build, "embed_copies")
    jobs.append(compile_line("g++", embed, include, py_include,
                             ["-O1", os.path.join(HERE, "embed_copies.cpp"), f"-L{libdir}",
                              f"-Wl,-rpath,{libdir}", f"-lpython{ver}", "-pthread"], shared=False))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(run, jobs))

    # Each module exports its init function and nothing of pyasio's or Asio's.
    for name in modules:
        extra = [s for s in exported(os.path.join(build, name + suffix)) if s != "PyInit_" + name]
        print(f"{name}{suffix}: exports PyInit_{name}" + (f" and {len(extra)} more" if extra else " only"))
        if extra:
            print("\n".join("  " + s for s in extra[:40]))
            raise SystemExit(f"{name} exports symbols beyond its init function")

    env = dict(os.environ, PYTHONPATH=build + os.pathsep + HERE)
    names = list(modules)
    orders = [names, names[::-1], [names[2], names[0], names[3], names[1]]]
    for order in orders:
        out = run([args.python, os.path.join(HERE, "scenario.py")] + order, env=env)
        if not out.rstrip().endswith("ok"):
            raise SystemExit("the scenario did not finish")

    # The dynamic linker's own report of what bound where (the first order again).
    logdir = os.path.join(build, "ld-debug")
    shutil.rmtree(logdir, ignore_errors=True)
    os.makedirs(logdir)
    prefix = os.path.join(logdir, "bindings")
    run([args.python, os.path.join(HERE, "scenario.py")] + names,
        env=dict(env, LD_DEBUG="bindings", LD_DEBUG_OUTPUT=prefix))
    check_bindings(prefix, [os.path.join(build, n + suffix) for n in names])

    # A program with its own copy, importing the four (and LD_DEBUG over it too).
    shutil.rmtree(logdir)
    os.makedirs(logdir)
    out = run([embed, HERE, build] + names[::-1],
              env=dict(env, LD_DEBUG="bindings", LD_DEBUG_OUTPUT=prefix))
    if not out.rstrip().endswith("ok"):
        raise SystemExit("the embedding program did not finish")
    check_bindings(prefix, [embed] + [os.path.join(build, n + suffix) for n in names])
    print("many copies in one process: ok")


if __name__ == "__main__":
    main()
