// SPDX-License-Identifier: BSL-1.0
#include "support.hpp"

#include <cstdio>

int pyasio_test_start(int, char**) {
    Py_InitializeEx(0); // no signal handlers: Ctrl-C stops the test binary
    if (!Py_IsInitialized()) {
        std::fprintf(stderr, "could not initialize Python\n");
        return 1;
    }
    return 0;
}

int pyasio_test_stop(int status) {
    pyasio::release_pending();
    if (Py_FinalizeEx() != 0 && status == 0)
        return 120; // as Python does when flushing stdout fails at exit
    return status;
}

namespace test {

namespace {
pyasio::object main_dict() {
    return pyasio::borrow(PyModule_GetDict(pyasio::import("__main__").ptr()));
}
} // namespace

void exec(const std::string& code) {
    pyasio::object d = main_dict();
    pyasio::object r = pyasio::steal(PyRun_String(code.c_str(), Py_file_input, d.ptr(), d.ptr()));
    if (!r)
        throw pyasio::python_error::fetch();
}

pyasio::object eval(const std::string& code) {
    pyasio::object d = main_dict();
    pyasio::object r = pyasio::steal(PyRun_String(code.c_str(), Py_eval_input, d.ptr(), d.ptr()));
    if (!r)
        throw pyasio::python_error::fetch();
    return r;
}

} // namespace test
