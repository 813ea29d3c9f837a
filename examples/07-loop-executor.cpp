// SPDX-License-Identifier: BSL-1.0
// C++ coroutines on the event loop's own thread, with pyasio::loop_executor. Its handlers run on
// the loop's thread with the GIL held, so a coroutine co_spawned on it calls Python directly (no
// gil_acquire, no wait for the GIL) and awaits Python with no thread hop: into_future starts the
// coroutine at once and resumes this one from the task's done callback. Timers made with its
// executor complete on the loop too. Python can start such coroutines as well:
// future_into_py(work, pyasio::loop_executor::current()).
#include <pyasio.hpp>

#include <asio/co_spawn.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

namespace {

// The Python side: in a real program, a module on sys.path.
const char* python_code = R"(
import asyncio
import threading

def on_loop_thread():
    # pyasio::run runs the loop on the program's main thread
    return threading.get_ident() == threading.main_thread().ident

async def add(a, b):
    await asyncio.sleep(0.001)
    return a + b
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

const char* yes_no(bool b) {
    return b ? "yes" : "no";
}

// A C++ coroutine for the loop executor: every step runs on the loop's thread, with the GIL.
asio::awaitable<int> on_the_loop() {
    std::printf("on the loop: GIL held: %s\n", yes_no(pyasio::gil::held()));
    pyasio::object on_loop_thread = define("on_loop_thread"); // plain Python calls, no GIL scope
    pyasio::object add = define("add");
    std::printf("on the loop: on the loop's thread: %s\n",
                yes_no(pyasio::call(on_loop_thread).ptr() == Py_True));

    // Await Python: the coroutine object is made right here, and into_future starts it at once
    // (no queue, no wake of the loop); this coroutine resumes on the loop's thread.
    pyasio::object coro = pyasio::call(add, 20, 22);
    int sum = co_await pyasio::into_future<int>(std::move(coro));
    std::printf("on the loop: add(20, 22) = %d, still on the loop's thread: %s\n", sum,
                yes_no(pyasio::call(on_loop_thread).ptr() == Py_True));

    // An Asio timer made with this executor waits on the runtime and completes on the loop.
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(5));
    co_await timer.async_wait(asio::use_awaitable);
    std::printf("on the loop: after an Asio timer, on the loop's thread: %s\n",
                yes_no(pyasio::call(on_loop_thread).ptr() == Py_True));
    co_return sum;
}

// The program's main coroutine, on the Asio runtime: not on the loop's thread.
asio::awaitable<int> main_coroutine() {
    {
        pyasio::gil_acquire gil; // a runtime thread takes the GIL for Python, briefly
        std::printf("main coroutine: on the loop's thread: %s\n",
                    yes_no(pyasio::call(define("on_loop_thread")).ptr() == Py_True));
    }

    // pyasio::run's loop (the default task locals); loop_executor::current() gives the same on
    // the loop's thread.
    pyasio::loop_executor loop(*pyasio::default_task_locals());
    int sum = co_await asio::co_spawn(loop, on_the_loop(), asio::use_awaitable);
    std::printf("main coroutine: the loop's coroutine returned %d\n", sum);
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
