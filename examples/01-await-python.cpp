// SPDX-License-Identifier: BSL-1.0
// C++ awaits Python coroutines, in a program that embeds Python with pyasio::run (03 shows the
// whole set-up). There are two ways to hand Python code to pyasio::into_future: an async
// function, called anew for each await (pyasio::async_function: the call is made on the event
// loop's thread), or one coroutine object, which Python lets you await only once. A Python
// exception arrives in C++ as pyasio::python_error.
#include <pyasio.hpp>

#include <cstdio>
#include <exception>

namespace {

// The Python side: in a real program, a module on sys.path.
const char* python_code = R"(
import asyncio

async def add(a, b):
    await asyncio.sleep(0.001)
    return a + b

async def price(item):
    await asyncio.sleep(0)
    return {"tea": 3, "cake": 5}[item]
)";

// Runs python_code in a fresh namespace and returns the function `name`. Needs the GIL.
pyasio::object define(const char* name) {
    pyasio::object ns = pyasio::steal(PyDict_New());
    PyDict_SetItemString(ns.ptr(), "__builtins__", PyEval_GetBuiltins());
    pyasio::object done =
        pyasio::steal(PyRun_String(python_code, Py_file_input, ns.ptr(), ns.ptr()));
    if (!done)
        throw pyasio::python_error::fetch();
    return pyasio::borrow(PyDict_GetItemString(ns.ptr(), name));
}

// The program's main coroutine. It runs on the Asio runtime, not on the loop's thread: it takes
// the GIL only in short scopes, never across a co_await.
asio::awaitable<int> main_coroutine() {
    pyasio::object add_fn, price_fn, coro;
    {
        pyasio::gil_acquire gil;
        add_fn = define("add");
        price_fn = define("price");
        coro = pyasio::call(add_fn, 20, 22); // one coroutine object: add(20, 22), not started
    }

    // (a) The async function. Each add(a, b) below is only a description of the call: into_future
    // hands it to the loop's thread, which converts the arguments, calls add there and awaits the
    // coroutine it returns. So it can be awaited again and again, without the GIL here.
    pyasio::async_function add(std::move(add_fn));
    for (int i = 1; i <= 3; ++i) {
        int sum = co_await pyasio::into_future<int>(add(i, 10));
        std::printf("async function: add(%d, 10) = %d\n", i, sum);
    }

    // (b) One coroutine object, awaited once: it runs to its result.
    pyasio::object same_coro;
    {
        pyasio::gil_acquire gil; // copying an object (an incref) needs the GIL
        same_coro = coro;
    }
    int sum = co_await pyasio::into_future<int>(std::move(coro));
    std::printf("coroutine object: add(20, 22) = %d\n", sum);

    // (c) The same coroutine object a second time: Python refuses, and its RuntimeError arrives
    // here as a python_error. To await Python code again, use (a).
    try {
        co_await pyasio::into_future<int>(std::move(same_coro));
    } catch (const pyasio::python_error& e) {
        std::printf("awaited again: caught pyasio::python_error: %s\n", e.what());
    }

    // A Python exception raised in the coroutine arrives as a python_error too: type and message
    // as Python has them (e.type(), e.value(), e.traceback() give the objects themselves).
    pyasio::async_function price(std::move(price_fn));
    int tea = co_await pyasio::into_future<int>(price("tea"));
    std::printf("price of tea: %d\n", tea);
    try {
        co_await pyasio::into_future<int>(price("soup"));
    } catch (const pyasio::python_error& e) {
        pyasio::gil_acquire gil;
        std::printf("price of soup: caught pyasio::python_error: %s (a KeyError: %s)\n", e.what(),
                    e.matches(pyasio::handle(PyExc_KeyError)) ? "yes" : "no");
    }
    co_return 0;
}

} // namespace

int main(int argc, char** argv) {
    try {
        return pyasio::run(argc, argv, main_coroutine);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
