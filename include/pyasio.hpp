// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_HPP
#define PYASIO_HPP

/// @file
/// The single include: everything pyasio offers.

#include <pyasio/config.hpp>

#include <pyasio/convert.hpp>
#include <pyasio/error.hpp>
#include <pyasio/future_into_py.hpp>
#include <pyasio/gil.hpp>
#include <pyasio/into_future.hpp>
#include <pyasio/into_stream.hpp>
#include <pyasio/loop.hpp>
#include <pyasio/loop_executor.hpp>
#include <pyasio/object.hpp>
#include <pyasio/run.hpp>
#include <pyasio/runtime.hpp>
#include <pyasio/stream.hpp>
#include <pyasio/stream_into_py.hpp>

#endif // PYASIO_HPP
