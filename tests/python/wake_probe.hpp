// SPDX-License-Identifier: BSL-1.0
// What the Python tests see of a loop's bridge in this module (each test module has its own copy
// of pyasio, so its own bridges): wake_info(loop) and wake_fd_kind(), for test_wake.py and the
// loop set-ups of the other suites.
#pragma once
#include <pyasio.hpp>

#include <stdexcept>
#include <string>
#include <tuple>

namespace wake_probe {

/// wake_info(loop): (mode, fd kind, fd, pushes) of this module's bridge for `loop`, made on first
/// use: mode "reader" or "threadsafe"; fd kind "eventfd", "pipe2", "pipe" or "none"
/// (call_soon_threadsafe mode); the file descriptor the loop watches, or -1; the jobs pushed.
inline PyObject* wake_info(PyObject*, PyObject* loop) {
    return pyasio::entry_point([&] {
        auto b = pyasio::detail::bridge_registry::instance().bridge_for(pyasio::handle(loop));
        return std::tuple(
            std::string(b->wake_mode() == pyasio::loop_wake::reader ? "reader" : "threadsafe"),
            std::string(pyasio::detail::wake_fd_kind_name(b->wake_kind())), b->wake_read_fd(),
            b->pushes());
    });
}

/// wake_fd_kind(): what this module's build wakes loops with ("eventfd", "pipe2", "pipe",
/// "none").
inline PyObject* wake_fd_kind(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        return std::string(pyasio::detail::wake_fd_kind_name(pyasio::detail::default_wake_fd_kind));
    });
}

/// set_wake(mode): pyasio::set_loop_wake for loops this module bridges from now on: "reader" or
/// "threadsafe".
inline PyObject* set_wake(PyObject*, PyObject* mode) {
    return pyasio::entry_point([&] {
        std::string m = pyasio::from_python<std::string>(pyasio::handle(mode));
        if (m != "reader" && m != "threadsafe")
            throw std::invalid_argument("wake mode must be 'reader' or 'threadsafe'");
        pyasio::set_loop_wake(m == "reader" ? pyasio::loop_wake::reader
                                            : pyasio::loop_wake::call_soon_threadsafe);
    });
}

} // namespace wake_probe

/// The two functions, for a module's method table.
#define PYASIO_TEST_WAKE_PROBE_METHODS                                                             \
    {"wake_info", wake_probe::wake_info, METH_O, "(mode, fd kind, fd) of this loop's bridge"},     \
        {"wake_fd_kind", wake_probe::wake_fd_kind, METH_NOARGS, "this build's wake fd kind"}, {    \
        "set_wake", wake_probe::set_wake, METH_O, "pyasio::set_loop_wake for loops bridged later"  \
    }
