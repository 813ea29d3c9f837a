// SPDX-License-Identifier: BSL-1.0
// The CPU work of the benchmark modules' spin(us), shared by pyasio_bench and pybind11_peer.
#ifndef PYASIO_BENCH_BURN_CPU_HPP
#define PYASIO_BENCH_BURN_CPU_HPP

#include <time.h>

namespace bench {

/// Keeps this thread busy for us microseconds of its own CPU time. NOTE: CPU time, not wall
/// time: with more busy threads than cores, a thread waiting for a core would otherwise count
/// its wait as work, and more threads than cores would seem to do more work.
inline void burn_cpu(long us) {
    auto now = [] {
        timespec t{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
        return t.tv_sec * 1'000'000'000L + t.tv_nsec;
    };
    long until = now() + us * 1000L;
    while (now() < until) {
    }
}

} // namespace bench

#endif // PYASIO_BENCH_BURN_CPU_HPP
