// SPDX-License-Identifier: BSL-1.0
// Expected to fail to compile: a keyword argument before a positional one.
#include <pyasio.hpp>

pyasio::object f(pyasio::handle fn) {
    return pyasio::call(fn, pyasio::kwarg("a", 1), 2);
}
