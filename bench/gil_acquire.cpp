// SPDX-License-Identifier: BSL-1.0
// GIL acquire/release pairs on a worker thread, with and without a persistent thread state.
// Usage: bench_gil_acquire [pairs=1000000] [repeats=5]. Prints the median ns per pair and the
// spread (min..max) over the repeats, for each mode, and their ratio.
#include <pyasio.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {
double ns_per_pair(long pairs, bool persistent) {
    double result = 0;
    std::thread([&] {
        std::optional<pyasio::persistent_thread_state> keep;
        if (persistent)
            keep.emplace();
        auto start = std::chrono::steady_clock::now();
        for (long i = 0; i < pairs; ++i) {
            pyasio::gil_acquire gil;
        }
        auto elapsed = std::chrono::steady_clock::now() - start;
        result = std::chrono::duration<double, std::nano>(elapsed).count() / double(pairs);
    }).join();
    return result;
}

struct summary {
    double median, min, max;
};

summary measure(long pairs, int repeats, bool persistent) {
    std::vector<double> runs;
    runs.reserve(static_cast<std::size_t>(repeats));
    for (int r = 0; r < repeats; ++r)
        runs.push_back(ns_per_pair(pairs, persistent));
    std::sort(runs.begin(), runs.end());
    return {runs[runs.size() / 2], runs.front(), runs.back()};
}
} // namespace

int run(int argc, char** argv) {
    long pairs = argc > 1 ? std::atol(argv[1]) : 1'000'000;
    int repeats = argc > 2 ? std::atoi(argv[2]) : 5;
    Py_InitializeEx(0);
    {
        pyasio::gil_release nogil; // the main thread idles: the worker never waits for the GIL
        summary fresh = measure(pairs, repeats, false);
        summary kept = measure(pairs, repeats, true);
        std::printf("python %s, %ld pairs x %d repeats\n", Py_GetVersion(), pairs, repeats);
        std::printf("new thread state per acquire: %8.1f ns/pair (min %.1f, max %.1f)\n",
                    fresh.median, fresh.min, fresh.max);
        std::printf("persistent thread state:      %8.1f ns/pair (min %.1f, max %.1f)\n",
                    kept.median, kept.min, kept.max);
        std::printf("speed-up: %.1fx\n", fresh.median / kept.median);
    }
    Py_FinalizeEx();
    return 0;
}

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
