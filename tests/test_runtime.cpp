// SPDX-License-Identifier: BSL-1.0
#include "support.hpp"

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

TEST_CASE("a runtime runs work on its own threads and joins them when destroyed", "[runtime]") {
    CHECK(pyasio::runtime::default_thread_count() >= 2);
    CHECK(pyasio::runtime(0).thread_count() == 1); // at least one thread
    constexpr int n = 200;
    std::atomic<int> ran{0};
    std::mutex mutex;
    std::set<std::thread::id> threads;
    {
        pyasio::runtime rt(3);
        CHECK(rt.thread_count() == 3);
        std::promise<void> all_ran;
        for (int i = 0; i < n; ++i)
            asio::post(rt.get_executor(), [&] {
                {
                    std::lock_guard<std::mutex> lock(mutex);
                    threads.insert(std::this_thread::get_id());
                }
                if (ran.fetch_add(1) + 1 == n)
                    all_ran.set_value();
            });
        all_ran.get_future().wait();
    } // joined here
    CHECK(ran.load() == n);
    CHECK(threads.count(std::this_thread::get_id()) == 0);
    CHECK(threads.size() <= 3);
}

TEST_CASE("the default runtime: configured, installed, shut down, set up again", "[runtime]") {
    pyasio::shutdown_runtime(std::chrono::seconds(1)); // whatever earlier tests started
    CHECK_THROWS_AS(pyasio::default_executor(), pyasio::runtime_stopped);
    CHECK(pyasio::runtime_thread_count() == 0);

    pyasio::configure_runtime(3); // sets it up again
    std::promise<std::thread::id> ran_on;
    asio::post(pyasio::default_executor(), [&] { ran_on.set_value(std::this_thread::get_id()); });
    CHECK(ran_on.get_future().get() != std::this_thread::get_id());
    CHECK(pyasio::runtime_thread_count() == 3);
    std::promise<std::string> refused; // it would join the thread that calls it
    asio::post(pyasio::default_executor(), [&] {
        try {
            pyasio::shutdown_runtime();
            refused.set_value("no error");
        } catch (const std::logic_error& e) {
            refused.set_value(e.what());
        }
    });
    std::string why = refused.get_future().get();
    CHECK(why.find("on one of the runtime's own threads") != std::string::npos);
    CHECK(pyasio::runtime_thread_count() == 3); // still runs
    CHECK_THROWS_AS(pyasio::configure_runtime(2), std::logic_error);
    asio::io_context io;
    CHECK_THROWS_AS(pyasio::install_runtime(io), std::logic_error);

    pyasio::shutdown_runtime(std::chrono::seconds(1));
    pyasio::install_runtime(io); // the user's own io_context
    CHECK(pyasio::default_executor() == asio::any_io_executor(io.get_executor()));
    CHECK(pyasio::runtime_thread_count() == 0);
    bool ran = false;
    asio::post(pyasio::default_executor(), [&] { ran = true; });
    io.run(); // the user runs it
    CHECK(ran);
    pyasio::shutdown_runtime(std::chrono::seconds(1));
    try {
        pyasio::default_executor();
        FAIL("default_executor() after shutdown_runtime() did not throw");
    } catch (const pyasio::runtime_stopped& e) {
        std::string what = e.what();
        CHECK(what.find("runtime was shut down") != std::string::npos);
        CHECK(what.find("configure_runtime") != std::string::npos); // says how to fix it
    }
    CHECK_THROWS_AS(pyasio::install_runtime(asio::any_io_executor()), std::invalid_argument);
    pyasio::configure_runtime(0); // back to the default, for the tests after this one
}

namespace {
/// Defines Python code in __main__ and returns one of its names, as an async_function.
pyasio::async_function python_function(const std::string& code, const std::string& name) {
    pyasio::gil_acquire gil;
    test::exec(code);
    return pyasio::async_function(test::eval(name));
}

/// Whether the loop of the C++ work that awaits it runs on the main thread (Python's answer).
asio::awaitable<bool> loop_on_the_main_thread() {
    pyasio::async_function where = python_function("import asyncio, threading\n"
                                                   "async def on_main_thread():\n"
                                                   "    await asyncio.sleep(0.001)\n"
                                                   "    return threading.current_thread() is "
                                                   "threading.main_thread()\n",
                                                   "on_main_thread");
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(1));
    co_await timer.async_wait(asio::use_awaitable);
    co_return co_await pyasio::into_future<bool>(where());
}

/// The harness goes on: its runtime runs, its loop is still the default, Python runs there.
void check_the_harness_goes_on(const pyasio::task_locals& harness) {
    REQUIRE(Py_IsInitialized());
    std::optional<pyasio::task_locals> now = pyasio::default_task_locals();
    REQUIRE(now.has_value());
    CHECK(*now == harness);
    std::promise<void> ran;
    asio::post(pyasio::default_executor(), [&] { ran.set_value(); });
    ran.get_future().get();
    pyasio::object coro;
    {
        pyasio::gil_acquire gil;
        test::exec("import asyncio, threading\n"
                   "async def on_main_thread_now():\n"
                   "    return threading.current_thread() is threading.main_thread()\n");
        coro = test::eval("on_main_thread_now()");
    }
    bool on_main = pyasio::block_on<bool>(std::move(coro), harness); // on the harness's loop
    CHECK(on_main);
}
} // namespace

TEST_CASE("pyasio::run on another thread while the harness's run runs, twice in a row",
          "[run][nested]") {
    // pyo3-asyncio's test_multiple_asyncio_run: a blocking test case calls run twice.
    const pyasio::task_locals harness = *pyasio::default_task_locals();
    for (bool finalize : {true, false}) {
        INFO("run_options::finalize = " << finalize);
        pyasio::run_options options;
        options.finalize = finalize;
        CHECK_FALSE(pyasio::run(loop_on_the_main_thread, options)); // its own loop, here
        check_the_harness_goes_on(harness);
    }
}

PYASIO_TEST_CASE(
    "pyasio::run on the loop thread or a runtime thread is refused, and the harness goes on",
    "[run][nested]") {
    const pyasio::task_locals harness = *pyasio::default_task_locals();
    for (bool finalize : {false, true}) {
        INFO("run_options::finalize = " << finalize);
        std::string refused = co_await asio::co_spawn(
            pyasio::loop_executor(harness),
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
        INFO(refused);
        CHECK(refused.rfind("pyasio::run: called on a thread whose event loop is running", 0) == 0);
        CHECK(refused.find("co_await the work instead") != std::string::npos);
        std::optional<pyasio::task_locals> now = pyasio::default_task_locals();
        REQUIRE(now.has_value());
        CHECK(*now == harness);
        bool on_main = co_await loop_on_the_main_thread(); // the default loop: the harness's
        CHECK(on_main);
    }
    // here, on a runtime thread, its loop would hold a thread the runtime needs
    CHECK(pyasio::detail::on_runtime_thread());
    try {
        pyasio::run([]() -> asio::awaitable<void> { co_return; });
        FAIL("pyasio::run on a runtime thread was not refused");
    } catch (const std::logic_error& e) {
        std::string what = e.what();
        INFO(what);
        CHECK(what.rfind("pyasio::run: called on a runtime thread", 0) == 0);
        CHECK(what.find("call pyasio::run from a thread of your own") != std::string::npos);
    }
    std::optional<pyasio::task_locals> now = pyasio::default_task_locals();
    REQUIRE(now.has_value());
    CHECK(*now == harness);
}
