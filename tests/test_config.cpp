// SPDX-License-Identifier: BSL-1.0
// config.hpp's promises: Asio's C++20 coroutines work after including pyasio, under clang too
// (where Asio 1.22 would not enable them by itself).
#include "support.hpp"

#include <asio.hpp>

#include <chrono>

namespace {
asio::awaitable<int> wait_and_add(int a, int b) {
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(1));
    co_await timer.async_wait(asio::use_awaitable);
    co_return a + b;
}
} // namespace

TEST_CASE("Asio coroutines work after including pyasio", "[config]") {
    static_assert(ASIO_HAS_CO_AWAIT && ASIO_HAS_STD_COROUTINE);
    asio::io_context io;
    int result = 0;
    asio::co_spawn(io, wait_and_add(20, 22), [&](const std::exception_ptr& e, int value) {
        if (!e)
            result = value;
    });
    io.run();
    CHECK(result == 42);
}
