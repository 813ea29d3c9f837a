// SPDX-License-Identifier: BSL-1.0
// Cancellation both ways, and timeouts, in a program that embeds Python with pyasio::run:
//   1. C++ cancels Python: `into_future(...) || timer` cancels the Python task when the timer
//      wins; the coroutine sees CancelledError.
//   2. Python cancels C++: asyncio.wait_for times out and cancels native.sleep_ms; its C++
//      coroutine sees asio::error::operation_aborted.
//   3. Python cancels a task that awaits C++: the same, through task.cancel().
//   4. Python cancels a task that C++ awaits: C++ gets pyasio::task_cancelled.
// Each side prints what it saw.
#include <pyasio.hpp>

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <system_error>
#include <tuple>
#include <variant>

namespace {

// native.sleep_ms(ms, report): waits ms milliseconds on an Asio timer; the result is ms. When
// Python cancels it, the wait ends with operation_aborted. Python has stopped listening to this
// operation then, so the C++ coroutine tells it what it saw by calling report(text) on the
// loop's thread.
PyObject* sleep_ms(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [ms, report] =
            pyasio::from_python<std::tuple<long, pyasio::object>>(pyasio::handle(args));
        // Python calls this on the loop's thread: its executor runs handlers there, with the GIL.
        pyasio::loop_executor loop = pyasio::loop_executor::current();
        return pyasio::future_into_py(
            [ms = ms, report = std::move(report), loop]() mutable -> asio::awaitable<long> {
                asio::steady_timer timer(co_await asio::this_coro::executor,
                                         std::chrono::milliseconds(ms));
                try {
                    co_await timer.async_wait(asio::use_awaitable);
                } catch (const std::system_error& e) {
                    if (e.code() == asio::error::operation_aborted)
                        asio::post(loop, [report = std::move(report)] {
                            pyasio::call(report, "asio::error::operation_aborted");
                        });
                    throw;
                }
                co_return ms;
            });
    });
}

PyMethodDef native_methods[] = {
    {"sleep_ms", sleep_ms, METH_VARARGS, "Waits on an Asio timer; reports a cancellation."},
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

jobs = {}  # name -> the task that runs slow_job(name)

async def slow_job(name):
    jobs[name] = asyncio.current_task()
    try:
        await asyncio.sleep(60)
        return "finished"
    except asyncio.CancelledError:
        print(f"Python: {name} got CancelledError", flush=True)
        raise

async def how_it_ended(name):
    await asyncio.wait([jobs[name]])  # until the job's task is over, however it ends
    return "cancelled" if jobs[name].cancelled() else "done"

async def cancel_job(name, delay):
    await asyncio.sleep(delay)
    jobs[name].cancel()

async def timeout_of_cpp():
    cpp_saw = asyncio.get_running_loop().create_future()
    try:
        await asyncio.wait_for(native.sleep_ms(60_000, cpp_saw.set_result), timeout=0.1)
    except asyncio.TimeoutError:
        print("Python: wait_for timed out and cancelled native.sleep_ms", flush=True)
    print("Python: C++ saw", await asyncio.wait_for(cpp_saw, 10), flush=True)

async def cancel_task_awaiting_cpp():
    cpp_saw = asyncio.get_running_loop().create_future()

    async def wait_long():
        return await native.sleep_ms(60_000, cpp_saw.set_result)

    task = asyncio.ensure_future(wait_long())
    await asyncio.sleep(0.1)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        print("Python: the task awaiting native.sleep_ms ended with CancelledError", flush=True)
    print("Python: C++ saw", await asyncio.wait_for(cpp_saw, 10), flush=True)
)";

// The Python functions C++ calls: async_function hands each call to the loop's thread.
struct python_functions {
    pyasio::async_function slow_job, how_it_ended, cancel_job, timeout_of_cpp,
        cancel_task_awaiting_cpp;
};

// Runs python_code in a fresh namespace and returns its functions. Takes the GIL.
python_functions load_python() {
    pyasio::gil_acquire gil;
    pyasio::object ns = pyasio::steal(PyDict_New());
    PyDict_SetItemString(ns.ptr(), "__builtins__", PyEval_GetBuiltins());
    pyasio::object done =
        pyasio::steal(PyRun_String(python_code, Py_file_input, ns.ptr(), ns.ptr()));
    if (!done)
        throw pyasio::python_error::fetch();
    auto get = [&](const char* name) {
        return pyasio::async_function(pyasio::borrow(PyDict_GetItemString(ns.ptr(), name)));
    };
    return {get("slow_job"), get("how_it_ended"), get("cancel_job"), get("timeout_of_cpp"),
            get("cancel_task_awaiting_cpp")};
}

asio::awaitable<int> main_coroutine() {
    using namespace asio::experimental::awaitable_operators;
    using namespace std::chrono_literals;
    python_functions py = load_python();

    std::printf("1. C++ cancels Python: a Python job || a C++ timer\n");
    asio::steady_timer timer(co_await asio::this_coro::executor, 100ms);
    std::variant<std::string, std::monostate> first =
        co_await (pyasio::into_future<std::string>(py.slow_job("job 1")) ||
                  timer.async_wait(asio::use_awaitable));
    // `||` completed as soon as the timer fired; the Python task ends on the loop's thread
    std::string ended = co_await pyasio::into_future<std::string>(py.how_it_ended("job 1"));
    std::printf("C++: the %s came first, and the Python task ended %s\n",
                first.index() == 1 ? "timer" : "job", ended.c_str());

    std::printf("2. Python cancels C++: asyncio.wait_for with a timeout\n");
    co_await pyasio::into_future<void>(py.timeout_of_cpp());

    std::printf("3. Python cancels a task that awaits C++\n");
    co_await pyasio::into_future<void>(py.cancel_task_awaiting_cpp());

    std::printf("4. Python cancels a task that C++ awaits\n");
    try {
        co_await (pyasio::into_future<std::string>(py.slow_job("job 2")) &&
                  pyasio::into_future<void>(py.cancel_job("job 2", 0.1)));
    } catch (const pyasio::task_cancelled& e) {
        std::printf("C++: caught pyasio::task_cancelled: %s\n", e.what());
    }
    co_return 0;
}

} // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IONBF, 0); // C and Python output in the order written
    pyasio::run_options options;
    options.modules = {{"native", init_native}};
    try {
        return pyasio::run(argc, argv, main_coroutine, options);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
