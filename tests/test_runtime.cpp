// SPDX-License-Identifier: BSL-1.0
#include "support.hpp"

#include <asio/post.hpp>

#include <atomic>
#include <future>
#include <mutex>
#include <set>
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
