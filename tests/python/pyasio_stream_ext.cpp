// SPDX-License-Identifier: BSL-1.0
// Streams both ways, exposed to Python; used by test_stream.py.
#include <pyasio.hpp>

#include "wake_probe.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/multiple_exceptions.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <tuple>
#include <variant>
#include <vector>

namespace {
using pyasio::handle;
using pyasio::object;

std::atomic<long> consumed{0};          // items the C++ consumers took
std::atomic<long> produced{0};          // items the C++ producers wrote
std::atomic<long> producers_ended{0};   // producers that returned or threw
std::atomic<long> producers_aborted{0}; // ... of which with operation_aborted
std::atomic<long> producers_started{0};
std::atomic<long> cancelled_reads{0}; // next() calls a C++ cancellation ended

/// An outcome as text: "end", "aborted", "cancelled by python", "loop closed: <what>",
/// "python_error: <what>", "<type>: <what>" for other C++ exceptions.
std::string describe(const std::exception_ptr& e) {
    if (!e)
        return "end";
    try {
        std::rethrow_exception(e);
    } catch (const pyasio::task_cancelled&) {
        return "cancelled by python";
    } catch (const pyasio::event_loop_closed& x) {
        return std::string("loop closed: ") + x.what();
    } catch (const pyasio::python_error& x) {
        return std::string("python_error: ") + x.what();
    } catch (const std::system_error& x) {
        if (x.code() == asio::error::operation_aborted)
            return "aborted";
        return std::string("system_error: ") + x.what();
    } catch (const asio::multiple_exceptions& x) {
        return describe(x.first_exception());
    } catch (const std::logic_error& x) {
        return std::string("logic_error: ") + x.what();
    } catch (const std::exception& x) {
        return std::string("exception: ") + x.what();
    }
}

template <class T> using collected = std::tuple<std::vector<T>, std::string>;

/// Reads up to `limit` items (all when negative) of `s`, sleeping `pause_ms` after each; then
/// drops the stream. The items and how the reading ended.
template <class T>
asio::awaitable<collected<T>> read(pyasio::async_stream<T> s, long limit, long pause_ms) {
    std::vector<T> items;
    std::exception_ptr error;
    try {
        while (limit < 0 || static_cast<long>(items.size()) < limit) {
            std::optional<T> item = co_await s.next();
            if (!item)
                break;
            items.push_back(std::move(*item));
            consumed.fetch_add(1, std::memory_order_relaxed);
            if (pause_ms > 0) {
                asio::steady_timer t(co_await asio::this_coro::executor,
                                     std::chrono::milliseconds(pause_ms));
                co_await t.async_wait(asio::use_awaitable);
            }
        }
    } catch (...) {
        error = std::current_exception();
    }
    co_return collected<T>(std::move(items), describe(error));
}

/// collect(aiterable, window=64, limit=-1, pause_ms=0, on_loop=False): C++ reads the async
/// iterable as ints with into_stream<long>; (items, "end" or how it failed). on_loop: the
/// reading coroutine runs on the loop executor.
PyObject* collect(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        PyObject* iterable = nullptr;
        Py_ssize_t window = 64;
        long limit = -1, pause_ms = 0;
        int on_loop = 0;
        if (!PyArg_ParseTuple(args, "O|nllp", &iterable, &window, &limit, &pause_ms, &on_loop))
            pyasio::detail::throw_error_already_set();
        auto s =
            pyasio::into_stream<long>(pyasio::borrow(iterable), static_cast<std::size_t>(window));
        auto ex = on_loop ? asio::any_io_executor(pyasio::loop_executor::current())
                          : pyasio::default_executor();
        return pyasio::future_into_py(
            [s = std::move(s), limit, pause_ms]() mutable {
                return read<long>(std::move(s), limit, pause_ms);
            },
            ex);
    });
}

/// collect_objects(aiterable): the items as Python objects (into_stream<object>).
PyObject* collect_objects(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        auto s = pyasio::into_stream(pyasio::borrow(arg), 4);
        return pyasio::future_into_py(
            [s = std::move(s)]() mutable { return read<object>(std::move(s), -1, 0); });
    });
}

/// collect_call(fn, n): into_stream(async_function(fn)(n)): the call is made on the loop.
PyObject* collect_call(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [fn, n] = pyasio::from_python<std::tuple<object, long>>(handle(args));
        auto call = pyasio::async_function(std::move(fn))(n);
        return pyasio::future_into_py([call = std::move(call)]() mutable {
            return read<long>(pyasio::into_stream<long>(std::move(call)), -1, 0);
        });
    });
}

std::mutex recorded_mutex;
std::string recorded_outcome; // how read_recorded's reading ended ("" while it reads)

/// read_recorded(aiterable): C++ reads the stream and records how the reading ended (for a
/// loop that may close first); recorded() returns it.
PyObject* read_recorded(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        {
            std::lock_guard<std::mutex> lock(recorded_mutex);
            recorded_outcome.clear();
        }
        auto s = pyasio::into_stream<long>(pyasio::borrow(arg), 4);
        return pyasio::future_into_py([s = std::move(s)]() mutable -> asio::awaitable<void> {
            auto [items, end] = co_await read<long>(std::move(s), -1, 0);
            std::lock_guard<std::mutex> lock(recorded_mutex);
            recorded_outcome = std::to_string(items.size()) + " items, " + end;
        });
    });
}

PyObject* recorded(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        std::lock_guard<std::mutex> lock(recorded_mutex);
        return recorded_outcome;
    });
}

/// How a C++ cancellation of one next() is made: a timer racing it with `||`; `posts` round
/// trips through the executor racing it with `||` (started first, so that an item already
/// there is handed to the next() and, its handler not run yet, cancelled: `||` drops the
/// result of an operation it cancelled); or a cancellation slot bound to the next() that
/// another coroutine emits on (of `type`) after `posts` round trips.
enum class cancel_by { timer, round_trips, slot };

/// One next() of `s` that the C++ side may cancel: the item (nullopt at the end), or
/// operation_aborted when the cancellation won. Counts the cancellations that won.
asio::awaitable<std::optional<long>> next_or_cancelled(pyasio::async_stream<long>& s, cancel_by how,
                                                       long ms, int posts,
                                                       asio::cancellation_type type) {
    using namespace asio::experimental::awaitable_operators;
    auto ex = co_await asio::this_coro::executor;
    if (how == cancel_by::timer) {
        asio::steady_timer t(ex, std::chrono::milliseconds(ms));
        auto r = co_await (s.next() || t.async_wait(asio::use_awaitable));
        if (r.index() == 0)
            co_return std::get<0>(r);
        cancelled_reads.fetch_add(1);
        throw std::system_error(asio::error::operation_aborted);
    }
    if (how == cancel_by::round_trips) {
        auto trips = [](int n) -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            for (int i = 0; i <= n; ++i)
                co_await asio::post(ex, asio::use_awaitable);
        };
        auto r = co_await (trips(posts) || s.next(asio::use_awaitable));
        if (r.index() == 1)
            co_return std::get<1>(r);
        cancelled_reads.fetch_add(1);
        throw std::system_error(asio::error::operation_aborted);
    }
    auto signal = std::make_shared<asio::cancellation_signal>();
    asio::co_spawn(
        ex,
        [signal, posts, type]() -> asio::awaitable<void> {
            // NOTE: co_spawn starts this at once (dispatch): the next() below starts during
            // the first round trip
            auto ex = co_await asio::this_coro::executor;
            for (int i = 0; i <= posts; ++i)
                co_await asio::post(ex, asio::use_awaitable);
            signal->emit(type);
        },
        asio::detached);
    try {
        co_return co_await s.next(
            asio::bind_cancellation_slot(signal->slot(), asio::use_awaitable));
    } catch (const std::system_error& e) {
        if (e.code() == asio::error::operation_aborted)
            cancelled_reads.fetch_add(1);
        throw;
    }
}

/// read_then_cancel(aiterable, n, how): reads n items, then one next() that the C++ side
/// cancels ("timer": raced with a 1 ms timer by `||`; "round_trip": raced by `||` with one
/// round trip through the executor, started first; "slot": a bound cancellation slot emitted
/// on after one round trip), then the rest. (items before, outcome of the cancelled read,
/// items after, how the reading ended). cancelled_reads() counts the cancellation once it
/// won.
PyObject* read_then_cancel(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [iterable, n, how] =
            pyasio::from_python<std::tuple<object, long, std::string>>(handle(args));
        auto s = pyasio::into_stream<long>(std::move(iterable), 8);
        cancel_by by = how == "timer"        ? cancel_by::timer
                       : how == "round_trip" ? cancel_by::round_trips
                                             : cancel_by::slot;
        return pyasio::future_into_py(
            [s = std::move(s), n = n, by]() mutable
            -> asio::awaitable<
                std::tuple<std::vector<long>, std::string, std::vector<long>, std::string>> {
                std::vector<long> before;
                for (long i = 0; i < n; ++i)
                    before.push_back(*co_await s.next());
                std::string race;
                try {
                    std::optional<long> item =
                        co_await next_or_cancelled(s, by, 1, 0, asio::cancellation_type::terminal);
                    race = item ? "item " + std::to_string(*item) : "end";
                } catch (...) {
                    race = describe(std::current_exception());
                }
                auto [after, end] = co_await read<long>(std::move(s), -1, 0);
                co_return std::make_tuple(std::move(before), std::move(race), std::move(after),
                                          std::move(end));
            });
    });
}

/// read_with_cancels(aiterable, seed, window): C++ reads the whole stream; each next() is,
/// at random (seeded), a plain one, one raced by `||` with a timer of 0-1 ms or with 0-3
/// round trips through the executor, or one whose bound slot is emitted on (terminal,
/// partial or total) after 0-3 round trips. (the items, how many reads a cancellation ended,
/// how the reading ended).
PyObject* read_with_cancels(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [iterable, seed, window] =
            pyasio::from_python<std::tuple<object, long, std::size_t>>(handle(args));
        auto s = pyasio::into_stream<long>(std::move(iterable), window);
        return pyasio::future_into_py(
            [s = std::move(s), seed = seed]() mutable
            -> asio::awaitable<std::tuple<std::vector<long>, long, std::string>> {
                std::mt19937 rng(static_cast<std::mt19937::result_type>(seed));
                const asio::cancellation_type types[] = {asio::cancellation_type::terminal,
                                                         asio::cancellation_type::partial,
                                                         asio::cancellation_type::total};
                std::vector<long> items;
                long aborted = 0;
                std::exception_ptr error;
                try {
                    for (;;) {
                        std::optional<long> item;
                        unsigned how = rng() % 4;
                        if (how == 0) {
                            item = co_await s.next();
                        } else {
                            const cancel_by by[] = {cancel_by::timer, cancel_by::round_trips,
                                                    cancel_by::slot};
                            try {
                                item = co_await next_or_cancelled(
                                    s, by[how - 1], static_cast<long>(rng() % 2),
                                    static_cast<int>(rng() % 4), types[rng() % 3]);
                            } catch (const std::system_error& e) {
                                if (e.code() != asio::error::operation_aborted)
                                    throw;
                                ++aborted;
                                continue;
                            }
                        }
                        if (!item)
                            break;
                        items.push_back(*item);
                    }
                } catch (...) {
                    error = std::current_exception();
                }
                co_return std::make_tuple(std::move(items), aborted, describe(error));
            });
    });
}

/// two_nexts(aiterable): a next() while another waits; how the second ended.
PyObject* two_nexts(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        auto s = pyasio::into_stream<long>(pyasio::borrow(arg));
        return pyasio::future_into_py([s = std::move(s)]() mutable -> asio::awaitable<std::string> {
            auto ex = co_await asio::this_coro::executor;
            s.next(asio::bind_executor(
                ex, [](const std::exception_ptr&, const std::optional<long>&) {}));
            try {
                co_await s.next();
                co_return "both";
            } catch (...) {
                co_return describe(std::current_exception());
            }
        });
    });
}

/// into_stream_of(x): into_stream(x) at the call (TypeError for what is not async-iterable).
PyObject* into_stream_of(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] { auto s = pyasio::into_stream(pyasio::borrow(arg)); });
}

/// into_stream_window(aiterable, window): ValueError for window 0.
PyObject* into_stream_window(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [iterable, window] =
            pyasio::from_python<std::tuple<object, std::size_t>>(handle(args));
        auto s = pyasio::into_stream(std::move(iterable), window);
    });
}

// --- C++ -> Python ---

/// Counts a producer's end: "returned", "aborted", or another error.
struct producer_count {
    producer_count() { producers_started.fetch_add(1); }
    ~producer_count() { producers_ended.fetch_add(1); }
};

asio::awaitable<void> write_range(pyasio::stream_writer<long> out, long n, long pause_ms,
                                  std::string fail) {
    producer_count count;
    try {
        for (long i = 0; n < 0 || i < n; ++i) {
            if (pause_ms > 0) {
                asio::steady_timer t(co_await asio::this_coro::executor,
                                     std::chrono::milliseconds(pause_ms));
                co_await t.async_wait(asio::use_awaitable);
            }
            co_await out.write(i);
            produced.fetch_add(1, std::memory_order_relaxed);
        }
    } catch (const std::system_error& e) {
        if (e.code() == asio::error::operation_aborted)
            producers_aborted.fetch_add(1);
        throw;
    }
    if (!fail.empty())
        throw std::runtime_error(fail);
}

/// count(n, capacity=64, pause_ms=0, fail=""): a C++ producer of 0..n-1 (for ever when n < 0),
/// pausing pause_ms before each item; then throws runtime_error(fail) unless fail is empty.
PyObject* count(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        long n = 0, pause_ms = 0;
        Py_ssize_t capacity = 64;
        const char* fail = "";
        if (!PyArg_ParseTuple(args, "l|nls", &n, &capacity, &pause_ms, &fail))
            pyasio::detail::throw_error_already_set();
        return pyasio::stream_into_py<long>(
            [n, pause_ms, fail = std::string(fail)](pyasio::stream_writer<long> out) {
                return write_range(std::move(out), n, pause_ms, fail);
            },
            static_cast<std::size_t>(capacity));
    });
}

/// strings(): a producer of strings, one of them not valid UTF-8.
PyObject* strings(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        return pyasio::stream_into_py<std::string>(
            [](pyasio::stream_writer<std::string> out) -> asio::awaitable<void> {
                co_await out.write("ok");
                co_await out.write("\xff\xfe");
                co_await out.write("after");
            });
    });
}

/// channel_count(n, capacity, error=False): an unbuffered concurrent channel fed 0..n-1 by a
/// sender on the runtime, then closed (or, with error, a value sent with an error code).
/// NOTE: unbuffered: Asio 1.22's close() drops the values still in a channel's buffer.
PyObject* channel_count(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        long n = 0;
        Py_ssize_t capacity = 64;
        int error = 0;
        if (!PyArg_ParseTuple(args, "l|np", &n, &capacity, &error))
            pyasio::detail::throw_error_already_set();
        using channel = asio::experimental::concurrent_channel<void(asio::error_code, long)>;
        auto ch = std::make_shared<channel>(pyasio::default_executor(), 0);
        asio::co_spawn(
            pyasio::default_executor(),
            [ch, n, error]() -> asio::awaitable<void> {
                for (long i = 0; i < n; ++i)
                    co_await ch->async_send(asio::error_code(), i, asio::use_awaitable);
                if (error)
                    co_await ch->async_send(asio::error::connection_reset, 0L, asio::use_awaitable);
                ch->close();
            },
            asio::detached);
        return pyasio::channel_into_py(ch, static_cast<std::size_t>(capacity));
    });
}

std::mutex channel_mutex;
std::weak_ptr<void> left_channel; // channel_left's channel, alive while anyone holds it

/// channel_left(n): a channel fed 0..n-1 by a sender that then stops without closing it: only
/// the stream's pending receive still holds it. channel_alive() tells whether it lives.
PyObject* channel_left(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        long n = pyasio::from_python<long>(handle(arg));
        using channel = asio::experimental::concurrent_channel<void(asio::error_code, long)>;
        auto ch = std::make_shared<channel>(pyasio::default_executor(), 0);
        {
            std::lock_guard<std::mutex> lock(channel_mutex);
            left_channel = ch;
        }
        asio::co_spawn(
            pyasio::default_executor(),
            [ch, n]() -> asio::awaitable<void> {
                for (long i = 0; i < n; ++i)
                    co_await ch->async_send(asio::error_code(), i, asio::use_awaitable);
            },
            asio::detached);
        return pyasio::channel_into_py(ch, 4);
    });
}

PyObject* channel_alive(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        std::lock_guard<std::mutex> lock(channel_mutex);
        return !left_channel.expired();
    });
}

using fed_channel = asio::experimental::concurrent_channel<void(asio::error_code, long)>;
std::mutex fed_mutex;
std::shared_ptr<fed_channel> fed_values; // what feed() sends to the stream fed() made last
bool fed_by_channel = false;

/// fed(capacity, by_channel=False): a stream of the values feed(v) sends from now on, through
/// a buffered concurrent channel: with by_channel, channel_into_py of it, ended by feed_end()
/// (which closes it: call it once every value was read); else a stream_into_py producer
/// (counted by counters()) that writes the values it receives, and returns at feed_end().
PyObject* fed(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        Py_ssize_t capacity = 4;
        int by_channel = 0;
        if (!PyArg_ParseTuple(args, "n|p", &capacity, &by_channel))
            pyasio::detail::throw_error_already_set();
        auto ch = std::make_shared<fed_channel>(pyasio::default_executor(), 1024);
        {
            std::lock_guard<std::mutex> lock(fed_mutex);
            fed_values = ch;
            fed_by_channel = by_channel != 0;
        }
        if (by_channel)
            return pyasio::channel_into_py(ch, static_cast<std::size_t>(capacity));
        return pyasio::stream_into_py<long>(
            [ch](pyasio::stream_writer<long> out) -> asio::awaitable<void> {
                producer_count count;
                try {
                    for (;;) {
                        long v = co_await ch->async_receive(asio::use_awaitable);
                        if (v < 0)
                            co_return;
                        co_await out.write(v);
                        produced.fetch_add(1, std::memory_order_relaxed);
                    }
                } catch (const std::system_error& e) {
                    if (e.code() == asio::error::operation_aborted)
                        producers_aborted.fetch_add(1);
                    throw;
                }
            },
            static_cast<std::size_t>(capacity));
    });
}

/// feed(v): sends v to the stream fed() made last (its channel's buffer holds 1024).
PyObject* feed(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        long v = pyasio::from_python<long>(handle(arg));
        std::lock_guard<std::mutex> lock(fed_mutex);
        if (!fed_values || !fed_values->try_send(asio::error_code(), v))
            throw std::logic_error("feed: no stream, or its channel is full");
    });
}

/// feed_end(): ends the stream fed() made last.
PyObject* feed_end(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        std::lock_guard<std::mutex> lock(fed_mutex);
        if (!fed_values)
            throw std::logic_error("feed_end: no stream");
        if (fed_by_channel)
            fed_values->close();
        else if (!fed_values->try_send(asio::error_code(), -1L))
            throw std::logic_error("feed_end: the channel is full");
        fed_values.reset();
    });
}

/// set_wake("reader" | "threadsafe"): how loops bridged from now on are woken.
PyObject* set_wake(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        std::string mode = pyasio::from_python<std::string>(handle(arg));
        if (mode == "reader")
            pyasio::set_loop_wake(pyasio::loop_wake::reader);
        else if (mode == "threadsafe")
            pyasio::set_loop_wake(pyasio::loop_wake::call_soon_threadsafe);
        else
            throw std::invalid_argument("wake mode must be 'reader' or 'threadsafe'");
    });
}

/// shutdown_and_restart(): shuts this module's runtime down (grace 5 s), then configures it
/// again (2 threads).
PyObject* shutdown_and_restart(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        pyasio::shutdown_runtime(std::chrono::seconds(5));
        pyasio::configure_runtime(2);
    });
}

/// stream_capacity(capacity): ValueError for 0.
PyObject* stream_capacity(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        auto capacity = pyasio::from_python<std::size_t>(handle(arg));
        return pyasio::stream_into_py<long>(
            [](pyasio::stream_writer<long>) -> asio::awaitable<void> { co_return; }, capacity);
    });
}

/// channel_none(): channel_into_py of an empty shared_ptr (ValueError).
PyObject* channel_none(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        using channel = asio::experimental::concurrent_channel<void(asio::error_code, long)>;
        return pyasio::channel_into_py(std::shared_ptr<channel>());
    });
}

/// counters(): (consumed, produced, producers_ended, producers_aborted, producers_started).
PyObject* counters(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        return std::make_tuple(consumed.load(), produced.load(), producers_ended.load(),
                               producers_aborted.load(), producers_started.load());
    });
}

/// cancelled_reads(): how many next() calls a C++ cancellation ended (read_then_cancel,
/// read_with_cancels).
PyObject* cancelled_reads_count(PyObject*, PyObject*) {
    return pyasio::entry_point([] { return cancelled_reads.load(); });
}

PyMethodDef methods[] = {
    {"collect", collect, METH_VARARGS, "C++ reads an async iterable (into_stream<long>)"},
    {"collect_objects", collect_objects, METH_O, "into_stream<object>"},
    {"collect_call", collect_call, METH_VARARGS, "into_stream(async_function(fn)(n))"},
    {"read_then_cancel", read_then_cancel, METH_VARARGS, "one next() cancelled by C++"},
    {"read_with_cancels", read_with_cancels, METH_VARARGS, "next() cancelled at random"},
    {"two_nexts", two_nexts, METH_O, "two next() at once"},
    {"read_recorded", read_recorded, METH_O, "C++ reads; the outcome is recorded"},
    {"recorded", recorded, METH_NOARGS, "read_recorded's outcome"},
    {"into_stream_of", into_stream_of, METH_O, "into_stream(x)"},
    {"into_stream_window", into_stream_window, METH_VARARGS, "into_stream(x, window)"},
    {"count", count, METH_VARARGS, "a C++ producer for async for"},
    {"strings", strings, METH_NOARGS, "a producer of strings"},
    {"channel_count", channel_count, METH_VARARGS, "an Asio channel for async for"},
    {"stream_capacity", stream_capacity, METH_O, "stream_into_py with a capacity"},
    {"channel_none", channel_none, METH_NOARGS, "channel_into_py(nullptr)"},
    {"shutdown_and_restart", shutdown_and_restart, METH_NOARGS, "shutdown_runtime, then again"},
    {"channel_left", channel_left, METH_O, "a channel its sender stops feeding"},
    {"channel_alive", channel_alive, METH_NOARGS, "channel_left's channel still held?"},
    {"fed", fed, METH_VARARGS, "a stream of the values feed() sends"},
    {"feed", feed, METH_O, "sends a value to fed()'s stream"},
    {"feed_end", feed_end, METH_NOARGS, "ends fed()'s stream"},
    {"set_wake", set_wake, METH_O, "'reader' or 'threadsafe' for loops bridged from now on"},
    {"counters", counters, METH_NOARGS, "(consumed, produced, ended, aborted, started)"},
    {"cancelled_reads", cancelled_reads_count, METH_NOARGS, "next() calls C++ cancelled"},
    PYASIO_TEST_WAKE_PROBE_METHODS,
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT,
                      "_pyasio_stream_test",
                      "pyasio's stream test module",
                      -1,
                      methods,
                      nullptr,
                      nullptr,
                      nullptr,
                      nullptr};
} // namespace

PYASIO_MODULE_INIT(_pyasio_stream_test) {
    return PyModule_Create(&module);
}
