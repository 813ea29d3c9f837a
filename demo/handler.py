"""The Python side of pyasio's demo: the HTTP request handlers. Edit them and rerun
./scripts/demo.

A handler is an `async def` that gets one request and returns (status, body):
  request.method   "GET"
  request.path     "/hello"
  request.query    "name=c3-17" (the part after "?")
  request.headers  {"host": "127.0.0.1:40123", ...} (names in lower case)
  request.body     b"" (bytes)
  body             str (sent as UTF-8) or bytes

The demo's load generator asks for /hello?name=<a unique name> and counts a response as
correct when its status is 200 and its body contains that name (and, for
handle_awaiting_cpp, the name's CRC-32 in hex, which only C++ computes here).
"""
from urllib.parse import parse_qs

import native  # the demo program's C++ module


async def handle(request):
    name = parse_qs(request.query).get("name", ["world"])[0]
    return 200, f"hello, {name}\n"


async def handle_awaiting_cpp(request):
    name = parse_qs(request.query).get("name", ["world"])[0]
    # Python awaits C++: the checksum is computed on an Asio runtime thread, without the GIL.
    crc = await native.crc32(name.encode())
    return 200, f"hello, {name}; crc32 {crc:08x}\n"
