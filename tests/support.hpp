// SPDX-License-Identifier: BSL-1.0
// Helpers shared by the C++ tests. The interpreter runs for the whole test run (started by the
// harness, pyasio::testing::catch2_main); the Catch2 thread holds the GIL while a plain test case
// runs, and releases it while a PYASIO_TEST_CASE's coroutine runs on the runtime.
#pragma once
#include <pyasio/testing/catch2.hpp>

#include <string>

namespace test {

/// Runs Python statements in the __main__ namespace.
void exec(const std::string& code);
/// Evaluates a Python expression in the __main__ namespace.
pyasio::object eval(const std::string& code);
/// The message of a python_error thrown by f, after checking it is of the given Python type.
template <class F> std::string python_error_message(PyObject* type, F&& f) {
    try {
        f();
    } catch (const pyasio::python_error& e) {
        INFO(e.what());
        CHECK(e.matches(pyasio::handle(type)));
        return pyasio::str(e.value());
    }
    FAIL("no python_error was thrown");
    return {};
}

} // namespace test
