// SPDX-License-Identifier: BSL-1.0
// A C++ program that embeds Python with pyasio::run. Its main coroutine runs on the Asio
// runtime while Python's event loop runs on the main thread: C++ awaits Python coroutines, and
// those coroutines await C++ (the built-in module `native`, whose sleep_ms is an Asio timer).
// Run it with --uvloop to use uvloop's event loop.
#include <pyasio.hpp>

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

namespace {

// native.sleep_ms(ms): Python awaits an Asio timer on the runtime; the result is ms.
PyObject* sleep_ms(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        long ms = pyasio::from_python<long>(pyasio::handle(arg));
        return pyasio::future_into_py([ms]() -> asio::awaitable<long> {
            asio::steady_timer timer(co_await asio::this_coro::executor,
                                     std::chrono::milliseconds(ms));
            co_await timer.async_wait(asio::use_awaitable);
            co_return ms;
        });
    });
}

PyMethodDef native_methods[] = {{"sleep_ms", sleep_ms, METH_O, "Waits on an Asio timer."},
                                {nullptr, nullptr, 0, nullptr}};
PyModuleDef native_module = {PyModuleDef_HEAD_INIT,
                             "native",
                             "C++ for the embedded Python",
                             -1,
                             native_methods,
                             nullptr,
                             nullptr,
                             nullptr,
                             nullptr};
PyObject* init_native() {
    return PyModule_Create(&native_module);
}

// The Python side: in a real program, a module on sys.path.
const char* python_code = R"(
import asyncio
import native

async def fetch(name, ms):
    waited = await native.sleep_ms(ms)  # Python awaits C++
    return f"{name} after {waited} ms"

async def loop_name():
    return type(asyncio.get_running_loop()).__module__.split(".")[0]
)";

// Runs python_code in a fresh namespace; returns one of its functions. Needs the GIL.
pyasio::object define(const char* name) {
    pyasio::object ns = pyasio::steal(PyDict_New());
    PyDict_SetItemString(ns.ptr(), "__builtins__", PyEval_GetBuiltins());
    pyasio::object done =
        pyasio::steal(PyRun_String(python_code, Py_file_input, ns.ptr(), ns.ptr()));
    if (!done)
        throw pyasio::python_error::fetch();
    return pyasio::borrow(PyDict_GetItemString(ns.ptr(), name));
}

// The program's main coroutine, on the Asio runtime.
asio::awaitable<int> main_coroutine() {
    using namespace asio::experimental::awaitable_operators;
    pyasio::object fetch_fn, loop_name_fn;
    {
        pyasio::gil_acquire gil; // a short GIL scope: never across a co_await
        fetch_fn = define("fetch");
        loop_name_fn = define("loop_name");
    }
    // called on the loop thread for each use: this coroutine never takes the GIL for it
    pyasio::async_function fetch(std::move(fetch_fn));
    pyasio::async_function loop_name(std::move(loop_name_fn));

    std::string loop = co_await pyasio::into_future<std::string>(loop_name());
    std::printf("Python runs on the %s event loop\n", loop.c_str());

    // C++ awaits a Python coroutine, which awaits C++
    std::string one = co_await pyasio::into_future<std::string>(fetch("one", 20));
    std::printf("C++ got: %s\n", one.c_str());

    // two at once
    auto [two, three] = co_await (pyasio::into_future<std::string>(fetch("two", 30)) &&
                                  pyasio::into_future<std::string>(fetch("three", 10)));
    std::printf("C++ got: %s, %s\n", two.c_str(), three.c_str());
    co_return 0;
}

} // namespace

int main(int argc, char** argv) {
    pyasio::run_options options;
    options.modules = {{"native", init_native}};
    options.uvloop = argc > 1 && std::string(argv[1]) == "--uvloop";
    try {
        return pyasio::run(argc, argv, main_coroutine, options);
    } catch (const pyasio::interrupted& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 130;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
