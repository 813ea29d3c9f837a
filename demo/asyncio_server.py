"""The same HTTP/1.1 server in pure Python (asyncio.start_server), for the demo's comparison.
It parses requests the way the C++ server does and calls the same handlers: the path /crc goes
to handle_awaiting_cpp, every other path to handle (the measuring runs pass one handler as
both). stop_signals() is for --serve's end: Ctrl-C or SIGTERM."""
import asyncio
import signal
from types import SimpleNamespace

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}


def response(status, body):
    if isinstance(body, str):
        body = body.encode()
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def serve(handle, handle_awaiting_cpp, port=0, host="127.0.0.1"):
    """Starts the server on `port` (0: an ephemeral one); returns (server, port), the server for
    stop(). OSError when it cannot listen (errno EADDRINUSE when the port is in use)."""

    async def on_client(reader, writer):
        clients.add(asyncio.current_task())
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                path, _, query = target.partition("?")
                request = SimpleNamespace(method=method, path=path, query=query,
                                          headers=headers, body=body)
                handler = handle_awaiting_cpp if path == "/crc" else handle
                try:  # errors get the C++ server's answers
                    result = await handler(request)
                except Exception as e:
                    result = 500, f"the handler raised {type(e).__name__}: {e}\n"
                if not (isinstance(result, tuple) and len(result) == 2):
                    result = 500, f"the handler must return (status, body), not {result!r}\n"
                status, out = result
                writer.write(response(status, out))
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except asyncio.CancelledError:
            pass  # stop() ends this connection (asyncio 3.12 logs a task that ends cancelled)
        except ConnectionError:
            pass  # the client went away while its answer was written
        finally:
            clients.discard(asyncio.current_task())
            writer.close()
            if reader.exception() is not None:
                # NOTE: a connection lost to an error (a reset) keeps that error for
                # wait_closed() too; asyncio logs "Future exception was never retrieved" if the
                # connection's objects are collected as a cycle, which the error's traceback
                # makes. The close is already done: this await does not suspend.
                try:
                    await writer.wait_closed()
                except ConnectionError:
                    pass

    clients = set()  # the connections' tasks, for stop()
    server = await asyncio.start_server(on_client, host, port)
    # NOTE: the connections are kept beside the server, not on it: uvloop's Server takes no new
    # attributes
    return SimpleNamespace(server=server, clients=clients), server.sockets[0].getsockname()[1]


async def stop(served):
    """Closes the server. A handler that never answers would keep its connection, and (from
    Python 3.12 on) wait_closed() with it, for ever: the connections still open are cancelled."""
    served.server.close()
    for task in list(served.clients):
        task.cancel()
    await served.server.wait_closed()


async def stop_signals():
    """Makes Ctrl-C (SIGINT) and SIGTERM complete the future it returns, with the signal's name,
    instead of stopping the program: --serve then closes its servers and exits 0.
    NOTE: this replaces pyasio::run's own SIGINT handler, which would cancel the demo's main
    coroutine (and make it exit 130). The handlers stay while the servers close, so that a
    second Ctrl-C then does nothing; pyasio::run removes SIGINT's when main returns, and the
    loop's close SIGTERM's (uvloop's close leaves it, ignoring the signal)."""
    loop = asyncio.get_running_loop()
    stopped = loop.create_future()

    def on_signal(signum):
        if not stopped.done():
            stopped.set_result(signal.Signals(signum).name)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    return stopped
