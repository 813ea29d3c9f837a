// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_GIL_HPP
#define PYASIO_GIL_HPP

/// @file
/// The GIL: scopes that take it (gil_acquire, async_gil across co_await) or release it
/// (gil_release), and persistent_thread_state for threads that take it often.

#include <pyasio/config.hpp>

#include <pyasio/detail/object_core.hpp>

#include <asio/awaitable.hpp>

#include <exception>
#include <stdexcept>
#include <type_traits>
#include <utility>

PYASIO_NAMESPACE_BEGIN

/// Questions about the GIL that any thread may ask.
namespace gil {

/// True when the calling thread holds the GIL. Needs no GIL; false before Py_Initialize and after
/// finalization.
inline bool held() noexcept {
    return detail::gil_held();
}

} // namespace gil

/// Holds the GIL for its scope, on any thread (PyGILState_Ensure / PyGILState_Release; nests).
///
/// On a thread with a pyasio::persistent_thread_state the same Python thread state is reused
/// every time; elsewhere CPython creates a thread state for the outermost acquire and destroys
/// it at the matching release. Never hold one across a co_await.
class gil_acquire {
public:
    /// Takes the GIL. Throws std::logic_error when the interpreter is not running (not yet
    /// initialized, or finalizing) and this thread does not already hold the GIL.
    gil_acquire() {
        // NOTE: during finalization the finalizing thread still holds the GIL (destructors of
        // module state run there) and may nest an acquire; any other thread must not try.
        if (!detail::gil_held() && !detail::interpreter_alive())
            throw std::logic_error(
                "pyasio::gil_acquire: the Python interpreter is not running (not yet initialized "
                "or already finalizing); nothing may touch Python now");
        state_ = PyGILState_Ensure();
        detail::release_pending();
    }
    ~gil_acquire() {
        // NOTE: a thread that CPython ends (at exit) lost the GIL first; its forced unwind runs
        // this destructor, which must then not touch Python
        if (detail::gil_held())
            PyGILState_Release(state_);
    }
    gil_acquire(const gil_acquire&) = delete;
    gil_acquire& operator=(const gil_acquire&) = delete;

private:
    PyGILState_STATE state_;
};

/// Releases the GIL for its scope and takes it back at the end (PyEval_SaveThread /
/// PyEval_RestoreThread), so that other Python threads run while this one works in C++.
/// The calling thread must hold the GIL; otherwise the constructor throws std::logic_error.
class gil_release {
public:
    gil_release() {
        if (!detail::gil_held())
            throw std::logic_error("pyasio::gil_release: this thread does not hold the GIL, so "
                                   "there is nothing to release (take it with gil_acquire first, "
                                   "or drop the gil_release)");
        save_ = PyEval_SaveThread();
    }
    // NOTE: not noexcept: CPython ends a thread that takes the GIL back once finalization has
    // begun (pthread_exit), and that forced unwind must be able to leave this destructor.
    ~gil_release() noexcept(false) { PyEval_RestoreThread(save_); }
    gil_release(const gil_release&) = delete;
    gil_release& operator=(const gil_release&) = delete;

private:
    PyThreadState* save_;
};

/// Gives the calling thread one Python thread state for as long as this object lives, so that
/// every gil_acquire on the thread reuses it instead of creating and destroying one (a thread
/// state costs an allocation, a lock of the runtime's thread list and, on destruction, clearing
/// its frame and context data). Create one at the top of a thread you own (pyasio's runtime
/// threads have none: they are not meant to take the GIL). Create it without holding the GIL; it
/// must be destroyed on the same thread.
///
/// If the interpreter is finalized first, the thread state belongs to it and is not touched
/// again.
class persistent_thread_state {
public:
    /// Throws std::logic_error when the interpreter is not running, or when this thread already
    /// has a Python thread state (the main thread, a Python thread, another
    /// persistent_thread_state).
    persistent_thread_state() {
        if (!detail::interpreter_alive())
            throw std::logic_error("pyasio::persistent_thread_state: the Python interpreter is "
                                   "not running");
        if (PyGILState_GetThisThreadState() != nullptr)
            throw std::logic_error("pyasio::persistent_thread_state: this thread already has a "
                                   "Python thread state (the main thread, a Python thread, or "
                                   "another persistent_thread_state); it needs none");
        // NOTE: the outermost PyGILState_Ensure on a thread creates its thread state and the
        // matching PyGILState_Release destroys it. Keeping this one Ensure open (with the GIL
        // released by PyEval_SaveThread) keeps the state alive: every later Ensure/Release pair
        // on this thread nests inside it and reuses the same state.
        outer_ = PyGILState_Ensure();
        tstate_ = PyEval_SaveThread();
    }

    ~persistent_thread_state() {
        if (!detail::interpreter_alive())
            return; // the interpreter owns and frees its thread states at finalization
        PyEval_RestoreThread(tstate_);
        detail::release_pending();
        PyGILState_Release(outer_); // the outermost release: CPython destroys the state
    }

    persistent_thread_state(const persistent_thread_state&) = delete;
    persistent_thread_state& operator=(const persistent_thread_state&) = delete;

    /// The thread state kept for this thread.
    PyThreadState* get() const noexcept { return tstate_; }

private:
    PyGILState_STATE outer_;
    PyThreadState* tstate_ = nullptr;
};

/// Holds the GIL in a C++ coroutine that must also co_await: the GIL is released for each wait
/// and taken again when the coroutine resumes, on whichever thread resumes it.
///
///     pyasio::async_gil gil;                   // taken here
///     pyasio::call(fn, 1);                     // Python, with the GIL
///     co_await gil.release_during(timer.async_wait(asio::use_awaitable));
///     pyasio::call(fn, 2);                     // the GIL again, maybe on another thread
///
/// A plain co_await while it holds the GIL breaks the rule (never hold the GIL across a
/// suspension): in debug builds pyasio's runtime threads stop the program with a message naming
/// the rule when a handler returns still holding the GIL. Not copyable or movable; keep it in
/// the coroutine's frame.
class async_gil {
public:
    /// Takes the GIL; std::logic_error as for gil_acquire.
    async_gil() { acquire(); }
    ~async_gil() {
        if (held_ && detail::gil_held()) // NOTE: see ~gil_acquire
            PyGILState_Release(state_);
    }
    async_gil(const async_gil&) = delete;
    async_gil& operator=(const async_gil&) = delete;

    /// Awaits `op` without the GIL, then takes the GIL again (also when `op` throws).
    template <class T, class Executor>
    asio::awaitable<T, Executor> release_during(asio::awaitable<T, Executor> op) {
        release();
        try {
            if constexpr (std::is_void_v<T>) {
                co_await std::move(op);
                acquire();
            } else {
                T result = co_await std::move(op);
                acquire();
                co_return result;
            }
        } catch (...) {
            detail::caught();
            if (!held_)
                acquire();
            throw;
        }
    }

    /// Whether it holds the GIL now (false only while a release_during waits).
    bool held() const noexcept { return held_; }

private:
    void acquire() {
        if (!detail::gil_held() && !detail::interpreter_alive())
            throw std::logic_error("pyasio::async_gil: the Python interpreter is not running; "
                                   "nothing may touch Python now");
        state_ = PyGILState_Ensure();
        held_ = true;
        detail::release_pending();
    }
    void release() noexcept {
        held_ = false;
        PyGILState_Release(state_);
    }

    PyGILState_STATE state_{};
    bool held_ = false;
};

PYASIO_NAMESPACE_END

#endif // PYASIO_GIL_HPP
