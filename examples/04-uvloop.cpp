// SPDX-License-Identifier: BSL-1.0
// The program of 03 on uvloop: set run_options::uvloop and pyasio::run makes uvloop's event loop
// instead of asyncio's. Nothing else changes: C++ awaits Python, Python awaits C++, many
// operations at once. Without uvloop (Debian: python3-uvloop), run says so and this program
// exits with status 1.
#include <pyasio.hpp>

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

async def loop_type():
    loop = type(asyncio.get_running_loop())
    return f"{loop.__module__}.{loop.__qualname__}"

async def total_of_sleeps(n):
    # n C++ timers at once, each awaited by Python on uvloop
    waited = await asyncio.gather(*(native.sleep_ms(i % 10) for i in range(n)))
    return sum(waited)
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

asio::awaitable<int> main_coroutine() {
    pyasio::object loop_type_fn, total_fn;
    {
        pyasio::gil_acquire gil;
        loop_type_fn = define("loop_type");
        total_fn = define("total_of_sleeps");
    }
    pyasio::async_function loop_type(std::move(loop_type_fn));
    pyasio::async_function total_of_sleeps(std::move(total_fn));

    std::string type = co_await pyasio::into_future<std::string>(loop_type());
    std::printf("the event loop: %s\n", type.c_str());

    // C++ awaits Python, which awaits 1000 C++ timers at once.
    long total = co_await pyasio::into_future<long>(total_of_sleeps(1000));
    std::printf("Python awaited 1000 C++ timers on that loop (durations adding up to %ld ms)\n",
                total);
    co_return 0;
}

} // namespace

int main(int argc, char** argv) {
    pyasio::run_options options;
    options.modules = {{"native", init_native}};
    options.uvloop = true; // the one change: uvloop's event loop instead of asyncio's
    try {
        return pyasio::run(argc, argv, main_coroutine, options);
    } catch (const std::exception& e) { // e.g. "... uvloop is not installed for this Python ..."
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
