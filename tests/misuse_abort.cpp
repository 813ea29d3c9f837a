// SPDX-License-Identifier: BSL-1.0
// Misuse that debug builds stop with a message instead of corrupting the interpreter (and, for a
// GIL scope kept across a co_await, release builds too: pyasio_misuse_abort_release). Each case
// aborts the process, so each runs as its own test: misuse_abort <case>.
#include <pyasio.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <thread>

namespace {
void misuse(const char* which) {
    pyasio::object list = pyasio::steal(PyList_New(0));
    if (std::strcmp(which, "copy-without-gil") == 0) {
        pyasio::gil_release nogil;
        // NOLINTNEXTLINE(performance-unnecessary-copy-initialization): the copy is the misuse
        std::thread([&] { pyasio::object copy = list; }).join();
    } else if (std::strcmp(which, "borrow-without-gil") == 0) {
        pyasio::gil_release nogil;
        std::thread([&] { pyasio::object ref = pyasio::borrow(list); }).join();
    } else if (std::strcmp(which, "call-without-gil") == 0) {
        pyasio::gil_release nogil;
        std::thread([&] { (void)pyasio::call(list); }).join();
    } else if (std::strcmp(which, "gil-across-await") == 0) {
        pyasio::gil_release nogil;
        std::promise<void> never;
        asio::co_spawn(
            pyasio::default_executor(),
            []() -> asio::awaitable<void> {
                pyasio::gil_acquire gil; // the misuse: a plain GIL scope across a co_await
                asio::steady_timer timer(co_await asio::this_coro::executor,
                                         std::chrono::milliseconds(1));
                co_await timer.async_wait(asio::use_awaitable);
            },
            asio::detached);
        never.get_future().wait_for(std::chrono::seconds(10)); // the runtime aborts first
    } else if (std::strcmp(which, "gil-across-await-many") == 0) {
        // The report: 20 concurrent calls that each keep a GIL scope across a co_await,
        // and a ticker; a release build used to crash inside CPython, naming nothing.
        pyasio::gil_release nogil;
        std::promise<void> never;
        for (int i = 0; i < 20; ++i)
            asio::co_spawn(
                pyasio::default_executor(),
                []() -> asio::awaitable<void> {
                    pyasio::gil_acquire gil; // the misuse
                    asio::steady_timer timer(co_await asio::this_coro::executor,
                                             std::chrono::milliseconds(1));
                    co_await timer.async_wait(asio::use_awaitable);
                },
                asio::detached);
        asio::co_spawn(
            pyasio::default_executor(),
            []() -> asio::awaitable<void> {
                for (;;) {
                    asio::steady_timer timer(co_await asio::this_coro::executor,
                                             std::chrono::milliseconds(1));
                    co_await timer.async_wait(asio::use_awaitable);
                }
            },
            asio::detached);
        never.get_future().wait_for(std::chrono::seconds(10)); // the runtime aborts first
    }
}
} // namespace

int main(int argc, char** argv) {
    if (argc != 2)
        return 2;
    Py_InitializeEx(0);
    try {
        misuse(argv[1]);
    } catch (const std::exception& e) {
        std::printf("unexpected exception: %s\n", e.what());
        return 1;
    }
    std::puts("no abort");
    return 0;
}
