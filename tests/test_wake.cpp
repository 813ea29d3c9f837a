// SPDX-License-Identifier: BSL-1.0
// The wake file descriptors of the loop bridge (loop.hpp's detail::wake_fd), each kind this
// platform has: Linux has all three (eventfd; a pipe made by pipe2, as on the BSDs; a pipe made by
// pipe and fcntl, as on macOS), so each is checked here whatever the build wakes loops with.
#include "support.hpp"

#include <cerrno>
#include <cstdint>
#include <vector>

#if !defined(_WIN32)
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#endif

namespace {
using pyasio::detail::wake_fd;
using pyasio::detail::wake_fd_kind;

#if !defined(_WIN32)
bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

std::vector<wake_fd_kind> kinds_here() {
    std::vector<wake_fd_kind> kinds{wake_fd_kind::pipe};
#if PYASIO_DETAIL_HAS_PIPE2
    kinds.push_back(wake_fd_kind::pipe2);
#endif
#if PYASIO_DETAIL_HAS_EVENTFD
    kinds.push_back(wake_fd_kind::eventfd);
#endif
    return kinds;
}
#endif
} // namespace

TEST_CASE("the build's wake kind is the platform's, or a pipe with PYASIO_USE_PIPE_WAKE",
          "[wake]") {
#if defined(_WIN32)
    CHECK(pyasio::detail::default_wake_fd_kind == wake_fd_kind::none);
#elif defined(__linux__) && !PYASIO_USE_PIPE_WAKE
    CHECK(pyasio::detail::default_wake_fd_kind == wake_fd_kind::eventfd);
#else
    CHECK(pyasio::detail::default_wake_fd_kind ==
          (PYASIO_DETAIL_HAS_PIPE2 ? wake_fd_kind::pipe2 : wake_fd_kind::pipe));
#endif
}

#if !defined(_WIN32)
TEST_CASE("a wake fd is non-blocking and close-on-exec, signal makes it readable and clear not",
          "[wake]") {
    for (wake_fd_kind kind : kinds_here()) {
        INFO(pyasio::detail::wake_fd_kind_name(kind));
        wake_fd w(kind);
        REQUIRE(w.kind() == kind);
        REQUIRE(w.read_fd() >= 0);
        CHECK((w.write_fd() == w.read_fd()) == (kind == wake_fd_kind::eventfd));
        for (int fd : {w.read_fd(), w.write_fd()}) {
            CHECK((::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
            CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
        }
        CHECK_FALSE(readable(w.read_fd()));
        w.clear(); // nothing to read: returns at once (non-blocking)
        w.signal();
        w.signal();
        CHECK(readable(w.read_fd()));
        w.clear();
        CHECK_FALSE(readable(w.read_fd())); // every signal consumed by one clear
        w.signal();
        CHECK(readable(w.read_fd()));
    }
}

TEST_CASE("a full pipe stays readable: signals beyond its capacity are not lost", "[wake]") {
    for (wake_fd_kind kind : kinds_here()) {
        INFO(pyasio::detail::wake_fd_kind_name(kind));
        wake_fd w(kind);
        // NOTE: a pipe holds 64 KiB on Linux (16 KiB on macOS): 200k one-byte writes fill it;
        // the writes that find it full fail with EAGAIN and do not block
        for (int i = 0; i < 200'000; ++i)
            w.signal();
        CHECK(readable(w.read_fd()));
        w.clear();
        CHECK_FALSE(readable(w.read_fd()));
        w.signal();
        CHECK(readable(w.read_fd()));
    }
}

TEST_CASE("a wake fd closes its descriptors once, when closed or destroyed", "[wake]") {
    for (wake_fd_kind kind : kinds_here()) {
        INFO(pyasio::detail::wake_fd_kind_name(kind));
        int r = -1;
        int w = -1;
        {
            wake_fd a(kind);
            r = a.read_fd();
            w = a.write_fd();
            wake_fd b(std::move(a)); // the descriptors move with it
            CHECK(b.read_fd() == r);
            CHECK(::fcntl(r, F_GETFD) >= 0);
        }
        CHECK((::fcntl(r, F_GETFD) < 0 && errno == EBADF));
        CHECK((::fcntl(w, F_GETFD) < 0 && errno == EBADF));
        wake_fd c(kind);
        c.close();
        CHECK(c.kind() == wake_fd_kind::none);
        CHECK(c.read_fd() == -1);
        c.signal(); // no effect once closed
        c.clear();
        c.close();
    }
}
#endif

TEST_CASE("a wake kind this platform lacks is refused with invalid_argument", "[wake]") {
    CHECK_THROWS_AS(wake_fd(wake_fd_kind::none), std::invalid_argument);
#if !PYASIO_DETAIL_HAS_EVENTFD
    CHECK_THROWS_AS(wake_fd(wake_fd_kind::eventfd), std::invalid_argument);
#endif
#if !PYASIO_DETAIL_HAS_PIPE2
    CHECK_THROWS_AS(wake_fd(wake_fd_kind::pipe2), std::invalid_argument);
#endif
}
