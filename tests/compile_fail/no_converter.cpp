// SPDX-License-Identifier: BSL-1.0
// Expected to fail to compile with pyasio's message about specializing pyasio::converter.
#include <pyasio.hpp>

struct not_convertible {};

pyasio::object f() {
    return pyasio::to_python(not_convertible{});
}
