// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_TESTING_CATCH2_HPP
#define PYASIO_TESTING_CATCH2_HPP

/// @file
/// A Catch2 harness for code that joins C++ and Python: Python and its event loop own the main
/// thread, the Catch2 session runs beside them, and PYASIO_TEST_CASE bodies are C++ coroutines
/// that run on the Asio runtime while the loop is live. Works with Catch2 2.13 and Catch2 v3.
///
/// One test file (or a main file of its own) includes <pyasio/testing/catch2_main.hpp>; the
/// others include this header.

#include <pyasio.hpp>

#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif

#include <asio/awaitable.hpp>

#include <chrono>
#include <cstdlib>
#include <mutex>

PYASIO_NAMESPACE_BEGIN
/// The Catch2 harness (<pyasio/testing/catch2.hpp>, <pyasio/testing/catch2_main.hpp>).
namespace testing {

/// PYASIO_TEST_TIMEOUT_MS if set to a positive number, else 60 s.
inline std::chrono::milliseconds timeout_from_environment() {
    const char* text = std::getenv("PYASIO_TEST_TIMEOUT_MS");
    long ms = text != nullptr ? std::strtol(text, nullptr, 10) : 0;
    return std::chrono::milliseconds(ms > 0 ? ms : 60'000);
}

/// The harness's settings; change them in your own main before catch2_main, or in a plain test
/// case (they apply to the async test cases that start after the change).
struct settings {
    /// How long an async test case may run before it is cancelled and fails: 60 s, or the
    /// environment variable PYASIO_TEST_TIMEOUT_MS.
    std::chrono::milliseconds timeout{timeout_from_environment()};
    /// How long a timed-out test case's coroutine gets to end after its cancellation.
    std::chrono::milliseconds grace{5'000};
};

/// The harness's settings, one per program.
inline settings& config() {
    static settings s;
    return s;
}

/// Runs an async test case's body (a function returning asio::awaitable<void>) on the default
/// runtime and waits for it on the Catch2 thread (the GIL released meanwhile). Assertions in the
/// body report as usual; a body still running after config().timeout is cancelled and the test
/// fails with a message saying so.
template <class Body> void run_async_test(Body body) {
    auto [end, s] =
        detail::wait_for_work("PYASIO_TEST_CASE", body, config().timeout, config().grace);
    if (end == detail::wait_end::timed_out) {
        bool ended;
        {
            std::lock_guard<std::mutex> lock(s->mutex);
            ended = s->done;
        }
        FAIL("pyasio: the async test case timed out after "
             << config().timeout.count() << " ms; its coroutine was cancelled"
             << (ended ? "" : " and did not end within the grace period")
             << " (raise the limit with pyasio::testing::config().timeout)");
    }
    std::lock_guard<std::mutex> lock(s->mutex);
    s->out.take();
}

} // namespace testing
PYASIO_NAMESPACE_END

#define PYASIO_DETAIL_CAT2(a, b) a##b
#define PYASIO_DETAIL_CAT(a, b) PYASIO_DETAIL_CAT2(a, b)
#define PYASIO_DETAIL_TEST_CASE(body, ...)                                                         \
    static ::asio::awaitable<void> body();                                                         \
    TEST_CASE(__VA_ARGS__) {                                                                       \
        ::pyasio::testing::run_async_test(&body);                                                  \
    }                                                                                              \
    static ::asio::awaitable<void> body()

/// A Catch2 test case whose body is a C++ coroutine (co_await into_future(...), timers,
/// future_into_py's work...), run on the Asio runtime while the event loop runs:
///
///     PYASIO_TEST_CASE("C++ awaits Python", "[async]") {
///         co_await pyasio::into_future(...);
///         CHECK(...);
///     }
#define PYASIO_TEST_CASE(...)                                                                      \
    PYASIO_DETAIL_TEST_CASE(PYASIO_DETAIL_CAT(pyasio_async_test_body_, __LINE__), __VA_ARGS__)

#endif // PYASIO_TESTING_CATCH2_HPP
