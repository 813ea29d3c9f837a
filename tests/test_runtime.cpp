// SPDX-License-Identifier: BSL-1.0
#include "support.hpp"

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
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
