// SPDX-License-Identifier: BSL-1.0
// Compiled with pyasio's platform checks set as on a POSIX system without eventfd and pipe2
// (macOS; tests/CMakeLists.txt), where loops are woken through a pipe made with pipe and fcntl.
// NOTE: not a macOS build: Linux's system headers, Asio's Linux reactor and Debian's Python
// headers (whose pyconfig.h needs __linux__) stay as they are; pyasio's own branches for that
// platform compile, with both compilers and the warnings users turn on. The Python suite runs
// with these settings in the test command.
#include <pyasio.hpp>

static_assert(!PYASIO_DETAIL_HAS_EVENTFD, "compile this with -DPYASIO_DETAIL_HAS_EVENTFD=0");
static_assert(PYASIO_DETAIL_HAS_PIPE_WAKE && !PYASIO_DETAIL_HAS_PIPE2);
static_assert(pyasio::detail::default_wake_fd_kind == pyasio::detail::wake_fd_kind::pipe);

int main() {
    return 0;
}
