// SPDX-License-Identifier: BSL-1.0
// Expected to fail to compile under clang: Asio included first decides that there are no
// coroutines, so pyasio stops with a message saying which include goes first.
#include <asio.hpp>

#include <pyasio.hpp>
