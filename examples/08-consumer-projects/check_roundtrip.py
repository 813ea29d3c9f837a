# SPDX-License-Identifier: BSL-1.0
"""Run by the test command in a fresh venv where only the wheel is installed: the round trip
both ways through the roundtrip extension module (roundtrip.cpp), with plain asyncio."""
import asyncio
import sys

import roundtrip


async def python_value(x):
    await asyncio.sleep(0.01)
    return x


async def python_error():
    await asyncio.sleep(0)
    raise ValueError("raised in Python")


async def main():
    # Python awaits C++: an Asio timer, then 2 * n.
    doubled = await roundtrip.double_later(21, 10)
    print("Python awaited C++:", doubled)
    assert doubled == 42, doubled

    # C++ awaits Python: the C++ work awaits a Python coroutine and adds k to its result.
    added = await roundtrip.add_to_awaited(python_value(40), 2)
    print("C++ awaited Python:", added)
    assert added == 42, added

    # Both at once: C++ awaits Python's await of C++ work; many in flight together.
    nested = await asyncio.gather(
        *(roundtrip.add_to_awaited(roundtrip.double_later(i, 1), 1) for i in range(100)))
    print("C++ awaited Python awaiting C++, 100 at once:", nested[:3], "...")
    assert nested == [2 * i + 1 for i in range(100)], nested

    # A Python exception crosses C++ and arrives back in Python unchanged.
    try:
        await roundtrip.add_to_awaited(python_error(), 1)
    except ValueError as e:
        print("Python error back through C++:", repr(e))
        assert str(e) == "raised in Python", e
    else:
        raise AssertionError("no ValueError")


print("roundtrip from", roundtrip.__file__, "on Python", sys.version.split()[0])
asyncio.run(main())
print("ok")
