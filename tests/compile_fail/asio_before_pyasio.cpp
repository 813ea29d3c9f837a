// SPDX-License-Identifier: BSL-1.0
// Expected to fail to compile under clang (Asio included first decides that there are no
// coroutines), and with any compiler in code for a shared object (-fPIC: Asio included first
// pushes default visibility, so an extension module would export Asio's code and bind it to
// another module's): pyasio stops with a message saying which include goes first.
#include <asio.hpp>

#include <pyasio.hpp>
