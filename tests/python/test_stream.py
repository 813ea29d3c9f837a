# SPDX-License-Identifier: BSL-1.0
"""Streams both ways (test module built from pyasio_stream_ext.cpp): C++ reads Python async
iterators (pyasio::into_stream), Python reads C++ producers (pyasio::stream_into_py) and Asio
channels (pyasio::channel_into_py) with `async for`."""
import asyncio
import gc
import os
import random
import sys
import time
import unittest

import _pyasio_stream_test as m
from loops import ProactorLikeLoop

try:
    import uvloop
except ImportError:
    uvloop = None

HANG = 60  # seconds: a hang guard only, never a timing assertion
# The "million items" of the long streams: 100k under a sanitizer (the build sets it; a race shows
# at that length as well, at a tenth of the time)
MILLION = int(os.environ.get("PYASIO_STREAM_ITEMS", 1_000_000))


async def until(predicate, what, rounds=2000):
    """Lets the loop run until predicate() holds (the other side works on other threads)."""
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"timed out waiting for {what}")


class Record:
    """What an async generator saw: how many it yielded, how it ended."""

    def __init__(self):
        self.yielded = 0
        self.ended_by = None
        self.finally_ran = False

    async def numbers(self, n=None, pause_every=0, pause=0.0, gate=None, jitter=None):
        """0, 1, ...; gate=(i, predicate): item i waits until predicate() holds; jitter (a
        random.Random): some items wait a loop round or a millisecond first."""
        i = 0
        try:
            while n is None or i < n:
                if pause_every and i and i % pause_every == 0:
                    await asyncio.sleep(pause)
                if gate is not None and i == gate[0]:
                    await until(gate[1], f"the gate before item {i}", rounds=HANG * 1000)
                if jitter is not None:
                    r = jitter.random()
                    if r < 0.3:
                        await asyncio.sleep(0)
                    elif r < 0.35:
                        await asyncio.sleep(0.001)
                self.yielded += 1
                yield i
                i += 1
        except BaseException as e:
            self.ended_by = type(e).__name__
            raise
        finally:
            self.finally_ran = True


class PythonToCpp:
    """C++ reads Python async iterators."""

    def test_a_million_items_in_order(self):
        async def main():
            items, end = await m.collect(Record().numbers(MILLION))
            self.assertEqual(end, "end")
            self.assertEqual(len(items), MILLION)
            self.assertEqual(items, list(range(MILLION)))

        self.run_on_loop(main())

    def test_every_window_with_and_without_awaits_between_items(self):
        async def main():
            for window in (1, 2, 3, 64):
                for pause_every in (0, 7):
                    items, end = await m.collect(
                        Record().numbers(2000, pause_every=pause_every), window)
                    self.assertEqual((items, end), (list(range(2000)), "end"), window)

        self.run_on_loop(main())

    def test_objects_and_any_async_iterator(self):
        marker = object()

        class Countdown:  # not a generator: __aiter__ and __anext__ only
            def __init__(self):
                self.n = 3

            def __aiter__(self):
                return self

            async def __anext__(self):
                await asyncio.sleep(0)
                if self.n == 0:
                    raise StopAsyncIteration
                self.n -= 1
                return marker if self.n == 1 else self.n

        async def main():
            items, end = await m.collect_objects(Countdown())
            self.assertEqual(end, "end")
            self.assertEqual(items[0], 2)
            self.assertIs(items[1], marker)
            self.assertEqual(items[2], 0)

        self.run_on_loop(main())

    def test_the_call_is_made_on_the_loop(self):
        async def main():
            items, end = await m.collect_call(Record().numbers, 10)
            self.assertEqual((items, end), (list(range(10)), "end"))

        self.run_on_loop(main())

    def test_an_error_arrives_at_its_item(self):
        async def failing():
            for i in range(5):
                yield i
            raise ValueError("boom at 5")

        async def main():
            items, end = await m.collect(failing(), 2)
            self.assertEqual(items, [0, 1, 2, 3, 4])
            self.assertEqual(end, "python_error: ValueError: boom at 5")

        self.run_on_loop(main())

    def test_a_conversion_error_arrives_at_its_item_and_closes_the_generator(self):
        record = Record()

        async def mixed():
            async for i in record.numbers():
                yield "x" if i == 2 else i

        async def main():
            items, end = await m.collect(mixed())
            self.assertEqual(items, [0, 1])
            self.assertEqual(end, "python_error: TypeError: expected int, got str")
            await until(lambda: record.finally_ran, "the generator's finally")

        self.run_on_loop(main())

    def test_dropping_the_stream_between_items_calls_aclose(self):
        record = Record()

        async def main():
            # the window fills at once: the generator waits at a yield when C++ lets go (and
            # having taken one item of four, C++ has not asked for more)
            items, end = await m.collect(record.numbers(), 4, 1)
            self.assertEqual((items, end), ([0], "end"))
            await until(lambda: record.finally_ran, "the generator's finally")
            self.assertEqual(record.ended_by, "GeneratorExit")
            self.assertLessEqual(record.yielded, 1 + 4)

        self.run_on_loop(main())

    def test_dropping_the_stream_during_an_anext_cancels_it(self):
        record = Record()

        async def main():
            # item 2 takes 10 s: C++ lets go while the generator waits for it
            items, end = await m.collect(record.numbers(pause_every=2, pause=10.0), 8, 2)
            self.assertEqual((items, end), ([0, 1], "end"))
            await until(lambda: record.finally_ran, "the generator's finally")
            self.assertEqual(record.ended_by, "CancelledError")

        self.run_on_loop(main())

    def test_python_cancelling_the_reading_task(self):
        record = Record()

        async def main():
            reading = m.collect(record.numbers(pause_every=2, pause=10.0), 8)
            pumps = []
            while not pumps:
                await asyncio.sleep(0.001)
                pumps = [t for t in asyncio.all_tasks()
                         if type(t.get_coro()).__name__ == "_StreamPump"]
            await asyncio.sleep(0.02)  # the generator waits for item 2
            pumps[0].cancel()
            items, end = await reading
            self.assertEqual((items, end), ([0, 1], "cancelled by python"))
            self.assertEqual(record.ended_by, "CancelledError")

        self.run_on_loop(main())

    def test_a_loop_closed_while_cpp_reads(self):
        record = Record()
        loop = self.loop_factory()

        async def start():
            reading = m.read_recorded(record.numbers(pause_every=2, pause=3600.0))
            await until(lambda: record.yielded == 2, "two items")
            await asyncio.sleep(0.02)  # the generator waits for item 2
            return reading

        try:
            reading = loop.run_until_complete(start())
            self.assertEqual(m.recorded(), "")
        finally:
            loop.close()
        for _ in range(2000):
            if m.recorded():
                break
            time.sleep(0.001)
        self.assertRegex(m.recorded(), "^2 items, loop closed: pyasio::into_stream: the event "
                         "loop was closed while C\\+\\+ read this stream")
        del reading

    def test_a_slow_consumer_holds_the_generator_back(self):
        window = 8
        base = m.counters()[0]
        ahead = []

        async def watched():
            for i in range(200):
                ahead.append(i + 1 - (m.counters()[0] - base))
                yield i

        async def main():
            items, end = await m.collect(watched(), window, -1, 1)
            self.assertEqual((items, end), (list(range(200)), "end"))
            # the buffer, one item in the consumer's hands, the one being yielded
            self.assertLessEqual(max(ahead), window + 2)

        self.run_on_loop(main())

    def test_many_streams_at_once(self):
        async def main():
            results = await asyncio.gather(
                *(m.collect(Record().numbers(1000, pause_every=100), 16) for _ in range(100)))
            for items, end in results:
                self.assertEqual((items, end), (list(range(1000)), "end"))

        self.run_on_loop(main())

    def test_read_by_a_coroutine_on_the_loop_executor(self):
        record = Record()

        async def main():
            items, end = await m.collect(record.numbers(1000, pause_every=10), 4, -1, 0, True)
            self.assertEqual((items, end), (list(range(1000)), "end"))
            items, end = await m.collect(Record().numbers(), 4, 3, 0, True)
            self.assertEqual((items, end), ([0, 1, 2], "end"))

        self.run_on_loop(main())

    def test_misuse_of_into_stream(self):
        async def agen():
            yield 1

        async def slow():
            await asyncio.sleep(0.05)
            yield 1

        class NoAnext:
            def __aiter__(self):
                return self

        async def main():
            for bad in (5, None, [1, 2], agen):
                with self.assertRaisesRegex(TypeError, "expected an async iterable"):
                    m.into_stream_of(bad)
            with self.assertRaisesRegex(ValueError, "window must be at least 1"):
                m.into_stream_window(agen(), 0)
            items, end = await m.collect(NoAnext())
            self.assertEqual(items, [])
            self.assertIn("has no __anext__", end)
            items, end = await m.collect_call(lambda n: n, 1)
            self.assertIn("expected an async iterable", end)
            self.assertIn("got int", end)
            self.assertIn("another next() of this stream waits", await m.two_nexts(slow()))
            # The first next() was still in flight when two_nexts returned and dropped its
            # stream: its __anext__ task ends on this loop; closing the loop before would
            # destroy it pending (seen under ASan, where the C++ side is slower).
            await until(lambda: len(asyncio.all_tasks()) == 1, "the dropped stream's __anext__")

        self.run_on_loop(main())


class CppToPython:
    """Python reads C++ producers with async for."""

    def test_async_for_over_a_million_items_in_order(self):
        async def main():
            expected = 0
            async for x in m.count(MILLION):
                if x != expected:
                    self.fail(f"item {expected} was {x}")
                expected += 1
            self.assertEqual(expected, MILLION)

        self.run_on_loop(main())

    def test_every_capacity_with_and_without_pauses(self):
        async def main():
            for capacity in (1, 2, 3, 64):
                for n, pause_ms in ((2000, 0), (20, 1)):
                    items = [x async for x in m.count(n, capacity, pause_ms)]
                    self.assertEqual(items, list(range(n)), capacity)

        self.run_on_loop(main())

    def test_a_producer_error_is_raised_at_its_point(self):
        async def main():
            items = []
            with self.assertRaisesRegex(RuntimeError, "^producer failed$"):
                async for x in m.count(5, 2, 0, "producer failed"):
                    items.append(x)
            self.assertEqual(items, [0, 1, 2, 3, 4])

        self.run_on_loop(main())

    def test_a_producer_error_after_the_reader_left_is_not_logged(self):
        # The reader leaves (break) before the item whose producer failed: the error belongs to
        # no one, and asyncio must not log "Future exception was never retrieved" for the
        # producer's internal future (a user trial saw it in about 1 run of 10).
        async def main():
            seen = []
            asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: seen.append(ctx))
            for _ in range(20):
                stream = m.count(6, 8, 0, "producer failed")
                async for x in stream:
                    if x == 1:
                        break
                await until(lambda: m.counters()[2] == m.counters()[4], "the producer's end")
                for _ in range(3):  # the producer's future completes on the loop
                    await asyncio.sleep(0.002)
                del stream
                gc.collect()
            await asyncio.sleep(0)
            gc.collect()
            self.assertEqual([c.get("message") for c in seen], [])

        self.run_on_loop(main())

    def leave_early(self, how):
        async def main():
            await until(lambda: m.counters()[2] == m.counters()[4], "earlier producers' ends")
            ended, aborted = m.counters()[2:4]
            stream = m.count(-1, 4)
            async for x in stream:
                if x == 9:
                    break
            if how == "aclose":
                self.assertIsNone(await stream.aclose())
                with self.assertRaises(StopAsyncIteration):
                    await stream.__anext__()
            elif how == "gc":
                cycle = [stream]
                cycle.append(cycle)
                del cycle
            del stream
            gc.collect()
            await until(lambda: m.counters()[2] > ended, "the producer's end")
            self.assertEqual(m.counters()[3], aborted + 1, "ended by operation_aborted")

        self.run_on_loop(main())

    def test_break_cancels_the_producer(self):
        self.leave_early("break")

    def test_aclose_cancels_the_producer(self):
        self.leave_early("aclose")

    def test_garbage_collection_cancels_the_producer(self):
        self.leave_early("gc")

    def test_a_slow_consumer_holds_the_producer_back(self):
        capacity = 8

        async def main():
            base = m.counters()[1]
            stream = m.count(-1, capacity)
            read = 0
            ahead = []
            async for _ in stream:
                read += 1
                ahead.append(m.counters()[1] - base - read)
                await asyncio.sleep(0.001)
                if read == 100:
                    break
            await stream.aclose()
            self.assertLessEqual(max(ahead), capacity)

        self.run_on_loop(main())

    def test_cancelling_the_reader_then_leaving_cancels_the_producer(self):
        async def main():
            await until(lambda: m.counters()[2] == m.counters()[4], "earlier producers' ends")
            ended, aborted = m.counters()[2:4]
            stream = m.count(-1, 4, 10_000)  # each item takes 10 s

            async def reader():
                async for _ in stream:
                    pass

            task = asyncio.ensure_future(reader())
            await asyncio.sleep(0.02)
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task
            await stream.aclose()
            await until(lambda: m.counters()[2] > ended, "the producer's end")
            self.assertEqual(m.counters()[3], aborted + 1)

        self.run_on_loop(main())

    def test_many_producers_at_once(self):
        async def read(stream):
            return [x async for x in stream]

        async def main():
            results = await asyncio.gather(*(read(m.count(1000, 16)) for _ in range(100)))
            for items in results:
                self.assertEqual(items, list(range(1000)))

        self.run_on_loop(main())

    def test_an_asio_channel(self):
        async def main():
            self.assertEqual([x async for x in m.channel_count(1000, 8)], list(range(1000)))
            items = []
            with self.assertRaisesRegex(OSError, "Connection reset"):
                async for x in m.channel_count(5, 8, True):
                    items.append(x)
            self.assertEqual(items, [0, 1, 2, 3, 4])

        self.run_on_loop(main())

    def test_runtime_shutdown_cancels_the_producer(self):
        async def main():
            await until(lambda: m.counters()[2] == m.counters()[4], "earlier producers' ends")
            aborted = m.counters()[3]
            stream = m.count(-1, 4, 10_000)  # each item takes 10 s
            step = asyncio.ensure_future(stream.__anext__())
            await until(lambda: m.counters()[4] > m.counters()[2], "the producer's start")
            m.shutdown_and_restart()
            with self.assertRaisesRegex(asyncio.CancelledError,
                                        # Before 3.11 a task drops the message of the
                                        # CancelledError that ends its coroutine.
                                        "runtime was shut down" if sys.version_info >= (3, 11)
                                        else ""):
                await step
            self.assertEqual(m.counters()[3], aborted + 1)
            self.assertEqual([x async for x in m.count(3)], [0, 1, 2])  # it runs again

        self.run_on_loop(main())

    def test_leaving_a_channel_early_cancels_its_receive(self):
        async def main():
            stream = m.channel_left(3)
            self.assertEqual([await stream.__anext__() for _ in range(3)], [0, 1, 2])
            step = asyncio.ensure_future(stream.__anext__())  # no value will come
            await asyncio.sleep(0.02)
            step.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await step
            self.assertTrue(m.channel_alive(), "the receive still waits")
            del step, stream
            gc.collect()
            await until(lambda: not m.channel_alive(), "the receive cancelled")

        self.run_on_loop(main())

    def test_a_conversion_error_is_raised_at_its_item(self):
        async def main():
            stream = m.strings()
            self.assertEqual(await stream.__anext__(), "ok")
            with self.assertRaises(UnicodeDecodeError):
                await stream.__anext__()
            self.assertEqual(await stream.__anext__(), "after")
            with self.assertRaises(StopAsyncIteration):
                await stream.__anext__()
            with self.assertRaises(StopAsyncIteration):
                await stream.__anext__()

        self.run_on_loop(main())

    def test_misuse_of_stream_into_py(self):
        with self.assertRaisesRegex(ValueError, "capacity must be at least 1"):
            m.stream_capacity(0)
        with self.assertRaisesRegex(ValueError, "no channel"):
            m.channel_none()
        with self.assertRaisesRegex(RuntimeError, "no running event loop"):
            m.count(3).__anext__()

        async def main():
            stream = m.count(3)
            step = stream.__anext__()
            self.assertEqual(await step, 0)
            with self.assertRaisesRegex(RuntimeError, "cannot reuse already awaited"):
                await step

        self.run_on_loop(main())


class CancelledReads:
    """A cancelled read leaves the stream usable, both ways (docs/streams.md): the read that
    was cancelled ends (CancelledError in Python, operation_aborted in C++), the next read gets
    the next item, no item is lost or duplicated, and the other side is not stopped."""

    # --- Python reads C++: stream_into_py, channel_into_py ---

    async def waiting_anext(self, stream):
        """An __anext__ in a task, once it waits (a new task takes its first step in the next
        loop round)."""
        step = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0)
        self.assertFalse(step.done(), "the __anext__ waits")
        return step

    async def producers_settled(self):
        await until(lambda: m.counters()[2] == m.counters()[4], "earlier producers' ends")
        return m.counters()[2:4]

    def test_a_cancelled_anext_leaves_the_stream_usable(self):
        async def check(stream, by_channel, ended, aborted):
            m.feed(0)
            self.assertEqual(await stream.__anext__(), 0)
            # task.cancel() while the __anext__ waits
            step = await self.waiting_anext(stream)
            step.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await step
            step = await self.waiting_anext(stream)
            m.feed(1)
            self.assertEqual(await step, 1)
            # asyncio.wait_for timing out (nothing was fed: it times out for sure)
            with self.assertRaises(asyncio.TimeoutError):
                await asyncio.wait_for(stream.__anext__(), 0.005)
            step = await self.waiting_anext(stream)
            m.feed(2)
            m.feed(3)
            self.assertEqual(await step, 2)
            self.assertEqual(await stream.__anext__(), 3)
            self.assertEqual(m.counters()[3], aborted, "the producer was not cancelled")
            m.feed_end()
            with self.assertRaises(StopAsyncIteration):
                await stream.__anext__()
            if not by_channel:
                await until(lambda: m.counters()[2] > ended, "the producer's end")
                self.assertEqual(m.counters()[3], aborted, "it returned")

        async def main():
            for by_channel in (False, True):
                ended, aborted = await self.producers_settled()
                stream = m.fed(4, by_channel)
                try:
                    await check(stream, by_channel, ended, aborted)
                finally:
                    await stream.aclose()  # a failed check leaves no producer behind

        self.run_on_loop(asyncio.wait_for(main(), HANG))

    def test_cancelling_one_of_two_waiting_readers_leaves_the_other_waiting(self):
        async def main():
            for by_channel in (False, True):
                stream = m.fed(4, by_channel)
                try:
                    first = asyncio.ensure_future(stream.__anext__())
                    second = await self.waiting_anext(stream)
                    first.cancel()
                    with self.assertRaises(asyncio.CancelledError):
                        await first
                    self.assertFalse(second.done())
                    m.feed(5)
                    self.assertEqual(await second, 5)
                    m.feed_end()
                    self.assertEqual([x async for x in stream], [])
                finally:
                    await stream.aclose()

        self.run_on_loop(asyncio.wait_for(main(), HANG))

    def test_random_cancels_of_anext_lose_and_repeat_no_item(self):
        n = 200

        async def read_all(stream, feed, rng):
            """Reads n items, cancelling reads at random: task.cancel() after 0-2 loop rounds,
            or wait_for with a timeout of 0-2 ms; feed(i) sends item i, at random moments
            (a cancel may meet an item that just arrived)."""
            got, fed = [], 0
            while len(got) < n:
                if fed < n and rng.random() < 0.5:
                    fed = feed(fed)
                how = rng.randrange(3)
                if how == 2:
                    try:
                        got.append(await asyncio.wait_for(stream.__anext__(),
                                                          rng.choice((0, 0.0005, 0.002))))
                    except asyncio.TimeoutError:
                        pass
                    continue
                step = asyncio.ensure_future(stream.__anext__())
                for _ in range(rng.randrange(3)):
                    await asyncio.sleep(0)
                if fed < n and rng.random() < 0.5:
                    fed = feed(fed)
                if how == 1:
                    step.cancel()
                elif fed == len(got):
                    fed = feed(fed)  # an item for this read, which is not cancelled
                try:
                    got.append(await step)
                except asyncio.CancelledError:
                    self.assertEqual(how, 1)
            return got

        def feed(i):
            m.feed(i)
            return i + 1

        async def main():
            rng = random.Random(18)
            for source in ("producer", "channel", "count"):
                ended, aborted = await self.producers_settled()
                if source == "count":  # a producer that writes as fast as it can
                    stream = m.count(n, 2)
                    got = await read_all(stream, lambda i: n, rng)
                else:
                    stream = m.fed(2, source == "channel")
                    try:
                        got = await read_all(stream, feed, rng)
                    finally:
                        m.feed_end()
                self.assertEqual(got, list(range(n)), source)
                self.assertEqual([x async for x in stream], [], source)
                if source != "channel":
                    await until(lambda: m.counters()[2] > ended, "the producer's end")
                self.assertEqual(m.counters()[3], aborted, "the producer was not cancelled")

        self.run_on_loop(asyncio.wait_for(main(), HANG))

    # --- C++ reads Python: into_stream ---

    def test_a_cpp_cancelled_next_leaves_the_generator_running(self):
        async def main():
            for how in ("timer", "slot"):
                record = Record()
                base = m.cancelled_reads()
                # item 2 comes only once C++ cancelled the next() that waits for it
                gen = record.numbers(6, gate=(2, lambda: m.cancelled_reads() > base))
                before, cancelled, after, end = await m.read_then_cancel(gen, 2, how)
                self.assertEqual((before, cancelled), ([0, 1], "aborted"), how)
                self.assertEqual((after, end), ([2, 3, 4, 5], "end"), how)
                self.assertEqual(record.yielded, 6)
                self.assertIsNone(record.ended_by, "the generator was not cancelled")
                self.assertTrue(record.finally_ran)

        self.run_on_loop(asyncio.wait_for(main(), HANG))

    def test_an_item_handed_to_a_cancelled_next_goes_to_the_next_next(self):
        # A generator that never awaits gives the pump every item in one step: once C++ has
        # item 0, items 1-5 are there. The next() after item 1 gets item 2 at once, but a round
        # trip started before it wins the `||` and cancels it before its handler runs: `||`
        # drops the result of the operation it cancelled, so item 2 must not be in it.
        async def main():
            for how in ("round_trip", "slot"):
                record = Record()
                before, cancelled, after, end = await m.read_then_cancel(
                    record.numbers(6), 2, how)
                self.assertEqual((before, cancelled), ([0, 1], "aborted"), how)
                self.assertEqual((after, end), ([2, 3, 4, 5], "end"), how)
                self.assertIsNone(record.ended_by, "the generator was not cancelled")

        self.run_on_loop(asyncio.wait_for(main(), HANG))

    def test_random_cpp_cancels_of_next_lose_and_repeat_no_item(self):
        n = 200

        async def main():
            for seed, window in ((18, 1), (19, 3)):
                record = Record()
                gen = record.numbers(n, jitter=random.Random(seed))
                items, cancelled, end = await m.read_with_cancels(gen, seed, window)
                self.assertEqual((items, end), (list(range(n)), "end"), (seed, window))
                # a slot emitted after one round trip cancels for sure a next() that got its
                # item at once (the handler is posted after the emitter's round trip)
                self.assertGreater(cancelled, 0)
                self.assertEqual(record.yielded, n)
                self.assertIsNone(record.ended_by, "the generator was not cancelled")

        self.run_on_loop(asyncio.wait_for(main(), HANG))


class Loops:
    loop_factory = staticmethod(asyncio.new_event_loop)
    wake = "reader"
    expected_wake = None  # the mode the bridge uses: `wake`, unless the loop refuses add_reader

    def setUp(self):
        m.set_wake(self.wake)

    def run_on_loop(self, coro):
        async def then_check_the_wake():
            result = await coro
            mode = m.wake_info(asyncio.get_running_loop())[0]
            self.assertEqual(mode, self.expected_wake or self.wake)
            return result

        loop = self.loop_factory()
        loop.set_debug(False)  # -X dev's debug mode records a traceback per handle: slow
        errors = []
        loop.set_exception_handler(lambda loop, ctx: errors.append(ctx["message"]))
        unraisable = []
        hook, sys.unraisablehook = sys.unraisablehook, lambda u: unraisable.append(
            "%s: %s" % (type(u.exc_value).__name__, u.exc_value))
        try:
            return loop.run_until_complete(then_check_the_wake())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            gc.collect()
            sys.unraisablehook = hook
            self.assertEqual(errors, [], "the loop reported errors")
            self.assertEqual(unraisable, [], "errors were reported as unraisable")


class OnAsyncio(Loops, PythonToCpp, CppToPython, CancelledReads, unittest.TestCase):
    pass


class OnProactorLikeLoop(Loops, PythonToCpp, CppToPython, CancelledReads, unittest.TestCase):
    """A loop whose add_reader raises NotImplementedError (Windows' ProactorEventLoop): reader
    mode, chosen, falls back to call_soon_threadsafe by itself."""

    loop_factory = ProactorLikeLoop
    expected_wake = "threadsafe"


@unittest.skipIf(uvloop is None, "uvloop is not installed (Debian: python3-uvloop)")
class OnUvloop(Loops, PythonToCpp, CppToPython, CancelledReads, unittest.TestCase):
    loop_factory = staticmethod(uvloop.new_event_loop if uvloop else None)


class OnAsyncioThreadsafeWake(Loops, CancelledReads, unittest.TestCase):
    """Loops woken with call_soon_threadsafe (pyasio::set_loop_wake)."""

    wake = "threadsafe"


@unittest.skipIf(uvloop is None, "uvloop is not installed (Debian: python3-uvloop)")
class OnUvloopThreadsafeWake(Loops, CancelledReads, unittest.TestCase):
    loop_factory = staticmethod(uvloop.new_event_loop if uvloop else None)
    wake = "threadsafe"


if __name__ == "__main__":
    unittest.main()
