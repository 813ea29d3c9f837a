"""The same HTTP/1.1 server in pure Python (asyncio.start_server), for the demo's comparison.
It parses requests the way the C++ server does and calls the same handler."""
import asyncio
from types import SimpleNamespace

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}


def response(status, body):
    if isinstance(body, str):
        body = body.encode()
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def serve(handle, host="127.0.0.1"):
    """Starts the server on an ephemeral port; returns (server, port)."""

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
                try:  # errors get the C++ server's answers
                    result = await handle(request)
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
        finally:
            clients.discard(asyncio.current_task())
            writer.close()

    clients = set()  # the connections' tasks, for stop()
    server = await asyncio.start_server(on_client, host, 0)
    server.pyasio_demo_clients = clients
    return server, server.sockets[0].getsockname()[1]


async def stop(server):
    """Closes the server. A handler that never answers would keep its connection, and (from
    Python 3.12 on) wait_closed() with it, for ever: the connections still open are cancelled."""
    server.close()
    for task in list(server.pyasio_demo_clients):
        task.cancel()
    await server.wait_closed()
