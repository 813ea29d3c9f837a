// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_LOOP_EXECUTOR_HPP
#define PYASIO_LOOP_EXECUTOR_HPP

/// @file
/// loop_executor: an Asio executor that runs handlers on a Python event loop's thread, with
/// the GIL held.

#include <pyasio/config.hpp>

#include <pyasio/detail/blocking_choice.hpp>
#include <pyasio/error.hpp>
#include <pyasio/gil.hpp>
#include <pyasio/loop.hpp>
#include <pyasio/runtime.hpp>

#include <asio/execution.hpp>
#include <asio/execution_context.hpp>

#include <exception>
#include <type_traits>
#include <utility>

PYASIO_NAMESPACE_BEGIN

namespace detail {
/// One handler queued for the loop thread.
template <class F> struct handler_job final : loop_job {
    task_locals locals;
    F f;
    handler_job(task_locals l, F fn) : locals(std::move(l)), f(std::move(fn)) {}
    void run() override {
        try {
            task_locals_scope scope(&locals);
            in_context(locals.context(), f);
        } catch (...) { // a handler must not throw: report it like an error in a callback
            report_escaped(detail::caught(), "on the loop thread (pyasio::loop_executor)");
        }
        delete this;
    }
    void abandon() noexcept override { delete this; } // the loop is gone: never runs
};
} // namespace detail

/// An Asio executor that runs handlers on a Python event loop's thread, with the GIL held.
///
/// C++ coroutines co_spawned on it run beside Python code with no thread hop, and may call
/// Python directly; into_future resumes them straight from the task's done callback. It works
/// with co_spawn, post, dispatch, defer, strands, and as the executor of I/O objects: their I/O
/// runs on the default runtime's io_context (the executor's execution context), their completion
/// handlers on the loop.
///
/// From any thread, a handler is queued on the loop bridge (one wake per batch). On the loop's
/// own thread with the GIL, dispatch (blocking.possibly) runs it at once; post
/// (blocking.never) queues it. While a handler runs, current_task_locals() is the executor's
/// (so into_future needs no arguments in a coroutine on it), and so is the contextvars context
/// Python code called from it sees. Copies need no GIL.
class loop_executor : public detail::blocking_choice<loop_executor> {
public:
    /// The executor of the loop in `locals`.
    explicit loop_executor(task_locals locals) noexcept : locals_(std::move(locals)) {}

    /// The executor of the loop running in this thread. GIL held; RuntimeError when none runs.
    static loop_executor current() { return loop_executor(task_locals::capture()); }

    /// The loop and context it runs handlers for.
    const task_locals& locals() const noexcept { return locals_; }

    /// True on the loop's thread, with the GIL, while the loop runs.
    bool running_in_this_thread() const { return detail::loop_runs_here(*locals_.bridge()); }

    /// Runs `f` with the executor's task locals current and its context entered: at once on the
    /// loop's thread while the loop runs there (unless blocking.never was required), where an
    /// exception from `f` propagates to the caller; otherwise queued on the loop bridge, to run
    /// on the loop thread with the GIL, where an exception is reported like an error in a
    /// callback (PyErr_WriteUnraisable). Any thread; no GIL needed to queue.
    template <class F> void execute(F&& f) const {
        if (!never_ && running_in_this_thread()) {
            detail::task_locals_scope scope(&locals_);
            detail::in_context(locals_.context(), std::forward<F>(f));
            return;
        }
        locals_.bridge()->push(
            new detail::handler_job<std::decay_t<F>>(locals_, std::forward<F>(f)));
    }

    /// Its I/O objects run on the default runtime's io_context.
    asio::execution_context& query(asio::execution::context_t) const noexcept {
        return detail::runtime_slot::instance().context();
    }
    using blocking_choice::query;

    /// Equal when they run handlers on the same loop with the same blocking property.
    friend bool operator==(const loop_executor& a, const loop_executor& b) noexcept {
        return a.locals_.bridge() == b.locals_.bridge() && a.never_ == b.never_;
    }
    /// !(a == b).
    friend bool operator!=(const loop_executor& a, const loop_executor& b) noexcept {
        return !(a == b);
    }

private:
    task_locals locals_;
};

PYASIO_NAMESPACE_END

#endif // PYASIO_LOOP_EXECUTOR_HPP
