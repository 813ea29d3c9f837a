#!/usr/bin/env python3
# SPDX-License-Identifier: BSL-1.0
"""Checks that every code block in README.md, docs/**/*.md and examples/**/README.md is quoted
from a file that the test command builds or runs.

A ```cpp, ```cmake, ```meson, ```python or ```toml block must start with a comment naming that
file, e.g. `// examples/00-basics.cpp` or `# demo/handler.py`. Its other lines must appear in
the file in the same order; a line that is only `// ...` or `# ...` marks an omission. Shell
blocks (commands) and text blocks (program output) are not checked.
"""
import pathlib
import re
import sys

CHECKED = {"cpp", "c++", "cmake", "meson", "python", "py", "toml"}
BUILT = ("examples/", "tests/", "bench/", "demo/", "include/", "CMakeLists.txt", "meson.build")
FENCE = re.compile(r"^```(\S*)\s*$")
NAME = re.compile(r"^\s*(?://|#)\s*(\S+)\s*$")
ELISION = re.compile(r"^\s*(?://|#)\s*\.\.\.\s*$")


def blocks(text):
    lang, body, start = None, [], 0
    for number, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if m and lang is None:
            lang, body, start = m.group(1).lower(), [], number
        elif line.strip() == "```" and lang is not None:
            yield lang, start, body
            lang = None
        elif lang is not None:
            body.append(line)


def contains_in_order(haystack, chunks):
    position = 0
    for chunk in chunks:
        n = len(chunk)
        while position + n <= len(haystack) and haystack[position:position + n] != chunk:
            position += 1
        if position + n > len(haystack):
            return chunk
        position += n
    return None


def main(root):
    root = pathlib.Path(root)
    problems, checked = [], 0
    for doc in [root / "README.md", *sorted((root / "docs").glob("**/*.md")),
                *sorted((root / "examples").glob("**/README.md"))]:
        if not doc.exists():
            continue
        for lang, start, body in blocks(doc.read_text()):
            if lang not in CHECKED:
                continue
            where = f"{doc.relative_to(root)}:{start}"
            m = NAME.match(body[0]) if body else None
            if not m:
                problems.append(f"{where}: a {lang} block must start with a comment naming "
                                "the file it quotes")
                continue
            name = m.group(1)
            source = root / name
            if not name.startswith(BUILT) or not source.is_file():
                problems.append(f"{where}: {name} is not a file the test command builds")
                continue
            lines = [l.rstrip() for l in source.read_text().splitlines()]
            chunks, current = [], []
            for line in body[1:]:
                if ELISION.match(line):
                    chunks.append(current)
                    current = []
                else:
                    current.append(line.rstrip())
            chunks.append(current)
            missing = contains_in_order(lines, [c for c in chunks if c])
            if missing is not None:
                problems.append(f"{where}: these lines are not in {name} (in this order):\n    " +
                                "\n    ".join(missing))
            checked += 1
    for p in problems:
        print(p)
    print(f"{checked} code blocks checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
