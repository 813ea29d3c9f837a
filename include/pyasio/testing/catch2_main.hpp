// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_TESTING_CATCH2_MAIN_HPP
#define PYASIO_TESTING_CATCH2_MAIN_HPP

/// @file
/// Include in exactly one file of a Catch2 test program: it defines main() as
/// pyasio::testing::catch2_main (and, with Catch2 2.13, Catch2's own implementation). Link
/// Catch2 without its main (Catch2::Catch2, not Catch2::Catch2WithMain).

#if !__has_include(<catch2/catch_all.hpp>)
#define CATCH_CONFIG_RUNNER // Catch2 2.13: this file holds the implementation
#endif
#include <pyasio/testing/catch2.hpp>

#include <cstdio>
#include <exception>
#include <optional>
#include <thread>

PYASIO_NAMESPACE_BEGIN
namespace testing {

/// The main of a Catch2 test program: starts Python with pyasio::run (its event loop on this,
/// the main thread; the loop is the default for into_future), runs the Catch2 session on a
/// second thread that holds the GIL while plain test cases run, and returns the session's exit
/// status. Ctrl-C stops the program (Python installs no signal handlers). `options` choose the
/// loop as for pyasio::run: options.trio runs the async test cases under trio.
inline int catch2_main(int argc, char** argv, run_options options = {}) {
    options.argv.assign(argv, argv + argc);
    options.handle_sigint = false;
    int status = 1;
    std::optional<std::thread> session;
    detail::run_with(
        options,
        [&](handle loop) {
            // the loop runs until the session's thread completes this future
            object ended = call_method(loop, "create_future");
            session.emplace([&status, argc, argv, loop = borrow(loop),
                             set_result = getattr(ended, "set_result")] {
                gil_acquire gil; // plain test cases may use Python directly
                try {
                    status = Catch::Session().run(argc, argv);
                } catch (...) {
                    detail::caught();
                    status = 1;
                }
                try {
                    detail::call_soon_threadsafe(loop, set_result, handle(Py_None));
                } catch (...) { // NOTE: the loop ended first (stopped or closed): none waits
                    detail::caught();
                }
            });
            return ended;
        },
        [&](bool) { // NOTE: joined before the interpreter goes: the thread uses it to its end
            if (!session)
                return;
            PyThreadState* saved = PyEval_SaveThread(); // it may need the GIL to end
            session->join();
            PyEval_RestoreThread(saved);
        });
    return status;
}

} // namespace testing
PYASIO_NAMESPACE_END

/// Defines main() as pyasio::testing::catch2_main. catch2_main.hpp uses it; a program that
/// needs its own main calls pyasio::testing::catch2_main from it instead.
#define PYASIO_CATCH2_MAIN()                                                                       \
    int main(int argc, char** argv) {                                                              \
        try {                                                                                      \
            return ::pyasio::testing::catch2_main(argc, argv);                                     \
        } catch (const std::exception& e) {                                                        \
            std::fprintf(stderr, "pyasio: the test program could not run: %s\n", e.what());        \
            return 1;                                                                              \
        } catch (...) {                                                                            \
            ::pyasio::detail::caught(); /* rethrows a forced unwind */                             \
            std::fprintf(stderr, "pyasio: the test program could not run\n");                      \
            return 1;                                                                              \
        }                                                                                          \
    }

#ifndef PYASIO_CATCH2_NO_MAIN
// NOLINTNEXTLINE(misc-definitions-in-headers): this header is included by main's file only
PYASIO_CATCH2_MAIN()
#endif

#endif // PYASIO_TESTING_CATCH2_MAIN_HPP
