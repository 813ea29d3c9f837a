# SPDX-License-Identifier: BSL-1.0
"""Event loops for the tests that asyncio does not offer on Linux.

ProactorLikeLoop: asyncio's selector loop without add_reader and remove_reader, as Windows'
ProactorEventLoop is: those are asyncio.AbstractEventLoop's own, which raise NotImplementedError
(ProactorEventLoop inherits them: neither BaseProactorEventLoop nor BaseEventLoop defines them).
pyasio's bridge then wakes the loop with call_soon_threadsafe by itself."""
import asyncio


class ProactorLikeLoop(asyncio.SelectorEventLoop):
    """A loop whose add_reader raises NotImplementedError, as ProactorEventLoop's does."""

    add_reader = asyncio.AbstractEventLoop.add_reader
    remove_reader = asyncio.AbstractEventLoop.remove_reader


def add_reader_refused():
    """True when ProactorLikeLoop really refuses add_reader as ProactorEventLoop does."""
    loop = ProactorLikeLoop()
    try:
        loop.add_reader(0, print)
    except NotImplementedError as e:
        return type(e) is NotImplementedError and e.args == ()
    finally:
        loop.close()
    return False
