// SPDX-License-Identifier: BSL-1.0
// The test runner. Kept free of Python so that one object file serves every interpreter.
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_session.hpp>
#else
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#endif

int pyasio_test_start(int argc, char** argv); // support.cpp: starts the interpreter
int pyasio_test_stop(int status);             // support.cpp: finalizes it

int main(int argc, char** argv) {
    if (int rc = pyasio_test_start(argc, argv); rc != 0)
        return rc;
    int status = Catch::Session().run(argc, argv);
    return pyasio_test_stop(status);
}
