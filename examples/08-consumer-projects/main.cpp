// SPDX-License-Identifier: BSL-1.0
// A program that uses pyasio the way a consumer project does; every integration recipe in this
// folder (CMake find_package and add_subdirectory, Meson subproject, pkg-config, vendored
// include/ with a plain compiler line) builds and runs it. It embeds Python with pyasio::run
// and awaits Python's asyncio.sleep from a C++ coroutine: the headers, Python, Asio and threads
// are all linked.
#include <pyasio.hpp>

#include <cstdio>
#include <exception>
#include <string>

asio::awaitable<int> main_coroutine() {
    pyasio::async_function sleep = [] {
        pyasio::gil_acquire gil;
        return pyasio::async_function(pyasio::getattr(pyasio::import("asyncio"), "sleep"));
    }();
    // asyncio.sleep(delay, result) returns its result: called on the loop thread
    std::string text = co_await pyasio::into_future<std::string>(sleep(0.01, "awaited"));
    std::printf("consumer ok: pyasio %d.%d.%d, asyncio.sleep %s\n", PYASIO_VERSION_MAJOR,
                PYASIO_VERSION_MINOR, PYASIO_VERSION_PATCH, text.c_str());
    co_return 0;
}

int main(int argc, char** argv) {
    try {
        return pyasio::run(argc, argv, main_coroutine);
    } catch (const std::exception& e) {
        std::printf("consumer failed: %s\n", e.what());
        return 1;
    }
}
