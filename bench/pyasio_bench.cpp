// SPDX-License-Identifier: BSL-1.0
// pyasio_bench: the benchmark interface (noop, echo, sleep_ms, spin, fail, await_seq,
// await_concurrent, and await_seq_local, await_concurrent_local on the loop executor; streams:
// count_stream, sum_stream; configure_runtime; eventfd_ping_pong, a C++ floor), served by
// pyasio.
// Measured by bench/future_into_py.py, bench/curves.py and bench/streams.py; see
// docs/benchmarks.md.
#include "burn_cpu.hpp"

#include <pyasio.hpp>

#include <asio/bind_executor.hpp>
#include <asio/steady_timer.hpp>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>

#if defined(__linux__)
#include <sys/eventfd.h>
#include <unistd.h>
#endif

namespace {
using pyasio::handle;

/// noop(): completes with None on the runtime.
PyObject* noop(PyObject*, PyObject*) {
    return pyasio::entry_point(
        [] { return pyasio::future_into_py([]() -> asio::awaitable<void> { co_return; }); });
}

/// echo(x): completes with x on the runtime.
PyObject* echo(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        return pyasio::future_into_py(
            [x = pyasio::borrow(arg)]() mutable -> asio::awaitable<pyasio::object> {
                co_return std::move(x);
            });
    });
}

/// sleep_ms(ms): waits ms milliseconds on an Asio steady_timer on the runtime. The timer's
/// async_wait is given as an initiation: no coroutine frame.
PyObject* sleep_ms(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        auto ms = std::chrono::milliseconds(pyasio::from_python<long>(handle(arg)));
        auto timer = std::make_shared<asio::steady_timer>(pyasio::default_executor(), ms);
        return pyasio::future_into_py([timer](auto&& token) {
            return timer->async_wait(std::forward<decltype(token)>(token));
        });
    });
}

/// spin(us): keeps a runtime thread busy for us microseconds of CPU time, then completes with
/// None: what the runtime's thread count decides.
PyObject* spin(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        long us = pyasio::from_python<long>(handle(arg));
        return pyasio::future_into_py([us]() -> asio::awaitable<void> {
            bench::burn_cpu(us);
            co_return;
        });
    });
}

/// configure_runtime(threads): the default runtime's thread count, before its first use.
PyObject* configure_runtime(PyObject*, PyObject* arg) {
    return pyasio::entry_point(
        [&] { pyasio::configure_runtime(pyasio::from_python<std::size_t>(handle(arg))); });
}

/// fail(msg): throws std::invalid_argument(msg) on the runtime; Python sees ValueError(msg).
PyObject* fail(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        return pyasio::future_into_py(
            [msg = pyasio::from_python<std::string>(handle(arg))]() -> asio::awaitable<void> {
                throw std::invalid_argument(msg);
                co_return;
            });
    });
}

/// Where await_* runs its C++ work: the default runtime, or the loop executor (the loop's
/// thread, no hop).
asio::any_io_executor work_executor(bool on_loop) {
    if (on_loop)
        return pyasio::loop_executor::current();
    return pyasio::default_executor();
}

/// await_seq(fn, n): C++ work awaits fn() n times in a row (fn is a Python async function);
/// completes with n.
PyObject* await_seq(PyObject* args, bool on_loop) {
    return pyasio::entry_point([&] {
        auto [fn, n] = pyasio::from_python<std::tuple<pyasio::object, long>>(handle(args));
        return pyasio::future_into_py(
            [fn = pyasio::async_function(std::move(fn)), n = n]() -> asio::awaitable<long> {
                for (long i = 0; i < n; ++i) // fn() is called on the loop thread: no GIL here
                    co_await pyasio::into_future<void>(fn());
                co_return n;
            },
            work_executor(on_loop));
    });
}

/// await_concurrent(fn, n): C++ work starts n fn() at once and awaits them all; completes with
/// n.
PyObject* await_concurrent(PyObject* args, bool on_loop) {
    return pyasio::entry_point([&] {
        auto [fn, n] = pyasio::from_python<std::tuple<pyasio::object, long>>(handle(args));
        return pyasio::future_into_py(
            [fn = pyasio::async_function(std::move(fn)), n = n]() -> asio::awaitable<long> {
                auto ex = co_await asio::this_coro::executor;
                auto left = std::make_shared<long>(n);
                auto error = std::make_shared<std::exception_ptr>();
                asio::steady_timer done(ex, asio::steady_timer::time_point::max());
                for (long i = 0; i < n; ++i) // fn() is called on the loop thread: no GIL here
                    pyasio::into_future<void>(
                        fn(),
                        asio::bind_executor(ex, [&done, left, error](const std::exception_ptr& e) {
                            if (e && !*error)
                                *error = e;
                            if (--*left == 0)
                                done.cancel();
                        }));
                if (n > 0) {
                    try {
                        co_await done.async_wait(asio::use_awaitable);
                    } catch (const std::system_error&) { // cancelled by the last completion
                    }
                }
                if (*error)
                    std::rethrow_exception(*error);
                co_return n;
            },
            work_executor(on_loop));
    });
}

/// count_stream(n, capacity): Python reads 0..n-1 written by a C++ producer on the runtime.
PyObject* count_stream(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [n, capacity] = pyasio::from_python<std::tuple<long, std::size_t>>(handle(args));
        return pyasio::stream_into_py<long>(
            [n = n](pyasio::stream_writer<long> out) -> asio::awaitable<void> {
                for (long i = 0; i < n; ++i)
                    co_await out.write(i);
            },
            capacity);
    });
}

/// sum_stream(aiterable, window, on_loop): C++ work reads the async iterable's ints
/// (into_stream<long>); completes with their sum.
PyObject* sum_stream(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [iterable, window, on_loop] =
            pyasio::from_python<std::tuple<pyasio::object, std::size_t, bool>>(handle(args));
        return pyasio::future_into_py(
            [s = pyasio::into_stream<long>(std::move(iterable),
                                           window)]() mutable -> asio::awaitable<long> {
                long sum = 0;
                while (std::optional<long> item = co_await s.next())
                    sum += *item;
                co_return sum;
            },
            work_executor(on_loop));
    });
}

#if defined(__linux__)
/// One eventfd, closed with its owner.
class event_fd {
public:
    event_fd() : fd_(::eventfd(0, EFD_CLOEXEC)) {
        if (fd_ < 0)
            throw std::system_error(errno, std::generic_category(), "eventfd");
    }
    ~event_fd() { ::close(fd_); }
    event_fd(const event_fd&) = delete;
    event_fd& operator=(const event_fd&) = delete;
    void signal() const {
        std::uint64_t one = 1;
        while (::write(fd_, &one, sizeof one) < 0)
            if (errno != EINTR)
                throw std::system_error(errno, std::generic_category(), "write");
    }
    void wait() const { // blocks until signalled, and takes the signal
        std::uint64_t value = 0;
        while (::read(fd_, &value, sizeof value) < 0)
            if (errno != EINTR)
                throw std::system_error(errno, std::generic_category(), "read");
    }

private:
    int fd_;
};
#endif

/// eventfd_ping_pong(n): seconds for n round trips between this thread and a second C++ thread
/// through two eventfds (each side blocks in read until the other writes), GIL released: the
/// floor of a cross-thread round trip (two thread wakes), which seq_noop also makes.
PyObject* eventfd_ping_pong(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        long n = pyasio::from_python<long>(handle(arg));
        if (n < 0)
            throw std::invalid_argument("eventfd_ping_pong: n must be 0 or more");
#if defined(__linux__)
        event_fd ping;
        event_fd pong;
        double seconds = 0;
        {
            pyasio::gil_release nogil;
            // NOTE: eventfd calls fail only when the system is out of resources; the other
            // thread's error is thrown here once it is joined
            std::exception_ptr error;
            std::thread other([&]() noexcept {
                try {
                    for (long i = 0; i < n; ++i) {
                        ping.wait();
                        pong.signal();
                    }
                } catch (...) {
                    error = std::current_exception();
                }
            });
            auto start = std::chrono::steady_clock::now();
            for (long i = 0; i < n; ++i) {
                ping.signal();
                pong.wait();
            }
            seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            other.join();
            if (error)
                std::rethrow_exception(error);
        }
        return seconds;
#else
        throw std::logic_error("eventfd_ping_pong: eventfds are Linux's");
#endif
    });
}

PyMethodDef methods[] = {
    {"noop", noop, METH_NOARGS, "noop(): completes with None on the runtime."},
    {"eventfd_ping_pong", eventfd_ping_pong, METH_O,
     "eventfd_ping_pong(n): seconds for n round trips between two C++ threads through two "
     "eventfds."},
    {"echo", echo, METH_O, "echo(x): completes with x on the runtime."},
    {"sleep_ms", sleep_ms, METH_O, "sleep_ms(ms): waits on an Asio steady_timer."},
    {"spin", spin, METH_O, "spin(us): keeps a runtime thread busy for us microseconds."},
    {"configure_runtime", configure_runtime, METH_O,
     "configure_runtime(threads): the runtime's thread count, before its first use."},
    {"fail", fail, METH_O, "fail(msg): raises ValueError(msg) from C++ on the runtime."},
    {"await_seq", [](PyObject*, PyObject* a) { return await_seq(a, false); }, METH_VARARGS,
     "await_seq(fn, n): C++ on the runtime awaits fn() n times in a row."},
    {"await_concurrent", [](PyObject*, PyObject* a) { return await_concurrent(a, false); },
     METH_VARARGS, "await_concurrent(fn, n): C++ on the runtime awaits n fn() started at once."},
    {"await_seq_local", [](PyObject*, PyObject* a) { return await_seq(a, true); }, METH_VARARGS,
     "await_seq_local(fn, n): await_seq on the loop executor."},
    {"await_concurrent_local", [](PyObject*, PyObject* a) { return await_concurrent(a, true); },
     METH_VARARGS, "await_concurrent_local(fn, n): await_concurrent on the loop executor."},
    {"count_stream", count_stream, METH_VARARGS,
     "count_stream(n, capacity): a C++ producer of 0..n-1 for async for."},
    {"sum_stream", sum_stream, METH_VARARGS,
     "sum_stream(aiterable, window, on_loop): C++ sums an async iterable's ints."},
    {nullptr, nullptr, 0, nullptr}};

// NOTE: one source, two modules: pyasio_bench (the full API) and, for 3.12+, pyasio_bench_abi3
// (the limited API, Py_LIMITED_API=0x030C0000): bench/CMakeLists.txt names the module
#if !defined(PYASIO_BENCH_MODULE)
#define PYASIO_BENCH_MODULE pyasio_bench
#endif
#define PYASIO_BENCH_STR2(x) #x
#define PYASIO_BENCH_STR(x) PYASIO_BENCH_STR2(x)

PyModuleDef module = {PyModuleDef_HEAD_INIT,
                      PYASIO_BENCH_STR(PYASIO_BENCH_MODULE),
                      "pyasio's benchmark module",
                      -1,
                      methods,
                      nullptr,
                      nullptr,
                      nullptr,
                      nullptr};
} // namespace

PYASIO_MODULE_INIT(PYASIO_BENCH_MODULE) {
    return PyModule_Create(&module);
}
