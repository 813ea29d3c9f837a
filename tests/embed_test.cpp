// SPDX-License-Identifier: BSL-1.0
// pyasio::run in a program that embeds Python, one scenario per run (argv[1]); driven by
// tests/python/test_embedding.py, which checks the output and the exit status.
#include <pyasio.hpp>

#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

/// Python code run in __main__ (GIL held).
void exec(const char* code) {
    pyasio::object main = pyasio::import("__main__");
    pyasio::object ns = pyasio::borrow(PyModule_GetDict(main.ptr()));
    // NOTE: compile and run (not PyRun_String): the program builds on the limited API too
    pyasio::object compiled = pyasio::steal(Py_CompileString(code, "<embed_test>", Py_file_input));
    if (!compiled || !pyasio::steal(PyEval_EvalCode(compiled.ptr(), ns.ptr(), ns.ptr())))
        throw pyasio::python_error::fetch();
}

pyasio::object main_attr(const char* name) {
    return pyasio::getattr(pyasio::import("__main__"), name);
}

asio::awaitable<void> sleep(std::chrono::milliseconds ms) {
    asio::steady_timer timer(co_await asio::this_coro::executor, ms);
    co_await timer.async_wait(asio::use_awaitable);
}

/// Runs `code` in __main__ (taking the GIL) and returns its function `name`.
pyasio::async_function python_function(const char* code, const char* name) {
    pyasio::gil_acquire gil;
    exec(code);
    return pyasio::async_function(main_attr(name));
}

/// Defines `async def twice(x)` in __main__ and awaits it from C++.
asio::awaitable<long> await_python_twice(long x) {
    pyasio::async_function twice = python_function("import asyncio\n"
                                                   "async def twice(x):\n"
                                                   "    await asyncio.sleep(0.001)\n"
                                                   "    return 2 * x\n",
                                                   "twice");
    co_return co_await pyasio::into_future<long>(twice(x));
}

int run_twice() {
    for (long i = 1; i <= 2; ++i) {
        pyasio::run_options options;
        options.finalize = i == 2; // the first run keeps the interpreter for the second
        long r = pyasio::run([i] { return await_python_twice(i * 10); }, options);
        std::printf("run %ld: %ld (interpreter finalized: %s)\n", i, r,
                    Py_IsInitialized() ? "no" : "yes");
    }
    return 0;
}

/// A second run after the first finalized the interpreter (the default): refused, clearly.
int after_finalize() {
    long r = pyasio::run([] { return await_python_twice(10); });
    std::printf("run 1: %ld (interpreter finalized: %s)\n", r, Py_IsInitialized() ? "no" : "yes");
    try {
        pyasio::run([] { return await_python_twice(20); });
        std::printf("run 2 ran\n");
    } catch (const std::logic_error& e) {
        std::printf("run 2 refused: %s\n", e.what());
    }
    return 0;
}

int sigint() {
    try {
        pyasio::run([]() -> asio::awaitable<void> {
            std::printf("waiting for Ctrl-C\n");
            std::fflush(stdout);
            co_await sleep(std::chrono::seconds(60));
            std::printf("the timer was not cancelled\n");
        });
    } catch (const pyasio::interrupted& e) {
        std::printf("%s\n", e.what());
        return 130;
    }
    return 0;
}

/// main awaits Python code that raises KeyboardInterrupt: asyncio lets it out of the loop.
int keyboard_interrupt() {
    try {
        pyasio::run([]() -> asio::awaitable<void> {
            pyasio::async_function interrupted = python_function("import asyncio\n"
                                                                 "async def interrupted():\n"
                                                                 "    await asyncio.sleep(0.001)\n"
                                                                 "    raise KeyboardInterrupt\n",
                                                                 "interrupted");
            co_await pyasio::into_future<void>(interrupted());
            std::printf("the await returned\n");
        });
    } catch (const pyasio::interrupted& e) {
        std::printf("%s\n", e.what());
        return 130;
    }
    return 0;
}

int own_interpreter() {
    Py_InitializeEx(0); // the program starts Python itself
    long r = pyasio::run([] { return await_python_twice(21); });
    std::printf("result %ld; still initialized: %s\n", r, Py_IsInitialized() ? "yes" : "no");
    std::fflush(stdout);
    {
        pyasio::gil_acquire gil;
        exec("import sys; print('same interpreter:', 'twice' in dir(sys.modules['__main__']))");
    }
    return Py_FinalizeEx() == 0 ? 0 : 1;
}

int exception_from_main() {
    try {
        pyasio::run([]() -> asio::awaitable<int> {
            co_await sleep(std::chrono::milliseconds(1));
            throw std::out_of_range("thrown by main");
        });
    } catch (const std::out_of_range& e) {
        std::printf("caught: %s\n", e.what());
        return 0;
    }
    return 1;
}

/// A plain C++ thread (neither the loop's nor the runtime's) waits for a Python awaitable on
/// the loop run by pyasio::run; and block_on on the loop thread is refused.
int from_a_plain_thread() {
    return pyasio::run([]() -> asio::awaitable<int> {
        pyasio::task_locals locals = *pyasio::default_task_locals();
        std::future<std::string> text = std::async(std::launch::async, [locals] {
            pyasio::object coro;
            {
                pyasio::gil_acquire gil;
                exec("import asyncio\n"
                     "async def hello():\n"
                     "    await asyncio.sleep(0.001)\n"
                     "    return 'hello from the loop'\n");
                coro = pyasio::call(main_attr("hello"));
            }
            return pyasio::block_on<std::string>(std::move(coro), locals);
        });
        co_await sleep(std::chrono::milliseconds(50));
        std::printf("plain thread got: %s\n", text.get().c_str());

        // into_future with no task locals of its own: the default loop, pyasio::run's
        std::future<long> sum = std::async(std::launch::async, [] {
            pyasio::object coro;
            {
                pyasio::gil_acquire gil;
                exec("import asyncio\n"
                     "async def add(a, b):\n"
                     "    return a + b\n");
                coro = pyasio::call(main_attr("add"), 2, 3);
            }
            return pyasio::into_future<long>(std::move(coro), asio::use_future).get();
        });
        co_await sleep(std::chrono::milliseconds(50));
        std::printf("default loop: %ld\n", sum.get());
        co_return 0;
    });
}

/// Waits, in a coroutine, until `done` is ready (polling: the runtime thread is never blocked).
template <class T> asio::awaitable<void> wait_for(const std::future<T>& done) {
    while (done.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
        co_await sleep(std::chrono::milliseconds(1));
}

/// Awaits, on the loop of the C++ work that calls it, whether that loop runs on the main thread.
asio::awaitable<bool> python_on_the_main_thread() {
    pyasio::async_function where = python_function("import asyncio, threading\n"
                                                   "async def on_main_thread():\n"
                                                   "    await asyncio.sleep(0.001)\n"
                                                   "    return threading.current_thread() is "
                                                   "threading.main_thread()\n",
                                                   "on_main_thread");
    co_return co_await pyasio::into_future<bool>(where());
}

const char* yes_no(bool b) {
    return b ? "yes" : "no";
}

/// pyasio::run called on the loop's own thread while the outer run runs (from a handler of the
/// loop_executor), once with the default options and once with finalize = false: both refused;
/// the outer run goes on with its runtime and default loop, and ends as usual.
int nested_on_the_loop_thread() {
    long r = pyasio::run([]() -> asio::awaitable<long> {
        pyasio::loop_executor on_loop(*pyasio::default_task_locals());
        for (bool finalize : {true, false}) {
            std::string refused = co_await asio::co_spawn(
                on_loop,
                [finalize]() -> asio::awaitable<std::string> {
                    pyasio::run_options options;
                    options.finalize = finalize;
                    try {
                        pyasio::run([]() -> asio::awaitable<void> { co_return; }, options);
                    } catch (const std::logic_error& e) {
                        co_return e.what();
                    }
                    co_return "not refused";
                },
                asio::use_awaitable);
            std::printf("refused (finalize %s): %s\n", yes_no(finalize), refused.c_str());
        }
        co_await sleep(std::chrono::milliseconds(1)); // the runtime still runs
        std::printf("default loop kept: %s\n", yes_no(pyasio::default_task_locals().has_value()));
        co_return co_await await_python_twice(21);
    });
    std::printf("outer run: %ld (interpreter finalized: %s)\n", r, yes_no(!Py_IsInitialized()));
    return 0;
}

/// pyasio::run on a thread of its own while the outer run runs, twice in a row (the default
/// options, then finalize = false): each runs its own loop on that thread; neither finalizes
/// the interpreter nor shuts down the runtime; the outer run goes on.
int nested_on_another_thread() {
    long r = pyasio::run([]() -> asio::awaitable<long> {
        std::future<void> nested = std::async(std::launch::async, [] {
            for (bool finalize : {true, false}) {
                pyasio::run_options options;
                options.finalize = finalize;
                bool on_main = pyasio::run(python_on_the_main_thread, options);
                std::printf("nested run (finalize %s): its loop on the main thread: %s\n",
                            yes_no(finalize), yes_no(on_main));
                std::fflush(stdout);
            }
        });
        co_await wait_for(nested);
        nested.get();
        co_await sleep(std::chrono::milliseconds(1)); // the runtime still runs
        std::printf("default loop kept: %s\n", yes_no(pyasio::default_task_locals().has_value()));
        bool on_main = co_await python_on_the_main_thread();
        std::printf("outer run's loop on the main thread: %s\n", yes_no(on_main));
        co_return co_await await_python_twice(21);
    });
    std::printf("outer run: %ld (interpreter finalized: %s)\n", r, yes_no(!Py_IsInitialized()));
    return 0;
}

/// The outer run's main returns while a run on another thread still runs: the outer run waits
/// for it before it shuts the runtime down and finalizes the interpreter.
int outer_ends_first() {
    std::promise<void> nested_started;
    std::promise<void> outer_returning;
    std::future<void> started = nested_started.get_future();
    std::future<void> may_go_on = outer_returning.get_future();
    long n = 0;
    std::thread nested;
    long r = pyasio::run([&]() -> asio::awaitable<long> {
        nested = std::thread([&] {
            try {
                n = pyasio::run([&]() -> asio::awaitable<long> {
                    nested_started.set_value();
                    co_await wait_for(may_go_on); // the outer main has returned
                    co_await sleep(std::chrono::milliseconds(1));
                    co_return co_await await_python_twice(50);
                });
            } catch (const std::exception& e) {
                std::printf("nested run failed: %s\n", e.what());
            }
        });
        co_await wait_for(started);
        outer_returning.set_value();
        co_return 1;
    });
    std::printf("outer run: %ld (interpreter finalized: %s)\n", r, yes_no(!Py_IsInitialized()));
    nested.join();
    std::printf("nested run: %ld\n", n);
    return 0;
}

/// pyasio::run(argc, argv, ...): Python's sys.argv is the program's, its options not parsed.
int program_argv(int argc, char** argv) {
    return pyasio::run(argc, argv, []() -> asio::awaitable<int> {
        pyasio::gil_acquire gil;
        std::string seen = pyasio::str(pyasio::getattr(pyasio::import("sys"), "argv"));
        std::printf("sys.argv: %s\n", seen.c_str());
        co_return 0;
    });
}

} // namespace

int main(int argc, char** argv) {
    std::string mode = argc > 1 ? argv[1] : "";
    try {
        if (mode == "twice")
            return run_twice();
        if (mode == "after-finalize")
            return after_finalize();
        if (mode == "sigint")
            return sigint();
        if (mode == "keyboard-interrupt")
            return keyboard_interrupt();
        if (mode == "own-interpreter")
            return own_interpreter();
        if (mode == "exception")
            return exception_from_main();
        if (mode == "plain-thread")
            return from_a_plain_thread();
        if (mode == "nested-on-the-loop-thread")
            return nested_on_the_loop_thread();
        if (mode == "nested-on-another-thread")
            return nested_on_another_thread();
        if (mode == "outer-ends-first")
            return outer_ends_first();
        if (mode == "argv")
            return program_argv(argc, argv);
    } catch (const std::exception& e) {
        std::printf("error: %s\n", e.what());
        return 1;
    }
    std::printf(
        "usage: %s "
        "twice|after-finalize|sigint|keyboard-interrupt|own-interpreter|exception|plain-thread|"
        "nested-on-the-loop-thread|nested-on-another-thread|outer-ends-first|argv\n",
        argv[0]);
    return 2;
}
