// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_INTO_FUTURE_HPP
#define PYASIO_INTO_FUTURE_HPP

/// @file
/// C++ awaits Python: into_future, an Asio async operation over a Python awaitable, and
/// async_function for calls made on the loop thread.

#include <pyasio/config.hpp>

#include <pyasio/convert.hpp>
#include <pyasio/detail/done_callback.hpp>
#include <pyasio/detail/ref_counted.hpp>
#include <pyasio/error.hpp>
#include <pyasio/gil.hpp>
#include <pyasio/loop.hpp>
#include <pyasio/object.hpp>
#include <pyasio/runtime.hpp>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/execution.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

PYASIO_NAMESPACE_BEGIN

namespace detail {

/// What into_future looks up once per interpreter.
struct into_future_names {
    object cancel = interned("cancel");
    object cancelled = interned("cancelled");
    object exception = interned("exception");
    object result = interned("result");
    object cr_frame = interned("cr_frame");
    object asyncio_future_blocking = interned("_asyncio_future_blocking");
    object coroutine_type = getattr(import("types"), "CoroutineType");
};

/// Throws type_error unless `o` is awaitable (a coroutine, Task, Future, or any object whose
/// type has __await__). Reads only the object's type: no GIL needed.
inline void check_awaitable(handle o) {
    if (!o)
        throw type_error("pyasio::into_future: expected an awaitable, got no object (an empty "
                         "pyasio::object)");
    if (slot_await(o.ptr()) != nullptr)
        return;
    const char* hint = "; pass the coroutine an async function returns, a Task or a Future";
    if (o.ptr() == Py_None)
        hint = "; a function returned None where a coroutine was expected: is it an `async def`?";
    else if (slot_call(o.ptr()) != nullptr)
        hint = "; did you forget to call it? Pass f(args), not f (or use pyasio::async_function)";
    std::string name;
    {
        gil_acquire gil; // NOTE: the limited API asks the type for its name
        name = o.type_name();
    }
    throw type_error(std::string("pyasio::into_future: expected an awaitable (a coroutine, "
                                 "Task, Future or an object with __await__), got ") +
                     name + hint);
}

/// True for a coroutine object (what an async def returns). GIL held.
inline bool is_coroutine(handle o) {
    return Py_TYPE(o.ptr()) == reinterpret_cast<PyTypeObject*>(
                                   per_interpreter<into_future_names>().coroutine_type.ptr());
}

/// A coroutine object runs once: one that ran (or was closed) gets Python's own error, with
/// what to do. Loop thread, GIL held.
inline void check_not_reused(handle awaitable) {
    if (!is_coroutine(awaitable) ||
        !getattr(awaitable, per_interpreter<into_future_names>().cr_frame).is_none())
        return;
    throw_error(PyExc_RuntimeError,
                "cannot reuse already awaited coroutine " +
                    str_or(getattr(awaitable, "__qualname__"), "?") +
                    ": a coroutine object runs once; call the async function again for each "
                    "await (pyasio::async_function does that for you)");
}

/// The task locals into_future (or `what`) uses when none are given: those of the C++ work that
/// calls it, else the loop running in this thread (GIL held), else the default ones;
/// logic_error naming the ways to give them when there are none.
inline task_locals locals_for_into_future(const char* what = "pyasio::into_future") {
    if (std::optional<task_locals> locals = current_task_locals())
        return *std::move(locals);
    if (gil::held())
        if (object loop = running_loop())
            return task_locals_access::capture(loop);
    if (std::optional<task_locals> locals = default_task_locals())
        return *std::move(locals);
    throw std::logic_error(
        std::string(what) +
        ": no event loop to run on. Call it from C++ work started by pyasio::future_into_py "
        "(which captures the loop and context), on the loop's thread while it runs, or inside "
        "pyasio::run (its loop is the default), or pass pyasio::task_locals "
        "(pyasio::task_locals::of(loop) on any thread, or capture() on the loop's thread)");
}

template <class T> T result_from_python(handle result) {
    if constexpr (std::is_same_v<T, object>)
        return borrow(result);
    else
        return from_python<T>(result);
}

/// The executor a handler runs on, tracked (outstanding work). NOTE: a handler with no executor of
/// its own runs on the default runtime, never on the loop thread (Asio's fallback, the system
/// executor, would run it there inline); the runtime is looked up only then.
template <class Handler> auto handler_work(const Handler& handler) {
    auto ex = asio::get_associated_executor(handler, asio::any_io_executor());
    if constexpr (std::is_same_v<decltype(ex), asio::any_io_executor>)
        if (!ex)
            ex = default_executor();
    return asio::prefer(std::move(ex), asio::execution::outstanding_work.tracked);
}
template <class Handler>
using handler_work_t = std::decay_t<decltype(handler_work(std::declval<const Handler&>()))>;

/// A call of a Python callable, made on the loop thread by into_future (see async_function).
template <class... Args> struct async_call {
    std::shared_ptr<const object> fn;
    std::tuple<Args...> args;
};

template <class S> struct is_async_call : std::false_type {};
template <class... Args> struct is_async_call<async_call<Args...>> : std::true_type {};

/// What into_future can start: an awaitable, or an async_call.
template <class S>
concept into_future_source = std::is_same_v<S, object> || is_async_call<S>::value;

/// The awaitable to start, on the loop thread with the GIL (the context entered).
inline object awaitable_from(object& awaitable) {
    return std::move(awaitable);
}
/// The call's result, on the loop thread with the GIL.
template <class... Args> object call_of(async_call<Args...>& c) {
    return std::apply([&](Args&... a) { return call(*c.fn, a...); }, c.args);
}
/// A coroutine that will never run (C++ cancelled the await before it started) is closed, as a
/// task cancelled before its first step closes its coroutine: no "never awaited" warning. A
/// call not yet made has nothing to close. Loop thread, GIL held.
inline void close_unstarted(object& awaitable) {
    if (!awaitable || !is_coroutine(awaitable))
        return;
    try {
        // NOTE: only one that never started: one suspended in another task is that task's
        object state = call(getattr(import("inspect"), "getcoroutinestate"), awaitable);
        if (PyUnicode_CompareWithASCIIString(state.ptr(), "CORO_CREATED") == 0)
            call_method(awaitable, "close");
    } catch (...) { // the close of a coroutine that never ran runs none of its code
        translate_exception(detail::caught());
        PyErr_WriteUnraisable(awaitable.ptr());
    }
}
template <class... Args> void close_unstarted(async_call<Args...>&) noexcept {}
template <class... Args> object awaitable_from(async_call<Args...>& c) {
    object result = call_of(c);
    if (slot_await(result.ptr()) == nullptr)
        throw type_error(std::string("pyasio::async_function: the call returned a ") +
                         result.type_name() +
                         ", not an awaitable; give an async function (async def), or a callable "
                         "that returns a coroutine, Task or Future");
    return result;
}

/// One into_future call. Owners: the pending completion (until the handler has run),
/// the start job while it is queued, the Python done callback while it lives, and each cancel
/// job while it is queued.
template <class T, class Handler, class Source>
class into_state final : public ref_counted,
                         public loop_job,
                         public loop_watch,
                         public done_callback_target {
public:
    into_state(Handler handler, Source source, task_locals locals)
        : ref_counted(2), // the pending completion and the start job
          handler_(std::move(handler)), work_(handler_work(handler_)), source_(std::move(source)),
          locals_(std::move(locals)) {}

    /// C++ side, any thread: listens for cancellation and starts the awaitable: at once on the
    /// loop's own thread (no queue, no wake), else through the loop bridge.
    void begin() {
        auto slot = asio::get_associated_cancellation_slot(handler_);
        if (slot.is_connected())
            slot.template emplace<cancel_handler>(this);
        std::shared_ptr<loop_bridge> bridge = locals_.bridge(); // NOTE: held for the push
        if (loop_runs_here(*bridge)) {
            // NOTE: inside the initiating function: an early failure must be posted, not run
            // here (Asio's rule), so deliver posts while this flag is set.
            starting_inline_ = true;
            run();
            return; // `this` may be gone
        }
        bridge->push(this);
    }

    /// The start job, on the loop thread with the GIL.
    void run() override {
        if (cpp_cancelled_.load(std::memory_order_acquire)) {
            close_unstarted(*source_);
            deliver(aborted());
        } else {
            try {
                start();
            } catch (...) {
                deliver(detail::caught());
            }
        }
        source_.reset(); // released here, with the GIL
        starting_inline_ = false;
        release();
    }

    /// The loop is gone before the start job ran.
    void abandon() noexcept override {
        deliver(std::make_exception_ptr(event_loop_closed(
            "pyasio::into_future: the event loop closed before the awaitable started")));
        release();
    }

    /// The task is done. Loop thread, GIL held.
    void on_done() override {
        locals_.bridge()->unwatch(this);
        // NOTE: the loop's close was heard first (on_loop_closed delivered, and let go of the
        // task): a trio run runs the callbacks queued as it ends, after its readers are gone
        if (!task_)
            return;
        report_outcome();
        // NOTE: last: dropping the task may free the done callback, and with it this state
        object task = std::move(task_);
    }

    /// The done callback died without the task being done: the interpreter is clearing
    /// garbage at exit, or the task was dropped after the loop closed. Loop thread, GIL held.
    void on_gone() noexcept override {
        locals_.bridge()->unwatch(this);
        deliver(std::make_exception_ptr(event_loop_closed(
            "pyasio::into_future: the event loop closed before the Python task's outcome "
            "reached C++ (the task was dropped unfinished, or its done callback never ran); "
            "keep the loop running until the C++ side is done")));
        object task = std::move(task_);
        release();
    }

    /// The loop closed while the task was pending. Loop thread, GIL held.
    void on_loop_closed() noexcept override {
        deliver(std::make_exception_ptr(event_loop_closed(
            "pyasio::into_future: the event loop was closed while C++ awaited this task (the "
            "task never finished); keep the loop running until the C++ side is done")));
        // NOTE: last: the task, pending for ever, is let go of (its callback then releases
        // this state, which may free it)
        object task = std::move(task_);
    }

private:
    /// Reads the done task's outcome and delivers it. Loop thread, GIL held.
    void report_outcome() {
        try {
            const into_future_names& names = per_interpreter<into_future_names>();
            if (call_method(task_, names.cancelled).ptr() == Py_True) {
                if (cpp_cancelled_.load(std::memory_order_acquire))
                    deliver(aborted());
                else
                    deliver(std::make_exception_ptr(
                        task_cancelled("pyasio::into_future: the Python task was cancelled by "
                                       "Python (task.cancel(), a timeout, or its loop shutting "
                                       "down); catch pyasio::task_cancelled to handle it")));
                return;
            }
            object error = call_method(task_, names.exception);
            if (!error.is_none()) {
                deliver(std::make_exception_ptr(python_error(error)));
                return;
            }
            object result = call_method(task_, names.result);
            if constexpr (std::is_void_v<T>)
                deliver(nullptr);
            else
                deliver(nullptr, converted(result));
        } catch (...) {
            deliver(detail::caught());
        }
    }

    /// The result as T; a conversion error says where it comes from.
    static auto converted(handle result) {
        try {
            return result_from_python<T>(result);
        } catch (const python_error& e) {
            if (!e.matches(handle(PyExc_TypeError)) && !e.matches(handle(PyExc_OverflowError)))
                throw;
            throw_error_from(reinterpret_cast<PyObject*>(Py_TYPE(e.value().ptr())),
                             "pyasio::into_future<T>: the awaitable's result does not convert to "
                             "T: " +
                                 str_or(e.value(), "?") +
                                 " (await something that returns that, or ask for "
                                 "into_future<pyasio::object> to take any result)",
                             e);
        }
    }

    /// Installed in the handler's cancellation slot; runs where the C++ side emits.
    struct cancel_handler {
        into_state* s;
        explicit cancel_handler(into_state* state) noexcept : s(state) {}
        void operator()(asio::cancellation_type type) const {
            if ((type & asio::cancellation_type::terminal) != asio::cancellation_type::none)
                s->cancel_from_cpp(true);
            else if ((type & (asio::cancellation_type::partial | asio::cancellation_type::total)) !=
                     asio::cancellation_type::none)
                s->cancel_from_cpp(false);
        }
    };

    /// Carries a cancellation to the loop thread.
    struct cancel_job final : loop_job {
        counted_ref<into_state> s;
        explicit cancel_job(into_state* state) noexcept
            : s(counted_ref<into_state>::share(state)) {}
        void run() override {
            s->cancel_task();
            delete this;
        }
        void abandon() noexcept override { delete this; }
    };

    using value_type = std::conditional_t<std::is_void_v<T>, char, T>;

    static std::exception_ptr aborted() {
        return std::make_exception_ptr(std::system_error(asio::error::operation_aborted));
    }

    void start() {
        const into_future_names& names = per_interpreter<into_future_names>();
        object loop = locals_.loop();
        if (!loop)
            throw event_loop_closed("pyasio::into_future: the event loop is gone");
        // The loop's task for it (asyncio.ensure_future, or a trio system task), in the captured
        // context (a task made there copies it).
        object task;
        in_context(locals_.context(), [&] {
            object awaitable = awaitable_from(*source_);
            check_not_reused(awaitable);
            task = start_task(loop, awaitable);
            if (!task && PyErr_ExceptionMatches(PyExc_ValueError) != 0) {
                python_error e = python_error::fetch();
                // NOTE: ensure_future refuses a future (or task) of another loop so
                if (PyObject_HasAttr(awaitable.ptr(), names.asyncio_future_blocking.ptr()) == 0)
                    throw e;
                throw_error_from(PyExc_ValueError,
                                 str_or(e.value(), "?") +
                                     " (pyasio::into_future: a Future or Task runs on the loop "
                                     "that made it; await it on that loop, e.g. with "
                                     "pyasio::task_locals::of(its loop), or make it on this one)",
                                 e);
            }
        });
        if (!task)
            throw_error_already_set();
        object callback = make_done_callback(nullptr);
        add_done_callback(task, callback);
        // The task now holds the callback: from here on it reports to us.
        add_ref();
        // NOTE: held until it is done (or its loop closes), as an await holds what it awaits:
        // a bare Future that only C++ refers to must not be collected while C++ waits.
        task_ = task;
        reinterpret_cast<done_callback_object*>(callback.ptr())->target = this;
        locals_.bridge()->watch(this);
    }

    /// C++ side: the caller's cancellation slot fired (on the handler's executor). No GIL.
    /// The Python task is cancelled on the loop thread. A terminal cancellation also completes
    /// the operation at once (posted) with operation_aborted, without waiting for the task to
    /// end: the loop may not even run (runtime shutdown). Partial and total cancellation wait
    /// for it, so a task that finished first reports its result.
    void cancel_from_cpp(bool terminal) noexcept {
        cpp_cancelled_.store(true, std::memory_order_release);
        try {
            locals_.bridge()->push(new cancel_job(this));
        } catch (...) { // std::bad_alloc: the task keeps running
            detail::caught();
        }
        if (terminal)
            deliver(aborted(), std::nullopt, true);
    }

    /// Loop thread, GIL held: cancels the task if it runs.
    void cancel_task() noexcept {
        if (!task_)
            return;
        try {
            call_method(task_, per_interpreter<into_future_names>().cancel);
        } catch (...) {
            translate_exception(detail::caught());
            PyErr_WriteUnraisable(nullptr);
        }
    }

    /// Hands the outcome to the handler, on the handler's executor: once. Posted (never run
    /// inline) when `post`, or while the operation is being started.
    void deliver(std::exception_ptr error, std::optional<value_type> value = std::nullopt,
                 bool post = false) noexcept {
        if (delivered_.exchange(true, std::memory_order_acq_rel))
            return;
        try {
            // the pending completion's owner travels with the handler
            auto f = [self = counted_ref<into_state>::adopt(this), error = std::move(error),
                      value = std::move(value)]() mutable {
                self->invoke(std::move(error), std::move(value));
            };
            if (post || starting_inline_)
                asio::post(work_, std::move(f));
            else
                asio::dispatch(work_, std::move(f)); // NOTE: may run the handler here
        } catch (...) { // the handler threw (run here by dispatch), or std::bad_alloc
            report_escaped(detail::caught(), "that pyasio::into_future completed");
        }
    }

    /// On the handler's executor: stop listening for cancellation, then complete.
    void invoke(std::exception_ptr error, std::optional<value_type> value) {
        asio::get_associated_cancellation_slot(handler_).clear();
        Handler handler = std::move(handler_);
        if constexpr (std::is_void_v<T>)
            std::move(handler)(std::move(error));
        else
            std::move(handler)(std::move(error), value ? std::move(*value) : T());
    }

    std::atomic<bool> delivered_{false};
    std::atomic<bool> cpp_cancelled_{false};
    bool starting_inline_ = false; // begin() runs the start job itself
    Handler handler_;
    handler_work_t<Handler> work_;
    std::optional<Source> source_;
    task_locals locals_;
    object task_; // the started task (or Future) while it runs; loop thread, GIL held
};

template <class T> struct initiate_into_future {
    template <class Handler, class Source>
    void operator()(Handler&& handler, Source source, task_locals locals) const {
        auto* state = new into_state<T, std::decay_t<Handler>, Source>(
            std::forward<Handler>(handler), std::move(source), std::move(locals));
        state->begin();
    }
};

template <class T> struct into_future_signature { using type = void(std::exception_ptr, T); };
template <> struct into_future_signature<void> { using type = void(std::exception_ptr); };

} // namespace detail

/// C++ awaits Python: an Asio async operation that runs `awaitable` on the Python event loop
/// and completes with its result, converted to T on the loop thread (default: pyasio::object).
///
/// `awaitable` is a coroutine, a Task, a Future or any object with __await__; anything else
/// throws pyasio::type_error (TypeError in Python) at the call. A coroutine can be awaited once:
/// a second into_future of the same coroutine fails with Python's own "cannot reuse already
/// awaited coroutine"; to await a Python async function several times, call it for each use.
///
/// It runs on the loop and in the contextvars context of `locals`; without them, those of the
/// C++ code that calls it (current_task_locals(): work started by future_into_py, a
/// loop_executor handler, a task_locals_scope), else default_task_locals() (pyasio::run's loop);
/// otherwise it throws std::logic_error naming the ways to give them.
///
/// The completion signature is void(std::exception_ptr, T), so every completion token works:
/// `co_await into_future(aw)` (asio::use_awaitable, the default), a callback, asio::use_future,
/// asio::experimental::deferred. The handler runs on its associated executor (a handler without
/// one, e.g. a plain lambda, runs on the default runtime). Outcomes: the result; the
/// Python exception as pyasio::python_error; pyasio::task_cancelled when Python cancelled the
/// task; asio::error::operation_aborted (a std::system_error) when the C++ side cancelled it
/// (through the handler's cancellation slot: the Python task is then cancelled);
/// pyasio::event_loop_closed when the loop closed first.
///
/// @par Threads and the GIL
/// Callable on any thread, with or without the GIL. Called on the loop's own thread while the
/// loop runs (e.g. from a coroutine on the loop_executor), it starts the awaitable at once;
/// from any other thread, it starts it on the loop thread through the loop bridge (one wake per
/// batch) and never touches it on the calling thread.
///
/// @par Closed loops
/// A loop closed while C++ waits (loop.close(), asyncio.run's end) completes the operation with
/// pyasio::event_loop_closed at the close. A loop that is only stopped pauses the task, as
/// it pauses every asyncio task; it resumes when the loop runs again.
template <class T = object, class Token = asio::use_awaitable_t<>>
auto into_future(object awaitable, task_locals locals, Token&& token = Token()) {
    detail::check_awaitable(awaitable);
    return asio::async_initiate<Token, typename detail::into_future_signature<T>::type>(
        detail::initiate_into_future<T>{}, token, std::move(awaitable), std::move(locals));
}

/// into_future on the loop and context of the C++ work that calls it (current_task_locals()).
template <class T = object, class Token = asio::use_awaitable_t<>>
requires(!std::is_same_v<std::decay_t<Token>, task_locals>) auto into_future(
    object awaitable, Token&& token = Token()) {
    detail::check_awaitable(awaitable);
    return into_future<T>(std::move(awaitable), detail::locals_for_into_future(),
                          std::forward<Token>(token));
}

/// A Python callable that C++ code on any thread can hand to into_future, to be called on the
/// loop thread: `into_future(fn(args...))` calls `fn(*args)` there, in the captured context,
/// and awaits what it returns. The C++ caller never takes the GIL: the arguments are converted
/// to Python on the loop thread too. This is the way to "pass the async function and call it
/// for each use" without a GIL acquisition per call on a runtime thread.
///
/// Copies share one reference and need no GIL; the last one releases the callable with the GIL
/// (at once when held, else the next time pyasio holds it).
class async_function {
public:
    /// `fn` must be callable (type_error otherwise). Make it with the GIL, or move `fn` in.
    explicit async_function(object fn) {
        if (!fn || detail::slot_call(fn.ptr()) == nullptr)
            throw type_error(std::string("pyasio::async_function: expected a callable (an "
                                         "async def function), got ") +
                             (fn ? fn.type_name() : "no object"));
        fn_ = std::make_shared<const object>(std::move(fn));
    }

    /// The call fn(args...), for into_future. The arguments are C++ values converted with
    /// pyasio::to_python on the loop thread (a pyasio::object argument must be moved in
    /// without the GIL, or copied with it).
    template <class... Args>
    detail::async_call<std::decay_t<Args>...> operator()(Args&&... args) const {
        return {fn_, std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...)};
    }

    /// The callable. Use with the GIL.
    handle get() const noexcept { return *fn_; }

private:
    std::shared_ptr<const object> fn_;
};

/// An async_function given as an argument of another async_function's call (or to to_python)
/// is its callable: `serve(handler)` calls `serve` with `handler`'s function, on the loop thread.
template <> struct converter<async_function> {
    /// A new reference to the callable. Needs the GIL.
    static object to_python(const async_function& fn) { return borrow(fn.get()); }
};

/// into_future of `fn(args...)` (see async_function), on `locals`' loop and context. The call
/// is made on the loop thread; an exception from it, or a result that is not awaitable
/// (type_error), completes the operation with that error.
template <class T = object, class Call, class Token = asio::use_awaitable_t<>>
requires detail::is_async_call<Call>::value auto into_future(Call call, task_locals locals,
                                                             Token&& token = Token()) {
    return asio::async_initiate<Token, typename detail::into_future_signature<T>::type>(
        detail::initiate_into_future<T>{}, token, std::move(call), std::move(locals));
}

/// into_future of `fn(args...)` on the loop and context of the C++ work that calls it.
template <class T = object, class Call, class Token = asio::use_awaitable_t<>>
requires(
    detail::is_async_call<Call>::value &&
    !std::is_same_v<std::decay_t<Token>, task_locals>) auto into_future(Call call,
                                                                        Token&& token = Token()) {
    return into_future<T>(std::move(call), detail::locals_for_into_future(),
                          std::forward<Token>(token));
}

PYASIO_NAMESPACE_END

#endif // PYASIO_INTO_FUTURE_HPP
