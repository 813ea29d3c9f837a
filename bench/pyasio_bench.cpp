// SPDX-License-Identifier: BSL-1.0
// pyasio_bench: the benchmark interface (noop, echo, sleep_ms, fail), served by pyasio.
// Measured by bench/future_into_py.py; see docs/benchmarks.md.
#include <pyasio.hpp>

#include <asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

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

PyMethodDef methods[] = {
    {"noop", noop, METH_NOARGS, "noop(): completes with None on the runtime."},
    {"echo", echo, METH_O, "echo(x): completes with x on the runtime."},
    {"sleep_ms", sleep_ms, METH_O, "sleep_ms(ms): waits on an Asio steady_timer."},
    {"fail", fail, METH_O, "fail(msg): raises ValueError(msg) from C++ on the runtime."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT,
                      "pyasio_bench",
                      "pyasio's benchmark module",
                      -1,
                      methods,
                      nullptr,
                      nullptr,
                      nullptr,
                      nullptr};
} // namespace

PYASIO_MODULE_INIT(pyasio_bench) {
    return PyModule_Create(&module);
}
