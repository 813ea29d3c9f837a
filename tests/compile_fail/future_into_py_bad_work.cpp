// SPDX-License-Identifier: BSL-1.0
// Expected to fail to compile: 42 is neither an awaitable, nor a callable returning one, nor an
// Asio initiation.
#include <pyasio.hpp>

pyasio::object f() {
    return pyasio::future_into_py(42);
}
