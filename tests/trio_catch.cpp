// SPDX-License-Identifier: BSL-1.0
// The Catch2 harness on trio: catch2_main with run_options::trio runs the async test cases while
// a trio run owns the main thread; into_future and future_into_py go through it.
#define PYASIO_CATCH2_NO_MAIN
#include <pyasio/testing/catch2_main.hpp>

#include <pyasio.hpp>

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>

#include <chrono>
#include <string>

using pyasio::object;

int main(int argc, char** argv) {
    pyasio::run_options options;
    options.trio = true;
    try {
        return pyasio::testing::catch2_main(argc, argv, options);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pyasio: the trio test program could not run: %s\n", e.what());
        return 1;
    }
}

namespace {
/// f(x) of Python code that awaits trio: (x * 2, the async library sniffio names).
object trio_function() {
    return pyasio::detail::python_function("import trio, sniffio\n"
                                           "async def f(x):\n"
                                           "    await trio.sleep(0.001)\n"
                                           "    return x * 2, sniffio.current_async_library()\n",
                                           "f");
}
} // namespace

PYASIO_TEST_CASE("an async test case runs while trio owns the main thread", "[trio]") {
    std::string loop_type;
    {
        pyasio::gil_acquire gil;
        loop_type = pyasio::default_task_locals()->loop().type_name();
    }
    CHECK(loop_type == "TrioLoop");
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(1));
    co_await timer.async_wait(asio::use_awaitable);
}

PYASIO_TEST_CASE("C++ awaits trio code from a test case", "[trio]") {
    object coro;
    {
        pyasio::gil_acquire gil;
        coro = pyasio::call(trio_function(), 21);
    }
    auto [doubled, library] =
        co_await pyasio::into_future<std::tuple<long, std::string>>(std::move(coro));
    CHECK(doubled == 42);
    CHECK(library == "trio");
}

PYASIO_TEST_CASE("a trio coroutine's exception reaches the test case", "[trio]") {
    object coro;
    {
        pyasio::gil_acquire gil;
        coro = pyasio::call(trio_function(), pyasio::borrow(Py_None)); // None * 2: TypeError
    }
    CHECK_THROWS_AS(co_await pyasio::into_future(std::move(coro)), pyasio::python_error);
}
