// SPDX-License-Identifier: BSL-1.0
// Expected to fail to compile: a string_view into a Python str could dangle.
#include <pyasio.hpp>

std::string_view f(pyasio::handle h) {
    return pyasio::from_python<std::string_view>(h);
}
