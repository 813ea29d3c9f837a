// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_STREAM_HPP
#define PYASIO_STREAM_HPP

/// @file
/// Streams both ways: into_stream (C++ reads a Python async iterator), stream_into_py and
/// channel_into_py (Python reads a C++ producer or an Asio channel). Includes both directions'
/// headers, pyasio/into_stream.hpp and pyasio/stream_into_py.hpp, which can also be included
/// alone.

#include <pyasio/config.hpp>

#include <pyasio/into_stream.hpp>
#include <pyasio/stream_into_py.hpp>

#endif // PYASIO_STREAM_HPP
