// SPDX-License-Identifier: BSL-1.0
// Expected to fail to compile: a span of bytes converted from Python would view freed memory.
#include <pyasio.hpp>

#include <span>

std::span<const std::byte> f(pyasio::handle h) {
    return pyasio::from_python<std::span<const std::byte>>(h);
}
