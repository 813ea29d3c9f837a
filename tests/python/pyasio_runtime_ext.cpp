// SPDX-License-Identifier: BSL-1.0
// The runtime: configure it, install your own io_context, shut it down with work in flight;
// used by test_runtime.py.
#include <pyasio.hpp>

#include "wake_probe.hpp"

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_future.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>

#include <unistd.h>

namespace {
using pyasio::handle;

/// sleep_ms(ms): waits on an Asio timer on the runtime.
PyObject* sleep_ms(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        auto ms = std::chrono::milliseconds(pyasio::from_python<long>(handle(arg)));
        auto timer = std::make_shared<asio::steady_timer>(pyasio::default_executor(), ms);
        return pyasio::future_into_py([timer](auto&& token) {
            return timer->async_wait(std::forward<decltype(token)>(token));
        });
    });
}

/// sleep_in_work(ms): the timer is made inside the work, on the executor it runs on.
PyObject* sleep_in_work(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        auto ms = std::chrono::milliseconds(pyasio::from_python<long>(handle(arg)));
        return pyasio::future_into_py([ms]() -> asio::awaitable<void> {
            asio::steady_timer timer(co_await asio::this_coro::executor, ms);
            co_await timer.async_wait(asio::use_awaitable);
        });
    });
}

/// shutdown_runtime(grace_ms)
PyObject* shutdown_runtime(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        pyasio::shutdown_runtime(std::chrono::milliseconds(pyasio::from_python<long>(handle(arg))));
    });
}

/// configure_runtime(threads)
PyObject* configure_runtime(PyObject*, PyObject* arg) {
    return pyasio::entry_point(
        [&] { pyasio::configure_runtime(pyasio::from_python<std::size_t>(handle(arg))); });
}

/// runtime_thread_count()
PyObject* runtime_thread_count(PyObject*, PyObject*) {
    return pyasio::entry_point([] { return pyasio::runtime_thread_count(); });
}

/// A user's own io_context, run by a thread of the user's.
struct own_context {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    std::thread thread{[this] { io.run(); }};
    ~own_context() {
        work.reset();
        io.stop();
        thread.join();
    }
};
std::unique_ptr<own_context> own;

/// install_own_io_context(): install_runtime with an io_context this module runs.
PyObject* install_own_io_context(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        if (!own)
            own = std::make_unique<own_context>();
        pyasio::install_runtime(own->io);
    });
}

/// on_own_io_context(): future_into_py work reports whether it runs on the own io_context's
/// thread.
PyObject* on_own_io_context(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        return pyasio::future_into_py([]() -> asio::awaitable<bool> {
            asio::steady_timer timer(co_await asio::this_coro::executor,
                                     std::chrono::milliseconds(1));
            co_await timer.async_wait(asio::use_awaitable);
            co_return own&& std::this_thread::get_id() == own->thread.get_id();
        });
    });
}

/// own_io_context_stopped(): whether the own io_context was stopped (pyasio never stops it).
PyObject* own_io_context_stopped(PyObject*, PyObject*) {
    return pyasio::entry_point([] { return own && own->io.stopped(); });
}

/// block_on_awaitable(aw, loop): pyasio::block_on(aw, task_locals::of(loop)) on a new thread;
/// its result, or the error it threw.
PyObject* block_on_awaitable(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto parsed = pyasio::from_python<std::tuple<pyasio::object, pyasio::object>>(handle(args));
        pyasio::object aw = std::move(std::get<0>(parsed));
        pyasio::object loop = std::move(std::get<1>(parsed));
        pyasio::task_locals locals = pyasio::task_locals::of(loop);
        std::exception_ptr error;
        pyasio::object result;
        {
            pyasio::gil_release nogil;
            std::thread([&] {
                try {
                    result = pyasio::block_on(std::move(aw), locals);
                } catch (...) {
                    error = std::current_exception();
                }
            }).join();
        }
        if (error)
            std::rethrow_exception(error);
        return result;
    });
}

/// block_on_sleep(ms[, announce]): synchronous: runs a C++ coroutine (a timer wait) to
/// completion with pyasio::block_on; returns ms. With announce, the coroutine first writes
/// "started" to stdout (fd 1, no GIL): block_on is then waiting.
PyObject* block_on_sleep(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        long ms_count = 0;
        int announce = 0;
        if (!PyArg_ParseTuple(args, "l|p", &ms_count, &announce))
            throw pyasio::python_error::fetch();
        auto ms = std::chrono::milliseconds(ms_count);
        return pyasio::block_on([ms, announce]() -> asio::awaitable<long> {
            if (announce != 0)
                (void)!::write(1, "started\n", 8);
            asio::steady_timer timer(co_await asio::this_coro::executor, ms);
            co_await timer.async_wait(asio::use_awaitable);
            co_return static_cast<long>(ms.count());
        });
    });
}

/// gil_timers(fn, n): a coroutine holds the GIL with pyasio::async_gil, calls fn(i) and awaits
/// a timer n times, the GIL released for each wait; returns n.
PyObject* gil_timers(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [f, n] = pyasio::from_python<std::tuple<pyasio::object, long>>(handle(args));
        auto fn = std::make_shared<const pyasio::object>(std::move(f));
        return pyasio::future_into_py([fn, n = n]() -> asio::awaitable<long> {
            asio::steady_timer timer(co_await asio::this_coro::executor);
            pyasio::async_gil gil;
            for (long i = 0; i < n; ++i) {
                pyasio::call(*fn, i); // Python, with the GIL
                timer.expires_after(std::chrono::microseconds(0));
                co_await gil.release_during(timer.async_wait(asio::use_awaitable));
                if (!pyasio::gil::held())
                    throw std::logic_error("resumed without the GIL");
            }
            co_return n;
        });
    });
}

/// task_locals_of(loop[, context]): pyasio::task_locals::of, converted to (loop, context).
PyObject* task_locals_of(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        PyObject* loop = nullptr;
        PyObject* context = nullptr;
        if (!PyArg_ParseTuple(args, "O|O", &loop, &context))
            throw pyasio::python_error::fetch();
        return context != nullptr ? pyasio::task_locals::of(handle(loop), handle(context))
                                  : pyasio::task_locals::of(handle(loop));
    });
}

/// await_with_locals_of(loop, fn[, context]): names the loop (and context) with
/// pyasio::task_locals::of on this thread, then a plain C++ thread awaits fn() with into_future
/// and those locals; returns fn's result.
PyObject* await_with_locals_of(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        PyObject* loop = nullptr;
        PyObject* fn = nullptr;
        PyObject* context = nullptr;
        if (!PyArg_ParseTuple(args, "OO|O", &loop, &fn, &context))
            throw pyasio::python_error::fetch();
        pyasio::task_locals locals = context != nullptr
                                         ? pyasio::task_locals::of(handle(loop), handle(context))
                                         : pyasio::task_locals::of(handle(loop));
        pyasio::async_function f(pyasio::borrow(fn));
        std::future<pyasio::object> result;
        {
            pyasio::gil_release nogil;
            std::thread([&] {
                result = pyasio::into_future(f(), locals, asio::use_future);
            }).join();
            result.wait();
        }
        return result.get();
    });
}

/// set_loop_wake(mode): pyasio::set_loop_wake, "reader" or "threadsafe" (for this module's
/// bridges: every extension has its own copy of pyasio).
PyObject* set_loop_wake(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        std::string mode = pyasio::from_python<std::string>(handle(arg));
        if (mode != "reader" && mode != "threadsafe")
            throw std::invalid_argument("the wake mode is 'reader' or 'threadsafe'");
        pyasio::set_loop_wake(mode == "reader" ? pyasio::loop_wake::reader
                                               : pyasio::loop_wake::call_soon_threadsafe);
    });
}

/// current_loop(): pyasio::get_current_loop().
PyObject* current_loop(PyObject*, PyObject*) {
    return pyasio::entry_point([] { return pyasio::get_current_loop(); });
}

/// run_cpp_until_complete(loop, fn): pyasio::run_until_complete with C++ work that awaits
/// fn() (an async function) on that loop; returns its result.
PyObject* run_cpp_until_complete(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [loop, f] =
            pyasio::from_python<std::tuple<pyasio::object, pyasio::object>>(handle(args));
        pyasio::async_function fn(std::move(f));
        return pyasio::run_until_complete(loop, [fn]() -> asio::awaitable<pyasio::object> {
            co_return co_await pyasio::into_future(fn()); // the loop given, no argument needed
        });
    });
}

/// run_awaiting(fn): pyasio::run (in this Python program) with a main that awaits fn() on
/// run's own loop; returns its result.
PyObject* run_awaiting(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        pyasio::async_function fn(pyasio::borrow(arg));
        return pyasio::run([fn]() -> asio::awaitable<pyasio::object> {
            co_return co_await pyasio::into_future(fn());
        });
    });
}

PyMethodDef methods[] = {
    {"run_awaiting", run_awaiting, METH_O, "pyasio::run awaiting fn() on its own loop"},
    {"run_cpp_until_complete", run_cpp_until_complete, METH_VARARGS,
     "pyasio::run_until_complete(loop, C++ work)"},
    {"task_locals_of", task_locals_of, METH_VARARGS, "pyasio::task_locals::of(loop[, context])"},
    {"await_with_locals_of", await_with_locals_of, METH_VARARGS,
     "into_future(fn(), task_locals::of(loop[, context])) from a plain C++ thread"},
    {"current_loop", current_loop, METH_NOARGS, "pyasio::get_current_loop()"},
    {"set_loop_wake", set_loop_wake, METH_O, "pyasio::set_loop_wake"},
    {"gil_timers", gil_timers, METH_VARARGS, "async_gil across n timer waits"},
    {"block_on_awaitable", block_on_awaitable, METH_VARARGS,
     "pyasio::block_on(aw, locals of loop) on a plain thread"},
    {"block_on_sleep", block_on_sleep, METH_VARARGS, "pyasio::block_on(a timer wait)"},
    {"sleep_ms", sleep_ms, METH_O, "waits on an Asio timer"},
    {"sleep_in_work", sleep_in_work, METH_O, "waits on a timer made inside the work"},
    {"shutdown_runtime", shutdown_runtime, METH_O, "pyasio::shutdown_runtime(grace)"},
    {"configure_runtime", configure_runtime, METH_O, "pyasio::configure_runtime(threads)"},
    {"runtime_thread_count", runtime_thread_count, METH_NOARGS, "threads of the runtime"},
    {"install_own_io_context", install_own_io_context, METH_NOARGS, "install_runtime(io)"},
    {"on_own_io_context", on_own_io_context, METH_NOARGS, "where work runs"},
    {"own_io_context_stopped", own_io_context_stopped, METH_NOARGS, "io.stopped()"},
    PYASIO_TEST_WAKE_PROBE_METHODS,
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT,
                      "_pyasio_runtime_test",
                      "pyasio's runtime test module",
                      -1,
                      methods,
                      nullptr,
                      nullptr,
                      nullptr,
                      nullptr};
} // namespace

PYASIO_MODULE_INIT(_pyasio_runtime_test) {
    return PyModule_Create(&module);
}
