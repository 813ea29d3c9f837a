// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_DETAIL_SYSTEM_HEADERS_HPP
#define PYASIO_DETAIL_SYSTEM_HEADERS_HPP

/// @file
/// The standard and system headers that Asio includes, for config.hpp to include before it
/// includes Asio under hidden visibility.

// NOTE: "#pragma GCC visibility push(hidden)" applies to declarations as well as definitions: a
// C library function or variable first declared inside the pragma's region is taken to be
// defined in this shared object, and the link fails ("hidden symbol 'eventfd' isn't defined",
// "undefined hidden symbol '__libc_single_threaded'"). Every header that Asio includes from
// outside Asio is therefore included here first, outside the region; its include guard keeps
// Asio's own inclusion of it from declaring anything again. The list is what Asio 1.22-1.30
// includes on Linux and the other POSIX systems, with libstdc++ or libc++; a header missing from
// it shows at link time, never at run time.

#include <algorithm>
#include <any>
#include <array>
#include <atomic>
#include <cassert>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <coroutine>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <iosfwd>
#include <iterator>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <variant>
#include <vector>

#if !defined(_WIN32)
#include <sys/types.h> // NOTE: first: older BSDs need it before the other system headers

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#if __has_include(<poll.h>)
#include <poll.h>
#endif
#if __has_include(<termios.h>)
#include <termios.h>
#endif
#if __has_include(<sys/select.h>)
#include <sys/select.h>
#endif
#if __has_include(<sys/epoll.h>)
#include <sys/epoll.h>
#endif
#if __has_include(<sys/eventfd.h>)
#include <sys/eventfd.h>
#endif
#if __has_include(<sys/timerfd.h>)
#include <sys/timerfd.h>
#endif
#if __has_include(<sys/event.h>)
#include <sys/event.h>
#include <sys/time.h>
#endif
#if __has_include(<linux/version.h>)
#include <linux/version.h>
#endif
#endif

#endif // PYASIO_DETAIL_SYSTEM_HEADERS_HPP
