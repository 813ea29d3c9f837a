// SPDX-License-Identifier: BSL-1.0
#include "support.hpp"

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
