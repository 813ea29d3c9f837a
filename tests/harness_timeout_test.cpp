// SPDX-License-Identifier: BSL-1.0
// The harness's per-test timeout: an async test case that hangs fails with a clear message
// instead of hanging the run (this program must fail; see tests/CMakeLists.txt). Also a main of
// its own that sets the harness up before the session starts.
#define PYASIO_CATCH2_NO_MAIN
#include <pyasio/testing/catch2_main.hpp>

#include <asio/steady_timer.hpp>

#include <chrono>

PYASIO_TEST_CASE("an async test case that never ends", "[harness]") {
    asio::steady_timer forever(co_await asio::this_coro::executor, std::chrono::hours(1));
    co_await forever.async_wait(asio::use_awaitable);
}

int main(int argc, char** argv) {
    pyasio::testing::config().timeout = std::chrono::milliseconds(200);
    return pyasio::testing::catch2_main(argc, argv);
}
