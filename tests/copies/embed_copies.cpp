// SPDX-License-Identifier: BSL-1.0
// A program that embeds Python and vendors pyasio itself, then imports extension modules that
// each vendor their own copy (tests/copies/run.py):
//
//     embed_copies SCENARIO_DIR MODULE_DIR MODULE [MODULE ...]
//
// Its own copy serves the built-in module copy_host (copy_ext.cpp built into the program); its
// main coroutine awaits scenario.exercise() over copy_host and the imported modules.
#define COPY_NAME copy_host
#include "copy_ext.cpp"

#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: embed_copies SCENARIO_DIR MODULE_DIR MODULE [MODULE ...]\n");
        return 2;
    }
    std::vector<std::string> names{"copy_host"};
    for (int i = 3; i < argc; ++i)
        names.emplace_back(argv[i]);
    pyasio::run_options options;
    options.modules.emplace_back("copy_host", &PyInit_copy_host);
    try {
        long n = pyasio::run(
            [&]() -> asio::awaitable<long> {
                pyasio::async_function exercise = [&] {
                    pyasio::gil_acquire gil;
                    pyasio::object sys_path = pyasio::getattr(pyasio::import("sys"), "path");
                    pyasio::call_method(sys_path, "insert", 0, std::string(argv[1]));
                    pyasio::call_method(sys_path, "insert", 0, std::string(argv[2]));
                    pyasio::object scenario = pyasio::import("scenario");
                    pyasio::object modules = pyasio::call(pyasio::getattr(scenario, "load"), names);
                    return pyasio::async_function(
                        pyasio::call(pyasio::getattr(pyasio::import("functools"), "partial"),
                                     pyasio::getattr(scenario, "exercise"), modules));
                }();
                co_return co_await pyasio::into_future<long>(exercise());
            },
            options);
        std::printf("embedding program: %ld results from %zu copies, all right\nok\n", n,
                    names.size());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "embedding program: %s\n", e.what());
        return 1;
    }
}
