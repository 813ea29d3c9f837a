// SPDX-License-Identifier: BSL-1.0
// An extension module whose async functions are C++ coroutines on Asio: Python awaits them like
// any coroutine (see main.py). sleep_ms waits on an Asio timer; connect opens a TCP connection
// with Asio and reads the line the server sends. C++ errors arrive in Python as the matching
// exceptions (a refused connection as ConnectionRefusedError).
#include <pyasio.hpp>

#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <tuple>

namespace {

// await_cpp.sleep_ms(ms): waits ms milliseconds on an Asio timer; the result is ms.
PyObject* sleep_ms(PyObject*, PyObject* arg) {
    // entry_point: the result becomes a Python object, a C++ exception a Python exception.
    return pyasio::entry_point([&] {
        // Convert the arguments here, on the loop's thread with the GIL: the work runs on the
        // runtime's threads, which never hold the GIL, so it gets plain C++ values.
        long ms = pyasio::from_python<long>(pyasio::handle(arg));
        return pyasio::future_into_py([ms]() -> asio::awaitable<long> {
            asio::steady_timer timer(co_await asio::this_coro::executor,
                                     std::chrono::milliseconds(ms));
            co_await timer.async_wait(asio::use_awaitable);
            co_return ms;
        });
    });
}

// await_cpp.connect(host, port): connects to host:port over TCP and returns the first line the
// server sends (without its newline).
PyObject* connect(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [host, port] =
            pyasio::from_python<std::tuple<std::string, unsigned short>>(pyasio::handle(args));
        asio::ip::tcp::endpoint server(asio::ip::make_address(host), port);
        return pyasio::future_into_py([server]() -> asio::awaitable<std::string> {
            asio::ip::tcp::socket socket(co_await asio::this_coro::executor);
            co_await socket.async_connect(server, asio::use_awaitable);
            std::string line;
            std::size_t n = co_await asio::async_read_until(socket, asio::dynamic_buffer(line),
                                                            '\n', asio::use_awaitable);
            line.resize(n - 1);
            co_return line;
        });
    });
}

PyMethodDef methods[] = {
    {"sleep_ms", sleep_ms, METH_O, "sleep_ms(ms): waits on an Asio timer; returns ms."},
    {"connect", connect, METH_VARARGS,
     "connect(host, port): the first line a TCP server sends, read with Asio."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT,
                      "await_cpp",
                      "Async functions written as C++ coroutines on Asio.",
                      -1,
                      methods,
                      nullptr,
                      nullptr,
                      nullptr,
                      nullptr};

} // namespace

// Exported even with -fvisibility=hidden (CPython's PyMODINIT_FUNC exports it only from 3.9 on).
PYASIO_MODULE_INIT(await_cpp) {
    return PyModule_Create(&module);
}
