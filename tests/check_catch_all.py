# SPDX-License-Identifier: BSL-1.0
"""Fails when a catch (...) handler in include/ does not begin with detail::caught().

A thread ended by pthread_exit, pthread_cancel or CPython at interpreter exit unwinds with a
forced unwind, which a catch (...) sees and must rethrow; detail::caught() (pyasio/config.hpp)
rethrows it. Usage: check_catch_all.py INCLUDE_DIR
"""
import pathlib
import re
import sys

HANDLER = re.compile(r"catch\s*\(\s*\.\.\.\s*\)\s*\{")
COMMENT = re.compile(r"\s*(//[^\n]*\n|/\*.*?\*/)", re.S)


def first_statement(text):
    """The text of the handler's first statement (comments skipped)."""
    while True:
        m = COMMENT.match(text)
        if not m:
            break
        text = text[m.end():]
    return text.lstrip().split(";", 1)[0]


bad = []
for path in sorted(pathlib.Path(sys.argv[1]).rglob("*.hpp")):
    source = path.read_text()
    for m in HANDLER.finditer(source):
        line = source.count("\n", 0, m.start()) + 1
        if source[:m.start()].rsplit("\n", 1)[-1].lstrip().startswith("//"):
            continue  # in a comment
        if "caught()" not in first_statement(source[m.end():]):
            bad.append(f"{path}:{line}")
if bad:
    print("a catch (...) that does not begin with detail::caught() swallows forced unwinds "
          "(a thread being ended):\n  " + "\n  ".join(bad))
    sys.exit(1)
print("every catch (...) in include/ begins with detail::caught()")
