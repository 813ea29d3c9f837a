# SPDX-License-Identifier: BSL-1.0
"""Checks that abi3 extension modules call only the stable ABI of the version they target.

The stable ABI of a version is taken from that version's own headers: every function and data
name that Python.h declares (PyAPI_FUNC, PyAPI_DATA) when Py_LIMITED_API is defined to the
version. Each module's undefined dynamic symbols that start with Py or _Py (CPython's) must be
among them. Usage:

    check_abi3.py --cc CC --include PYTHON_INCLUDE_DIR --limited-api 0x030C0000 MODULE.abi3.so...
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile


def stable_names(cc, include, limited_api):
    # NOTE: with and without PY_SSIZE_T_CLEAN (pyasio defines it), which renames a few functions
    # to their _SizeT forms, both in the stable ABI
    text = ""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "limited.c")
        for clean in ("", "#define PY_SSIZE_T_CLEAN\n"):
            with open(src, "w") as f:
                f.write("%s#define Py_LIMITED_API %s\n#include <Python.h>\n" % (clean, limited_api))
            text += subprocess.run([cc, "-E", "-P", "-x", "c", "-I", include, src], check=True,
                                   capture_output=True, text=True).stdout
    names = set()
    # NOTE: PyAPI_FUNC(type) and PyAPI_DATA(type) expand to this attribute and the type, then the
    # name: the last identifier before "(", ";" or "["
    for m in re.finditer(r'visibility \("default"\)\)\)([^;{]*?)[(;\[]', text):
        ids = re.findall(r"[A-Za-z_]\w*", m.group(1))
        if ids:
            names.add(ids[-1])
    if len(names) < 500:
        sys.exit("check_abi3: found only %d declarations in %s's Python.h: the parse is wrong" %
                 (len(names), include))
    return names


def imported(module):
    out = subprocess.run(["nm", "-D", "--undefined-only", module], check=True,
                         capture_output=True, text=True).stdout
    syms = {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}
    return {s for s in syms if s.startswith(("Py", "_Py"))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cc", required=True)
    ap.add_argument("--include", required=True)
    ap.add_argument("--limited-api", required=True)
    ap.add_argument("modules", nargs="+")
    args = ap.parse_args()
    stable = stable_names(args.cc, args.include, args.limited_api)
    print("stable ABI of Py_LIMITED_API=%s: %d names (from %s)" %
          (args.limited_api, len(stable), args.include))
    failed = False
    for module in args.modules:
        if not module.endswith(".abi3.so"):
            print("FAIL %s: not named *.abi3.so" % module)
            failed = True
        names = imported(module)
        outside = sorted(names - stable)
        print("%s: %d CPython symbols imported, %d outside the stable ABI%s" %
              (os.path.basename(module), len(names), len(outside),
               (": " + ", ".join(outside)) if outside else ""))
        failed = failed or bool(outside) or not names
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
