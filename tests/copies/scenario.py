# SPDX-License-Identifier: BSL-1.0
"""The scenario of tests/copies/run.py: several copies of pyasio (extension modules that each
vendor it) used at once on one event loop, in one process.

    python scenario.py MODULE [MODULE ...]

imports the modules in that order, then for each loop (asyncio twice, then uvloop when it is
installed) runs every operation of every module concurrently: future_into_py, into_future, the
loop executor and streams both ways. Prints one line per loop and "ok" at the end; raises on any
wrong result. Also imported by the embedding program (embed_copies.cpp), which runs exercise().
"""
import asyncio
import importlib
import sys


def load(names):
    modules = [importlib.import_module(n) for n in names]
    ids = [m.identity() for m in modules]
    for m, (name, _version, queue, context) in zip(modules, ids):
        assert name == m.__name__, (name, m.__name__)
        assert m.Error.__module__ == m.__name__, m.Error.__module__
    assert len({id(m.Error) for m in modules}) == len(modules)
    # Each copy has its own state: shared code or state would show as equal addresses.
    queues = {i[2] for i in ids}
    contexts = {i[3] for i in ids}
    assert len(queues) == len(ids), f"copies share a release queue: {ids}"
    assert len(contexts) == len(ids), f"copies share a runtime: {ids}"
    return modules


async def numbers(n):
    for i in range(n):
        if i % 3 == 0:
            await asyncio.sleep(0)
        yield i


async def value_later(v):
    await asyncio.sleep(0.001)
    return v


async def one_module(m, k):
    """Every operation of module m, each several times concurrently; returns a check count."""
    tag = f"{m.__name__}-{k}"
    sleeps = [m.sleep_value(1 + i % 3, f"{tag}-{i}") for i in range(10)]
    awaits = [m.await_py(value_later(i * 7)) for i in range(10)]
    on_loop = [m.on_loop(lambda i=i: i * 11) for i in range(5)]

    async def read(n):
        return [x async for x in m.produce(n)]

    reads = [read(20 + i) for i in range(3)]
    consumes = [m.consume(numbers(30 + i)) for i in range(3)]
    results = await asyncio.gather(*sleeps, *awaits, *on_loop, *reads, *consumes)
    expected = ([f"{tag}-{i}" for i in range(10)] + [i * 7 for i in range(10)] +
                [i * 11 for i in range(5)] + [list(range(20 + i)) for i in range(3)] +
                [sum(range(30 + i)) for i in range(3)])
    assert results == expected, f"{m.__name__}: {results} != {expected}"
    return len(results)


async def errors(m):
    """m's C++ exceptions arrive as m's own Python classes (its translator registry)."""
    gcc = "gcc" in m.__name__
    for where in ("now", "later", "stream"):
        for kind in ("own", "nested", "range"):
            try:
                r = m.fail(where, kind)
                if where == "later":
                    await r
                elif where == "stream":
                    async for _ in r:
                        pass
            except Exception as e:
                error = e
            else:
                raise AssertionError(f"{m.__name__}.fail({where}, {kind}) raised nothing")
            if kind == "range":
                want = ArithmeticError if gcc else RuntimeError
                assert type(error) is want, (m.__name__, where, kind, repr(error))
                continue
            assert type(error) is m.Error, (m.__name__, where, kind, repr(error))
            assert str(error) == f"{kind if kind == 'own' else 'outer'} failure in {m.__name__}", error
            if kind == "nested":
                assert type(error.__cause__) is IndexError, repr(error.__cause__)
                assert str(error.__cause__) == "the inner cause"
    return 9


async def references_kept(m):
    """on_loop releases its callable as often as it takes it; returns a check count."""
    # NOTE: a closure temporary of a co_await that g++ 12 destroyed after its captures were moved
    # out released the callable once too often per call (a crash under uvloop, a Python object
    # freed while still in use); `keep` holds enough references that the count shows it instead.
    def fn():
        return 7

    keep = [fn] * 10
    before = sys.getrefcount(fn)
    for _ in range(3):
        assert await m.on_loop(fn) == 7
    m.identity()  # an entry point: releases what runtime threads dropped
    after = sys.getrefcount(fn)
    assert after == before, (f"{m.__name__}: on_loop released its callable "
                             f"{before - after} times too often")
    del keep
    return 1


async def exercise(modules, rounds=3):
    """All modules at once on the running loop, `rounds` times over; returns the check count."""
    total = 0
    for m in modules:
        total += await references_kept(m)
    for r in range(rounds):
        counts = await asyncio.gather(*(one_module(m, r) for m in modules),
                                      *(errors(m) for m in modules))
        total += sum(counts)
    return total


def main(names):
    modules = load(names)
    loops = [("asyncio", asyncio.new_event_loop), ("asyncio, a second loop", asyncio.new_event_loop)]
    try:
        import uvloop
        loops.append(("uvloop", uvloop.new_event_loop))
    except ImportError:
        print("uvloop: not installed, skipped (Debian: python3-uvloop)")
    for label, make in loops:
        loop = make()
        try:
            n = loop.run_until_complete(exercise(modules))
        finally:
            loop.close()
        print(f"{label}: {n} results from {len(modules)} copies, all right", flush=True)
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1:])
