// SPDX-License-Identifier: BSL-1.0
// Streams both ways, exposed to Python; used by test_stream.py.
#include <pyasio.hpp>

#include <asio/bind_executor.hpp>
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

/// read_then_cancel(aiterable, n, ms): reads n items, then races next() against a timer of
/// ms (the C++ side cancels the wait when the timer wins), then calls next() once more.
/// (items, outcome of the race, outcome of the next() after it).
PyObject* read_then_cancel(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [iterable, n, ms] = pyasio::from_python<std::tuple<object, long, long>>(handle(args));
        auto s = pyasio::into_stream<long>(std::move(iterable), 8);
        return pyasio::future_into_py(
            [s = std::move(s), n = n, ms = ms]() mutable
            -> asio::awaitable<std::tuple<std::vector<long>, std::string, std::string>> {
                using namespace asio::experimental::awaitable_operators;
                std::vector<long> items;
                for (long i = 0; i < n; ++i)
                    items.push_back(*co_await s.next());
                asio::steady_timer t(co_await asio::this_coro::executor,
                                     std::chrono::milliseconds(ms));
                std::string race;
                try {
                    auto r = co_await (s.next() || t.async_wait(asio::use_awaitable));
                    race = r.index() == 0 ? "item" : "timeout";
                } catch (...) {
                    race = describe(std::current_exception());
                }
                std::string after;
                try {
                    std::optional<long> item = co_await s.next();
                    after = item ? "item " + std::to_string(*item) : "end";
                } catch (...) {
                    after = describe(std::current_exception());
                }
                co_return std::make_tuple(std::move(items), std::move(race), std::move(after));
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

PyMethodDef methods[] = {
    {"collect", collect, METH_VARARGS, "C++ reads an async iterable (into_stream<long>)"},
    {"collect_objects", collect_objects, METH_O, "into_stream<object>"},
    {"collect_call", collect_call, METH_VARARGS, "into_stream(async_function(fn)(n))"},
    {"read_then_cancel", read_then_cancel, METH_VARARGS, "next() cancelled by a timer"},
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
    {"counters", counters, METH_NOARGS, "(consumed, produced, ended, aborted, started)"},
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
