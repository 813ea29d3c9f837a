# SPDX-License-Identifier: BSL-1.0
"""Python awaits C++: the async functions of the extension module await_cpp (await_cpp.cpp) are
C++ coroutines on Asio, awaited here like any coroutine. Run it with the built module on
PYTHONPATH: PYTHONPATH=<build>/examples python3 main.py"""
import asyncio
import errno
import socket

import await_cpp


async def main():
    # A C++ timer, awaited like asyncio.sleep; the result is what the C++ coroutine returned.
    print("C++ slept", await await_cpp.sleep_ms(10), "ms")

    # Several at once: they run concurrently on the Asio runtime, so the shortest ends first.
    finished = []

    async def sleep_and_note(ms):
        finished.append(await await_cpp.sleep_ms(ms))

    await asyncio.gather(sleep_and_note(300), sleep_and_note(100), sleep_and_note(200))
    print("C++ timers finished in the order", finished)

    # An asyncio TCP server that greets each client; C++ connects to it with Asio.
    clients = 0

    async def greet(reader, writer):
        nonlocal clients
        clients += 1
        writer.write(f"hello, client #{clients}\n".encode())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        print("C++ connected and read:", await await_cpp.connect("127.0.0.1", port))
        lines = await asyncio.gather(*(await_cpp.connect("127.0.0.1", port) for _ in range(3)))
        print("three C++ connections at once read:", sorted(lines))

    # Nothing listens on this port: the C++ error arrives as the matching Python exception.
    try:
        await await_cpp.connect("127.0.0.1", unused_port())
    except ConnectionRefusedError as e:
        print("C++ connecting to a closed port: ConnectionRefusedError,", errno.errorcode[e.errno])


def unused_port():
    """A local port that nobody listens on (bound, then closed again)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


asyncio.run(main())
