// SPDX-License-Identifier: BSL-1.0
// The extension module that the setuptools and meson-python projects build into a wheel: an
// async round trip both ways. Python awaits C++ (double_later: an Asio timer, then a value), and
// C++ awaits Python (add_to_awaited: the C++ work awaits a Python awaitable it is handed).
#include <pyasio.hpp> // NOTE: before any Asio header: Asio's code then stays private to the module

#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <tuple>
#include <utility>

namespace {

// roundtrip.double_later(n, ms): Python awaits C++. Waits ms milliseconds on an Asio timer on
// the runtime's threads, then returns 2 * n.
PyObject* double_later(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [n, ms] =
            pyasio::from_python<std::tuple<std::int64_t, std::int64_t>>(pyasio::handle(args));
        return pyasio::future_into_py([n = n, ms = ms]() -> asio::awaitable<std::int64_t> {
            asio::steady_timer timer(co_await asio::this_coro::executor,
                                     std::chrono::milliseconds(ms));
            co_await timer.async_wait(asio::use_awaitable);
            co_return 2 * n;
        });
    });
}

// roundtrip.add_to_awaited(awaitable, k): C++ awaits Python. The C++ work awaits the awaitable
// (run on the event loop; its result converted to an integer there) and returns result + k.
// A Python exception raised by the awaitable comes back to the Python caller unchanged.
PyObject* add_to_awaited(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [awaitable, k] =
            pyasio::from_python<std::tuple<pyasio::object, std::int64_t>>(pyasio::handle(args));
        return pyasio::future_into_py(
            // NOTE: k = k, not k: clang 14 cannot capture a structured binding by name
            [aw = std::move(awaitable), k = k]() mutable -> asio::awaitable<std::int64_t> {
                std::int64_t result = co_await pyasio::into_future<std::int64_t>(std::move(aw));
                co_return result + k;
            });
    });
}

PyMethodDef methods[] = {
    {"double_later", double_later, METH_VARARGS,
     "double_later(n, ms): waits ms milliseconds on an Asio timer; returns 2 * n."},
    {"add_to_awaited", add_to_awaited, METH_VARARGS,
     "add_to_awaited(awaitable, k): C++ awaits the awaitable; returns its result + k."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT,
                      "roundtrip",
                      "Python awaits C++ and C++ awaits Python, built as a wheel.",
                      -1,
                      methods,
                      nullptr,
                      nullptr,
                      nullptr,
                      nullptr};

} // namespace

// Exported even with -fvisibility=hidden (CPython's PyMODINIT_FUNC exports it only from 3.9 on).
PYASIO_MODULE_INIT(roundtrip) {
    return PyModule_Create(&module);
}
