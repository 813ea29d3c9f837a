// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_FUTURE_INTO_PY_HPP
#define PYASIO_FUTURE_INTO_PY_HPP

/// @file
/// Python awaits C++: future_into_py runs C++ work on the Asio runtime and returns what
/// Python awaits.

#include <pyasio/config.hpp>

#include <pyasio/convert.hpp>
#include <pyasio/detail/await_step.hpp>
#include <pyasio/detail/blocking_choice.hpp>
#include <pyasio/detail/done_callback.hpp>
#include <pyasio/detail/intrusive_stack.hpp>
#include <pyasio/detail/ref_counted.hpp>
#include <pyasio/error.hpp>
#include <pyasio/loop.hpp>
#include <pyasio/object.hpp>
#include <pyasio/runtime.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/execution.hpp>
#include <asio/execution_context.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <asio/query.hpp>
#include <asio/require.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>

PYASIO_NAMESPACE_BEGIN

namespace detail {

/// The method names future_into_py calls on every operation, interned once per interpreter.
struct future_names {
    object remove_done_callback = interned("remove_done_callback");
    object set_result = interned("set_result");
    object set_exception = interned("set_exception");
};

/// Whether an execution context that runs future_into_py work shut down, shared by its start
/// queue and each operation's state: a state destroys (or posts to) its strand only inside a
/// use(), which fails once the context shut down; the shutdown waits for the uses under way. So
/// a strand is never touched after its context is gone, and no lock is held while a strand (and
/// the user's executor in it) is destroyed: that may destroy other states of the same context.
class context_token {
public:
    /// Runs f() unless the context shut down; false then.
    template <class F> bool use(F&& f) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (gone_)
                return false;
            ++uses_;
        }
        struct leave {
            context_token& t;
            ~leave() {
                std::lock_guard<std::mutex> lock(t.mutex_);
                if (--t.uses_ == 0)
                    t.idle_.notify_all();
            }
        } on_exit{*this};
        f();
        return true;
    }

    /// The context shuts down: no use() from now on; waits for those under way.
    void shut() {
        std::unique_lock<std::mutex> lock(mutex_);
        gone_ = true;
        idle_.wait(lock, [this] { return uses_ == 0; });
    }

private:
    std::mutex mutex_;
    std::condition_variable idle_;
    bool gone_ = false;
    int uses_ = 0;
};

/// What one future_into_py call shares between its C++ work, the loop bridge and its Python
/// future. Two owners: the C++ side (the completion handler, then the bridge's queue) and the
/// Python side (the pyasio._DoneCallback registered with the future).
class future_state : public ref_counted,
                     public loop_job,
                     public done_callback_target,
                     public inflight_operation {
public:
    future_state(task_locals locals, const asio::any_io_executor& ex,
                 std::shared_ptr<context_token> context)
        // NOTE: the strand's executor counts as outstanding work, so that the context keeps
        // running while the operation lives, even when it waits on nothing the context sees: a
        // coroutine awaiting Python holds only operation_executors, which count nothing (a
        // user's io_context without a work guard would return from run() under it; see
        // test_a_users_io_context_runs_until_the_work_that_waits_on_python_ends). It costs the
        // loop thread an atomic on a cache line of the context's (8% of the loop thread in
        // gather_noop, docs/benchmarks.md).
        // And what the strand posts is a continuation of the operation: a runtime thread keeps
        // it (an io_context queues it on the posting thread) instead of waking another thread
        // to take it, which put a second thread wake on every operation's path.
        : ref_counted(2), locals_(std::move(locals)),
          strand_(asio::make_strand(asio::prefer(ex, asio::execution::outstanding_work.tracked,
                                                 asio::execution::relationship.continuation))),
          context_(std::move(context)) {
        inflight_registry::instance().add(this);
    }

    ~future_state() override {
        // NOTE: a finished state was unlisted by finish(), on a runtime thread: the registry's
        // mutex (and that thread's cache line) is not taken again here (mostly the loop thread)
        if (!finished_.load(std::memory_order_acquire))
            inflight_registry::instance().remove(this);
        // NOTE: Python may keep the state (its future) after the user destroyed the execution
        // context the work ran on; a strand (and counted work) must not be destroyed after its
        // context (Asio touches the context's mutexes): it is then left undestroyed, a small
        // leak instead of a crash. A runtime's context lives until the process exits.
        // Likewise in the child of a fork: the parent's context is the parent's.
        if (of_parent_process()) // NOTE: first: a parent's thread may have held the mutex
            return;
        context_->use([this] { strand_.~strand(); });
    }
    future_state(const future_state&) = delete;
    future_state& operator=(const future_state&) = delete;

    /// C++ side: the work finished; hand the outcome to the loop. Takes a C++ reference. Once:
    /// a later call (a completion destroyed unrun after an error was reported) only drops its
    /// reference. Runtime thread, no GIL.
    void finish(std::exception_ptr error, bool unrun = false) noexcept {
        if (finished_.exchange(true, std::memory_order_acq_rel)) {
            release();
            return;
        }
        error_ = std::move(error);
        unrun_ = unrun;
        inflight_registry::instance().remove(this);
        // NOTE: once pushed, the loop thread may run and free this state, which may hold the
        // last reference to the bridge, before push() returns: hold the bridge for the push.
        std::shared_ptr<loop_bridge> bridge = locals_.bridge();
        bridge->push(this); // the C++ reference travels with the job
    }

    /// Made before this process forked (this is the child): its work, its strand and its
    /// context belong to the parent and are never touched; its future never completes here.
    bool of_parent_process() const noexcept {
        return listed_in != fork_generation.load(std::memory_order_relaxed);
    }

    /// C++ side: the work (or its start) was destroyed unrun, with its execution context, or
    /// never started (cancelled first): the future ends cancelled. Takes a C++ reference, as
    /// finish(). Allocates nothing (it runs where an exception cannot be thrown).
    void finish_unrun() noexcept { finish(nullptr, true); }

    /// Python side: the future was cancelled, completed by someone else, or collected (loop
    /// thread, GIL held); or runtime shutdown (any thread). Emits a terminal cancellation on the
    /// work's own strand (where the work also starts, so the two never race); work not yet
    /// started then never starts.
    void request_cancel() noexcept {
        if (finished_.load(std::memory_order_acquire) || of_parent_process())
            return;
        cancel_requested_.store(true, std::memory_order_release);
        try {
            // NOTE: once the context shut down, its work was ended: nothing to cancel
            context_->use([this] {
                asio::post(strand_, [self = counted_ref<future_state>::share(this)] {
                    self->signal_.emit(asio::cancellation_type::terminal);
                });
            });
        } catch (...) { // std::bad_alloc: the work runs on; its completion is dropped
                        // quietly
            detail::caught();
        }
    }

    /// Runtime shutdown (any thread): the work is cancelled, and its future ends cancelled.
    bool hold() noexcept override { return try_add_ref(); }
    void cancel_for_shutdown() noexcept override {
        shutdown_.store(true, std::memory_order_release);
        request_cancel();
        release();
    }

    /// Python side: the future is done (cancelled, or completed by someone else; for a future
    /// with a done callback, also completed by us). Loop thread, GIL held.
    void on_done() noexcept override {
        ended_by_python_ = true;
        request_cancel();
    }

    /// Python side: the done callback died (with its future). Loop thread, GIL held.
    void on_gone() noexcept override {
        operation_ = nullptr;
        future_ = nullptr;
        request_cancel();
        release();
    }

    /// `operation` (our pyasio._DoneCallback) sits in `future`'s operation slot (`in_slot`, a
    /// pyasio.Future of this copy) or is its done callback (any other future).
    void bind_python(PyObject* operation, PyObject* future, bool in_slot) noexcept {
        operation_ = operation;
        future_ = future;
        in_slot_ = in_slot;
    }

    asio::cancellation_signal& signal() noexcept { return signal_; }
    const task_locals& locals() const noexcept { return locals_; }
    const asio::strand<asio::any_io_executor>& strand() const noexcept { return strand_; }

    /// Runtime side, on the work's strand: starts the C++ work (or, when Python already
    /// cancelled, finishes at once with operation_aborted).
    void start_on_strand() noexcept {
        if (cancel_requested_.load(std::memory_order_acquire)) {
            finish_unrun(); // NOTE: its future is done already, or the runtime shuts down
            return;
        }
        // NOTE: if the start throws, its handler (and the C++ reference it holds) may or may not
        // be gone; an extra reference keeps the state alive to report the error either way. A
        // handler destroyed unrun meanwhile only says so (completion_dropped): the error thrown
        // is what the future reports, not a lost context.
        auto extra = counted_ref<future_state>::share(this);
        start_.store(start_phase::starting, std::memory_order_relaxed);
        try {
            task_locals_scope scope(&locals_);
            spawn();
        } catch (...) {
            std::exception_ptr error = detail::caught();
            start_.store(start_phase::started, std::memory_order_relaxed);
            extra.detach(); // goes with the job
            finish(std::move(error));
            return;
        }
        if (start_.exchange(start_phase::started, std::memory_order_acq_rel) ==
            start_phase::dropped) {
            extra.detach(); // the start dropped the handler unrun, without an error
            finish_unrun();
        }
    }

    /// The completion handler was destroyed unrun; it held a C++ reference. During the start,
    /// the start reports the outcome; after it, the work ends as cancelled (finish_unrun).
    void completion_dropped() noexcept {
        start_phase expected = start_phase::starting;
        if (start_.compare_exchange_strong(expected, start_phase::dropped,
                                           std::memory_order_acq_rel)) {
            release();
            return;
        }
        finish_unrun();
    }

    future_state* next_start = nullptr; // link in the start queue

protected:
    /// co_spawn the work with the completion handler; the C++ reference goes with the handler.
    virtual void spawn() = 0;

public:
    /// Loop thread, GIL held: completes the future unless it is gone or already done.
    void run() override {
        complete();
        release();
    }
    void abandon() noexcept override { release(); }

protected:
    /// The result as a Python object (loop thread, GIL held); may throw.
    virtual object result_to_python() = 0;

private:
    /// Completes the future unless it is gone or already done (defined below future_types).
    void complete();
    void set_result(handle fut, const struct future_types& types);
    void set_exception(handle fut, const future_types& types, const std::exception_ptr& e);

    /// The work ended with an error after shutdown_runtime() cancelled it: the future is
    /// cancelled, with a message that says why.
    static void cancel_for_runtime_shutdown(handle fut) {
#if PY_VERSION_HEX >= 0x03090000
        call_method(fut, "cancel",
                    "pyasio: the runtime was shut down (pyasio::shutdown_runtime() or interpreter "
                    "exit) while this C++ work ran");
#else
        call_method(fut, "cancel");
#endif
    }

    static void report(const std::exception_ptr& e) noexcept {
        translate_exception(e);
        PyErr_WriteUnraisable(nullptr);
    }

    std::atomic<bool> finished_{false};
    std::atomic<bool> cancel_requested_{false};
    std::atomic<bool> shutdown_{false};
    bool unrun_ = false; // never ran to its end: destroyed with its context, or cancelled first
    enum class start_phase : unsigned char { not_started, starting, dropped, started };
    std::atomic<start_phase> start_{start_phase::not_started};
    task_locals locals_; // the loop (and its bridge) and the context captured at the call
    union {              // NOTE: destroyed by hand (~future_state)
        asio::strand<asio::any_io_executor> strand_;
    };
    std::shared_ptr<context_token> context_; // whether the context shut down
    asio::cancellation_signal signal_;
    std::exception_ptr error_;
    PyObject* operation_ = nullptr; // weak: our done callback, cleared when it dies
    PyObject* future_ = nullptr;    // borrowed: alive while operation_ is
    bool in_slot_ = false;          // operation_ sits in future_'s slot (not its callbacks)
    bool ended_by_python_ = false;  // on_done came: cancelled or completed by someone else
};

/// The executor of one operation's C++ work: the operation's strand, behind a handle that
/// any_io_executor holds inline (a strand would be allocated on the heap for every copy and
/// every require/prefer). Each copy keeps the operation's state alive.
class operation_executor : public blocking_choice<operation_executor> {
public:
    explicit operation_executor(future_state* s) noexcept
        : s_(counted_ref<future_state>::share(s)) {}

    /// Runs f on the operation's strand with the operation's task locals current.
    template <class F> void execute(F&& f) const {
        auto run = [s = s_, f = std::forward<F>(f)]() mutable {
            task_locals_scope scope(&s->locals());
            std::move(f)();
        };
        if (never_)
            asio::require(s_->strand(), asio::execution::blocking.never).execute(std::move(run));
        else
            s_->strand().execute(std::move(run));
    }

    asio::execution_context& query(asio::execution::context_t) const noexcept {
        return asio::query(s_->strand(), asio::execution::context);
    }
    using blocking_choice::query;

    friend bool operator==(const operation_executor& a, const operation_executor& b) noexcept {
        return a.s_.get() == b.s_.get() && a.never_ == b.never_;
    }
    friend bool operator!=(const operation_executor& a, const operation_executor& b) noexcept {
        return !(a == b);
    }

private:
    counted_ref<future_state> s_;
};

/// The completion handler of the work: stores the outcome and queues the state for the loop.
/// Takes any completion signature: co_spawn's (exception_ptr[, T]), an Asio operation's
/// (error_code[, values...]), or plain values. Its associated executor is the operation's strand
/// and its cancellation slot the operation's signal. Owns the C++ reference until it runs;
/// destroyed unrun (its execution context was destroyed with the work pending), it ends the
/// operation as cancelled, so that its Python future does not wait for ever.
template <class State> class completion {
public:
    using executor_type = operation_executor;
    using cancellation_slot_type = asio::cancellation_slot;

    explicit completion(State* s) noexcept : s_(counted_ref<State>::adopt(s)) {}
    completion(completion&&) noexcept = default;
    completion(const completion&) = delete;
    completion& operator=(const completion&) = delete;
    completion& operator=(completion&&) = delete;
    ~completion() {
        if (State* s = s_.detach()) // the C++ reference goes with it
            s->completion_dropped();
    }

    executor_type get_executor() const noexcept { return operation_executor(s_.get()); }
    cancellation_slot_type get_cancellation_slot() const noexcept { return s_->signal().slot(); }

    template <class... V> void operator()(V&&... v) noexcept {
        State* s = s_.detach(); // the C++ reference goes with the job
        // NOTE: the work's cancellation handler is destroyed here, on the strand and on the
        // thread that made it (Asio's per-thread recycling takes its memory back), not on the
        // loop thread with the state; a finished state is never cancelled.
        s->signal().slot().clear();
        s->finish(s->store(std::forward<V>(v)...));
    }

private:
    counted_ref<State> s_;
};

/// The state of one call, with its work and its result T.
template <class T, class Work> class typed_future_state final : public future_state {
public:
    typed_future_state(task_locals locals, const asio::any_io_executor& ex,
                       std::shared_ptr<context_token> context, Work work)
        : future_state(std::move(locals), ex, std::move(context)), work_(std::move(work)) {}

    /// Keeps a completion's values; returns its error. A runtime thread, no GIL.
    template <class... V> std::exception_ptr store(V&&... v) {
        if constexpr (sizeof...(V) == 0) {
            return nullptr;
        } else {
            return store_after(std::forward<V>(v)...);
        }
    }

private:
    template <class First, class... V> std::exception_ptr store_after(First&& first, V&&... v) {
        using F = std::decay_t<First>;
        if constexpr (std::is_same_v<F, std::exception_ptr>) {
            if (first)
                return first;
            keep(std::forward<V>(v)...);
        } else if constexpr (std::is_same_v<F, std::error_code>) {
            if (first)
                return std::make_exception_ptr(std::system_error(first));
            keep(std::forward<V>(v)...);
        } else {
            keep(std::forward<First>(first), std::forward<V>(v)...);
        }
        return nullptr;
    }

    template <class... V> void keep(V&&... v) {
        if constexpr (sizeof...(V) > 0) // two or more values make the tuple T
            value_.emplace(std::forward<V>(v)...);
    }

    void spawn() override { work_.start(completion<typed_future_state>(this)); }

    object result_to_python() override {
        if constexpr (std::is_void_v<T>)
            return borrow(Py_None);
        else
            return pyasio::to_python(std::move(*value_));
    }

    std::optional<std::conditional_t<std::is_void_v<T>, char, T>> value_;
    Work work_;
};

/// Starts queued work on an execution context, one post per batch: the loop thread pushes; only
/// the push that finds the queue empty posts a drain, which starts the whole batch, each on its
/// own strand. One queue per execution context (an Asio service), so work for a context that
/// is not running never holds up work for another.
class start_queue : public asio::execution_context::service {
public:
    static inline asio::execution_context::id id;

    explicit start_queue(asio::execution_context& context) : service(context) {}

    /// The queue of the context `ex` belongs to.
    static start_queue& of(const asio::any_io_executor& ex) {
        return asio::use_service<start_queue>(asio::query(ex, asio::execution::context));
    }

    /// Whether the context shut down: what a future_state of it must not touch from then on.
    const std::shared_ptr<context_token>& token() const noexcept { return token_; }

    void push(future_state* s, const asio::any_io_executor& ex) {
        if (states_.push(s))
            asio::post(ex, [this, ex] { drain(ex); });
    }

private:
    /// One state's start, on its strand; destroyed unrun (its context shut down while the strand
    /// held it), the work ends as cancelled. Holds the state's C++ reference until then.
    class start_job {
    public:
        explicit start_job(future_state* s) noexcept : s_(s) {}
        start_job(start_job&& other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
        start_job& operator=(start_job&&) = delete;
        ~start_job() {
            if (s_ != nullptr)
                s_->finish_unrun();
        }
        void operator()() noexcept { std::exchange(s_, nullptr)->start_on_strand(); }

    private:
        future_state* s_;
    };

    /// Queued work, oldest first (linked through next_start), that one thread starts in turn.
    /// Destroyed unrun (its context was shut down), its work ends as cancelled.
    class run_of_work {
    public:
        explicit run_of_work(future_state* first) noexcept : first_(first) {}
        run_of_work(run_of_work&& other) noexcept : first_(std::exchange(other.first_, nullptr)) {}
        run_of_work& operator=(run_of_work&&) = delete;
        ~run_of_work() {
            while (future_state* s = pop())
                s->finish_unrun();
        }

        void operator()() noexcept {
            while (future_state* s = pop()) {
                try {
                    asio::dispatch(s->strand(), start_job(s));
                } catch (...) { // std::bad_alloc: the job, destroyed unrun, ended the
                                // work
                    detail::caught();
                }
            }
        }

    private:
        future_state* pop() noexcept {
            future_state* s = first_;
            if (s != nullptr)
                first_ = std::exchange(s->next_start, nullptr);
            return s;
        }

        future_state* first_;
    };

    /// Starts a batch. Each start runs the work up to its first suspension, so a batch of
    /// CPU-bound work started on one thread would keep the other threads idle: the batch is cut
    /// into up to one run per hardware thread; the later runs are posted (each may wake a
    /// thread), the first starts here.
    void drain(const asio::any_io_executor& ex) noexcept {
        static const std::size_t parallelism = std::max(1U, std::thread::hardware_concurrency());
        future_state* first = states_.take_all();
        std::size_t n = 0;
        for (future_state* s = first; s != nullptr; s = s->next_start)
            ++n;
        std::size_t per_run = (n + parallelism - 1) / parallelism;
        // Cuts the list after every per_run states; each run but the first is posted.
        future_state* run_start = first;
        while (run_start != nullptr) {
            future_state* last = run_start; // the last run may be shorter
            for (std::size_t i = 1; i < per_run && last->next_start != nullptr; ++i)
                last = last->next_start;
            future_state* next = std::exchange(last->next_start, nullptr);
            if (run_start != first) {
                run_of_work run(run_start);
                try {
                    asio::post(ex, std::move(run));
                } catch (...) { // std::bad_alloc: this thread starts that run too
                    detail::caught();
                    run();
                }
            }
            run_start = next;
        }
        run_of_work{first}();
    }

    /// The context is going away with work never started: it ends as cancelled.
    void shutdown() override {
        token_->shut();
        run_of_work discard(states_.take_all());
    }

    intrusive_stack<future_state, &future_state::next_start> states_;
    std::shared_ptr<context_token> token_ = std::make_shared<context_token>();
};

// --- the Python types ----------------------------------------------------------------------

// pyasio.Future, what future_into_py returns while a loop runs: an asyncio.Future (so gather,
// wait_for, shield and ensure_future take it as the future it is, with no task around it) that
// is also a coroutine (send, throw, close), so that create_task, TaskGroup.create_task and
// asyncio.run accept it, as they accept what an async def returns.

/// One step of `await fut`, what a task does with a coroutine: yields the future while it is
/// pending (a task then waits for it), then raises StopIteration(result) or its exception.
// NOTE: the future's own __await__ iterator does exactly that: it yields the future once, with
// _asyncio_future_blocking set (how a task learns what to wait for); a fresh one per step.
inline PyObject* future_step(PyObject* fut, PyObject* arg) {
    // NOTE: the methods live on a base class of their own, which Python code can reach (and
    // instantiate, or derive from) without asyncio.Future: refuse what has no awaiting to do
    unaryfunc await = slot_await(fut);
    if (await == nullptr) {
        PyErr_SetString(PyExc_TypeError, "send() of pyasio._CoroutineMethods is for a "
                                         "pyasio.Future (what future_into_py returns), which "
                                         "this object is not");
        return nullptr;
    }
    object it = steal(await(fut));
    if (!it)
        return nullptr;
    iternextfunc next = slot_iternext(it.ptr());
    if (next == nullptr) {
        PyErr_Format(PyExc_TypeError, "__await__ returned a non-iterator");
        return nullptr;
    }
    if (arg == Py_None)
        return next(it.ptr());
    return PyObject_CallMethod(it.ptr(), "send", "O", arg);
}

inline PyObject* future_send(PyObject* self, PyObject* arg) {
    return future_step(self, arg);
}

/// throw(): the "coroutine" ends with the exception thrown in, so nobody can receive the C++
/// work's result any more: the future (and so the work) is cancelled.
inline PyObject* future_throw(PyObject* self, PyObject* args) {
    try {
        object e = thrown_exception(args);
        (void)call_method(handle(self), "cancel");
        PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(e.ptr())), e.ptr());
    } catch (...) {
        translate_exception(detail::caught());
    }
    return nullptr;
}

/// close(): as throw(), without an exception (a TaskGroup that aborts closes what it was given).
inline PyObject* future_close(PyObject* self, PyObject*) {
    object cancelled = steal(PyObject_CallMethod(self, "cancel", nullptr));
    if (!cancelled)
        return nullptr;
    Py_RETURN_NONE;
}

// pyasio.Future. Its C++ operation (a pyasio._DoneCallback) sits in the slot _pyasio_operation,
// set by launch() and cleared at completion; dropped with the future, it tells the C++ side that
// the future was collected. pyasio completes the future through asyncio.Future's own set_result
// and set_exception; the overrides are for anyone else, and tell the C++ side that the future
// ended (its work is cancelled). So an operation costs no add_done_callback, and an awaiting
// task's or gather's callback is the future's first.
inline constexpr const char* future_source = R"PY(
import asyncio
import collections.abc

_future = asyncio.Future


class Future(_future, _CoroutineMethods):
    """The future of C++ work (pyasio::future_into_py): an asyncio.Future that is also a
    coroutine, so that asyncio.create_task() takes it."""

    __slots__ = ("_pyasio_operation",)

    def cancel(self, *args, **kwargs):
        if not _future.cancel(self, *args, **kwargs):
            return False
        _ended(self)
        return True

    def set_result(self, result):
        _future.set_result(self, result)
        _ended(self)

    def set_exception(self, exception):
        _future.set_exception(self, exception)
        _ended(self)


# NOTE: the slot's descriptor is kept here and taken off the class: no Python code reaches the
# operation (whose C++ side assumes that only the future holds it)
_operation = Future.__dict__["_pyasio_operation"]
del Future._pyasio_operation


def _ended(future):
    try:
        operation = _operation.__get__(future)
    except AttributeError:  # not launched by pyasio (Future(loop=...)), or completed
        return
    operation(future)


# NOTE: asyncio.iscoroutine() asks collections.abc.Coroutine, which would find the methods
# anyway; registering says so outright
collections.abc.Coroutine.register(Future)
)PY";

/// The namespace that defines pyasio.Future ("Future") and its operation slot ("_operation").
inline object make_future_namespace() {
    static PyMethodDef methods[] = {
        {"send", future_send, METH_O, "One step of awaiting the future (as a coroutine)."},
        {"throw", future_throw, METH_VARARGS,
         "Raises the exception and cancels the future (as a coroutine)."},
        {"close", future_close, METH_NOARGS, "Cancels the future (as a coroutine)."},
        {nullptr, nullptr, 0, nullptr}};
    static PyType_Slot slots[] = {
        {Py_tp_methods, methods},
        {Py_tp_doc, const_cast<char*>("The coroutine methods of pyasio.Future.")},
        {0, nullptr}};
    // NOTE: no fields of its own: it adds nothing to the layout of asyncio.Future below
    static PyType_Spec spec = {"pyasio._CoroutineMethods", sizeof(PyObject), 0,
                               Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, slots};
    object coroutine_methods = steal(reinterpret_cast<PyObject*>(make_type(spec)));
    object globals = checked(PyDict_New());
    if (PyDict_SetItemString(globals.ptr(), "_CoroutineMethods", coroutine_methods.ptr()) < 0)
        throw_error_already_set();
    // NOTE: a Python subclass of asyncio.Future (and of the methods above): CPython gives it the
    // dealloc, finalizer and GC of a subclass of a C type, which differ between 3.8 and 3.13.
    return python_namespace(future_source, "<pyasio.Future>", std::move(globals));
}

/// The awaitable returned when no loop runs at the call: starts the work on the loop that first
/// awaits it. Behaves like a coroutine object (send, throw, close, __await__), so asyncio.run,
/// ensure_future and create_task accept it, and has the methods of a future that code calls on
/// what it awaits (cancel, done, cancelled, result, exception, add_done_callback): before the
/// start they answer for the work not started; after it, the started future answers.
struct lazy_object {
    PyObject_HEAD struct starter* start;
    PyObject* future;    // the pyasio.Future, once started
    PyObject* callbacks; // [(fn, context)] added before the start, or null
    int stage;           // 0 created, 1 started, 2 finished, closed or cancelled
    bool cancelled;      // cancelled before it started
};

struct starter {
    virtual ~starter() = default;
    virtual object start(handle loop) = 0;
};

/// One step of the started future, by its own coroutine methods (defined below).
inline PyObject* started_send(PyObject* fut, PyObject* arg);
inline PyObject* lazy_delegate(lazy_object* self, const char* name, PyObject* args,
                               PyObject* kwargs);

inline void lazy_start(lazy_object* self) {
    object loop = get_running_loop();
    std::unique_ptr<starter> s(std::exchange(self->start, nullptr));
    handle fut(s->start(loop).release());
    self->future = fut.ptr(); // NOTE: first: from now on the started future answers
    self->stage = 1;
    if (object callbacks = steal(std::exchange(self->callbacks, nullptr))) {
        for (Py_ssize_t i = 0; i < list_size(callbacks.ptr()); ++i) {
            handle pair(list_item(callbacks.ptr(), i));
            call_method(fut, "add_done_callback", handle(tuple_item(pair.ptr(), 0)),
                        kwarg("context", handle(tuple_item(pair.ptr(), 1))));
        }
    }
}

/// Marks the end once a step of the started future ends.
inline PyObject* lazy_step(lazy_object* self, PyObject* result) {
    if (result == nullptr) // StopIteration (the result) or an exception: either way it ended
        self->stage = 2;
    return result;
}

/// Ends a LazyFuture that never started: its work never runs.
inline void lazy_end_unstarted(lazy_object* self) {
    delete std::exchange(self->start, nullptr);
    self->stage = 2;
}

inline PyObject* lazy_send(PyObject* o, PyObject* arg) {
    auto* self = reinterpret_cast<lazy_object*>(o);
    if (self->cancelled) // cancel() before the start: awaiting it raises CancelledError
        return entry_point([]() -> object {
            throw_error(getattr(import("asyncio"), "CancelledError").ptr(), "");
        });
    if (self->stage == 2) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
        return nullptr;
    }
    if (self->stage == 0) {
        if (arg != Py_None) {
            PyErr_SetString(PyExc_TypeError,
                            "can't send non-None value to a just-started coroutine");
            return nullptr;
        }
        try {
            lazy_start(self);
        } catch (...) {
            std::exception_ptr error = detail::caught();
            lazy_end_unstarted(self);
            translate_exception(error);
            return nullptr;
        }
    }
    return lazy_step(self, started_send(self->future, arg));
}

inline PyObject* lazy_iternext(PyObject* o) {
    return lazy_send(o, Py_None);
}

inline PyObject* lazy_throw(PyObject* o, PyObject* args) {
    auto* self = reinterpret_cast<lazy_object*>(o);
    if (self->stage == 1)
        return lazy_step(self, lazy_delegate(self, "throw", args, nullptr));
    // Never started (or finished): like a coroutine, raise the exception here and end.
    lazy_end_unstarted(self);
    try {
        object e = thrown_exception(args);
        PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(e.ptr())), e.ptr());
    } catch (...) {
        translate_exception(detail::caught());
    }
    return nullptr;
}

inline PyObject* lazy_close(PyObject* o, PyObject*) {
    auto* self = reinterpret_cast<lazy_object*>(o);
    if (self->stage == 1) {
        object closed = steal(lazy_delegate(self, "close", nullptr, nullptr));
        if (!closed)
            return nullptr;
    }
    lazy_end_unstarted(self);
    Py_RETURN_NONE;
}

/// Runs the done callbacks of a LazyFuture cancelled before it started: soon on the loop running
/// here (as asyncio runs them), or at once when none runs.
inline void lazy_run_callbacks(lazy_object* self) {
    object callbacks = steal(std::exchange(self->callbacks, nullptr));
    if (!callbacks)
        return;
    object loop = running_loop();
    handle me(reinterpret_cast<PyObject*>(self));
    for (Py_ssize_t i = 0; i < list_size(callbacks.ptr()); ++i) {
        handle pair(list_item(callbacks.ptr(), i));
        handle fn(tuple_item(pair.ptr(), 0)), context(tuple_item(pair.ptr(), 1));
        if (loop)
            call_method(loop, "call_soon", fn, me, kwarg("context", context));
        else if (context.is_none())
            call(fn, me);
        else
            call_method(context, "run", fn, me);
    }
}

/// The started future's method `name`, called with the same arguments (args null: none).
inline PyObject* lazy_delegate(lazy_object* self, const char* name, PyObject* args,
                               PyObject* kwargs) {
    object method = steal(PyObject_GetAttrString(self->future, name));
    if (!method)
        return nullptr;
    return args != nullptr ? PyObject_Call(method.ptr(), args, kwargs)
                           : PyObject_CallObject(method.ptr(), nullptr);
}

inline PyObject* lazy_cancel(PyObject* o, PyObject* args, PyObject* kwargs) {
    auto* self = reinterpret_cast<lazy_object*>(o);
    if (self->future != nullptr)
        return lazy_delegate(self, "cancel", args, kwargs);
    return entry_point([&] {
        if (self->stage == 2)
            return false; // awaited to its end, or closed
        lazy_end_unstarted(self);
        self->cancelled = true;
        lazy_run_callbacks(self);
        return true;
    });
}

inline PyObject* lazy_done(PyObject* o, PyObject*) {
    auto* self = reinterpret_cast<lazy_object*>(o);
    if (self->future != nullptr)
        return lazy_delegate(self, "done", nullptr, nullptr);
    return PyBool_FromLong(self->stage == 2);
}

inline PyObject* lazy_cancelled(PyObject* o, PyObject*) {
    auto* self = reinterpret_cast<lazy_object*>(o);
    if (self->future != nullptr)
        return lazy_delegate(self, "cancelled", nullptr, nullptr);
    return PyBool_FromLong(self->cancelled);
}

/// result() and exception() before the start: as asyncio.Future's.
inline PyObject* lazy_outcome(PyObject* o, const char* name) {
    auto* self = reinterpret_cast<lazy_object*>(o);
    if (self->future != nullptr)
        return lazy_delegate(self, name, nullptr, nullptr);
    return entry_point([&]() -> object {
        object asyncio = import("asyncio");
        if (self->cancelled)
            throw_error(getattr(asyncio, "CancelledError").ptr(), "");
        throw_error(getattr(asyncio, "InvalidStateError").ptr(),
                    self->stage == 2 ? "the awaitable was closed before it started"
                                     : "Result is not set.");
    });
}
inline PyObject* lazy_result(PyObject* o, PyObject*) {
    return lazy_outcome(o, "result");
}
inline PyObject* lazy_exception(PyObject* o, PyObject*) {
    return lazy_outcome(o, "exception");
}

inline PyObject* lazy_add_done_callback(PyObject* o, PyObject* args, PyObject* kwargs) {
    auto* self = reinterpret_cast<lazy_object*>(o);
    if (self->future != nullptr)
        return lazy_delegate(self, "add_done_callback", args, kwargs);
    return entry_point([&] {
        static const char* keywords[] = {"", "context", nullptr};
        PyObject *fn = nullptr, *context = Py_None;
        if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$O:add_done_callback",
                                         const_cast<char**>(keywords), &fn, &context))
            throw_error_already_set();
        if (self->callbacks == nullptr)
            self->callbacks = checked(PyList_New(0)).release();
        object pair = to_python(std::tuple<handle, handle>(handle(fn), handle(context)));
        if (PyList_Append(self->callbacks, pair.ptr()) < 0)
            throw_error_already_set();
        if (self->stage == 2) // cancelled or closed before it started: it is done
            lazy_run_callbacks(self);
    });
}

/// Warns when the awaitable dies without ever being awaited. From the deallocator, with no
/// reference to the dying object reaching Python (no tp_finalize: the limited API cannot call
/// one from a deallocator).
inline void warn_never_awaited(const lazy_object* self) {
    if (self->stage != 0)
        return;
    error_kept kept;
    // NOTE: the same warning, category and wording as a coroutine that was never awaited.
    if (PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
                         "coroutine 'pyasio.future_into_py' was never awaited") < 0)
        PyErr_WriteUnraisable(nullptr);
}

// NOTE: collected by the GC: a task awaiting it holds it, and its future's done callback holds
// the task, until the future is done.
inline int lazy_traverse(PyObject* o, visitproc visit, void* arg) {
    auto* self = reinterpret_cast<lazy_object*>(o);
    Py_VISIT(self->future);
    Py_VISIT(self->callbacks);
    return visit_instance_type(o, visit, arg);
}

inline int lazy_clear(PyObject* o) {
    auto* self = reinterpret_cast<lazy_object*>(o);
    Py_CLEAR(self->future);
    Py_CLEAR(self->callbacks);
    return 0;
}

inline void lazy_dealloc(PyObject* o) {
    PyObject_GC_UnTrack(o);
    auto* self = reinterpret_cast<lazy_object*>(o);
    warn_never_awaited(self);
    delete std::exchange(self->start, nullptr);
    lazy_clear(o);
    free_instance(o);
}

/// The Python types, made once per interpreter.
struct future_types {
    PyTypeObject* lazy = make_lazy_type();
    object future_namespace = make_future_namespace();
    object future = checked(PyMapping_GetItemString(future_namespace.ptr(), "Future"));
    // pyasio.Future's slot for its operation (a member descriptor, off the class) and its setter
    object operation_slot = checked(PyMapping_GetItemString(future_namespace.ptr(), "_operation"));
    descrsetfunc set_operation = slot_descr_set(operation_slot.ptr());
    // what pyasio completes a pyasio.Future with: asyncio.Future's own methods
    object set_result = getattr(getattr(import("asyncio"), "Future"), "set_result");
    object set_exception = getattr(getattr(import("asyncio"), "Future"), "set_exception");
    object invalid_state = getattr(import("asyncio"), "InvalidStateError");

    /// Whether `fut` is a pyasio.Future of this copy of pyasio.
    bool own(handle fut) const noexcept {
        return Py_TYPE(fut.ptr()) == reinterpret_cast<PyTypeObject*>(future.ptr());
    }
    /// Puts `operation` in (or, null, takes it out of) the slot of `fut`, a pyasio.Future.
    void set_slot(handle fut, PyObject* operation) const {
        if (set_operation(operation_slot.ptr(), fut.ptr(), operation) < 0)
            throw_error_already_set();
    }

private:
    static PyTypeObject* make_lazy_type() {
        static PyMethodDef methods[] = {
            {"send", lazy_send, METH_O, "Sends a value into the awaitable (starting it)."},
            {"throw", lazy_throw, METH_VARARGS, "Raises an exception inside the awaitable."},
            {"close", lazy_close, METH_NOARGS, "Closes the awaitable."},
            {"cancel", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(lazy_cancel)),
             METH_VARARGS | METH_KEYWORDS, "Cancels the work: before it started, it never starts."},
            {"done", lazy_done, METH_NOARGS, "Whether the work is done (or was cancelled)."},
            {"cancelled", lazy_cancelled, METH_NOARGS, "Whether the work was cancelled."},
            {"result", lazy_result, METH_NOARGS, "The work's result, once done."},
            {"exception", lazy_exception, METH_NOARGS, "The work's exception, once done."},
            {"add_done_callback",
             reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(lazy_add_done_callback)),
             METH_VARARGS | METH_KEYWORDS,
             "Calls fn(future) when the work is done (or at once, cancelled before its start)."},
            {nullptr, nullptr, 0, nullptr}};
        static PyType_Slot slots[] = {
            {Py_tp_dealloc, reinterpret_cast<void*>(lazy_dealloc)},
            {Py_tp_traverse, reinterpret_cast<void*>(lazy_traverse)},
            {Py_tp_clear, reinterpret_cast<void*>(lazy_clear)},
            {Py_tp_iternext, reinterpret_cast<void*>(lazy_iternext)},
            {Py_am_await, reinterpret_cast<void*>(self_await)},
            {Py_tp_new, reinterpret_cast<void*>(refuse_new)},
            {Py_tp_getset, coroutine_names},
            {Py_tp_methods, methods},
            {Py_tp_doc, const_cast<char*>(
                            "A C++ operation that starts on the event loop that first awaits it.")},
            {0, nullptr}};
        static PyType_Spec spec = {"pyasio.LazyFuture", sizeof(lazy_object), 0,
                                   Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, slots};
        return make_type(spec);
    }
};

inline void future_state::complete() {
    if (operation_ == nullptr)
        return; // the future was collected: nobody waits for the result
    // NOTE: taking our operation out of the future may free it (the future held the only
    // reference) and so clear operation_/future_: keep both alive until we are done.
    object op = borrow(operation_);
    object fut = borrow(future_);
    try {
        const future_types& types = per_interpreter<future_types>();
        if (in_slot_) // NOTE: the future lets go of this state (and so of the work) now
            types.set_slot(fut, nullptr);
        if (ended_by_python_) // cancelled or completed by Python: left as it is
            return;
        // NOTE: a future that is done has handed its callbacks to the loop, so our callback is
        // still there to remove exactly when the future is not done.
        const future_names& names = per_interpreter<future_names>();
        if (!in_slot_ && PyLong_AsLong(call_method(fut, names.remove_done_callback, op).ptr()) == 0)
            return;
        if ((error_ || unrun_) && shutdown_.load(std::memory_order_acquire)) {
            cancel_for_runtime_shutdown(fut);
        } else if (unrun_) {
#if PY_VERSION_HEX >= 0x03090000
            call_method(fut, "cancel",
                        "pyasio: the execution context of this C++ work was destroyed (or "
                        "shut down) before the work finished; keep it running until the "
                        "work's Python futures are done");
#else
            call_method(fut, "cancel");
#endif
        } else if (error_) {
            set_exception(fut, types, error_);
        } else {
            set_result(fut, types);
        }
    } catch (const python_error& e) {
        // A pyasio.Future ended by asyncio.Future's own methods (which do not tell us) is left
        // as it is, as one ended through its own methods is.
        if (!in_slot_ || !e.matches(per_interpreter<future_types>().invalid_state))
            report(std::current_exception());
    } catch (...) {
        report(detail::caught());
    }
}

/// Ends `fut` with `value`: by asyncio.Future's own `base` method for a pyasio.Future (its
/// override is for code other than pyasio's), by the method `name` for any other future.
inline void end_future(handle fut, bool own, handle base, handle name, handle value) {
    if (own) {
        PyObject* args[] = {fut.ptr(), value.ptr()};
        (void)checked(vectorcall(base.ptr(), args, 2, nullptr));
    } else {
        call_method(fut, name, value);
    }
}

inline void future_state::set_result(handle fut, const future_types& types) {
    object value;
    try {
        value = result_to_python();
    } catch (...) { // a conversion error is the operation's error
        set_exception(fut, types, detail::caught());
        return;
    }
    end_future(fut, in_slot_, types.set_result, per_interpreter<future_names>().set_result, value);
}

inline void future_state::set_exception(handle fut, const future_types& types,
                                        const std::exception_ptr& e) {
    translate_exception(e);
    python_error error = python_error::fetch();
    object value = borrow(error.value());
    if (error.matches(handle(PyExc_StopIteration))) {
        // NOTE: a Future refuses StopIteration before 3.12 (TypeError, and it would stay
        // pending): it becomes a RuntimeError caused by it, as in a coroutine (PEP 479)
        object wrapped = call(handle(PyExc_RuntimeError),
                              "pyasio: the C++ work raised StopIteration, which an awaitable "
                              "cannot raise (PEP 479); raise another exception");
        PyException_SetCause(wrapped.ptr(), value.release());
        value = std::move(wrapped);
    }
    end_future(fut, in_slot_, types.set_exception, per_interpreter<future_names>().set_exception,
               value);
}

/// future_step for a pyasio.Future (no method call), the future's own send() for a trio run's.
inline PyObject* started_send(PyObject* fut, PyObject* arg) {
    if (PyObject_TypeCheck(fut, reinterpret_cast<PyTypeObject*>(
                                    per_interpreter<future_types>().future.ptr())) != 0)
        return future_step(fut, arg);
    return PyObject_CallMethod(fut, "send", "O", arg);
}

/// Makes a future of `loop` for `work` and queues the work to start on a strand of `ex`. Loop
/// thread, GIL held.
template <class Work> object launch(handle loop, const asio::any_io_executor& ex, Work work) {
    task_locals locals = task_locals_access::capture(loop);
    // pyasio.Future(loop=loop) on asyncio: NOTE: not loop.create_future(), whose asyncio.Future
    // create_task refuses ("a coroutine was expected"); the call is cheaper too (no Python frame)
    const future_types& types = per_interpreter<future_types>();
    object fut = new_future(loop, types.future);
    // the future owns the operation: in its slot (a pyasio.Future of this copy), or as its done
    // callback (a trio run's future). NOTE: given to it before the state exists (an operation
    // without a target does nothing): if that fails, there is no state to leak
    object op = make_done_callback(nullptr);
    bool own = types.own(fut);
    if (own)
        types.set_slot(fut, op.ptr());
    else
        add_done_callback(fut, op);
    start_queue& queue = start_queue::of(ex);
    auto* state = new typed_future_state<typename Work::value_type, Work>(locals, ex, queue.token(),
                                                                          std::move(work));
    reinterpret_cast<done_callback_object*>(op.ptr())->target = state; // the Python reference
    state->bind_python(op.ptr(), fut.ptr(), own);
    queue.push(state, ex); // the C++ reference goes with the work
    return fut;
}

template <class A> struct awaitable_value;
template <class T, class E> struct awaitable_value<asio::awaitable<T, E>> { using type = T; };

/// Work (a) and (b): a callable returning an asio::awaitable<T>, run with co_spawn.
template <class Make> struct coroutine_work {
    using value_type = typename awaitable_value<std::invoke_result_t<Make&>>::type;
    Make make;

    template <class Handler> void start(Handler&& handler) {
        // NOTE: co_spawn is given the callable, not make(): it keeps the callable alive in its
        // own frame while the coroutine runs, and a lambda coroutine reads its captures through
        // the lambda object.
        auto ex = asio::get_associated_executor(handler);
        asio::co_spawn(ex, std::move(make), std::forward<Handler>(handler));
    }
};

/// Work (c): an Asio initiation f(token). It is given the completion handler itself, so no
/// coroutine frame is made.
template <class Init> struct initiation_work {
    using value_type =
        typename awaitable_value<std::invoke_result_t<Init&, const asio::use_awaitable_t<>&>>::type;
    Init init;

    template <class Handler> void start(Handler&& handler) {
        std::move(init)(std::forward<Handler>(handler));
    }
};

/// The executor given, or (none) the default runtime's when the work starts: a LazyFuture made
/// before shutdown_runtime() and awaited after it fails with runtime_stopped, or runs on the
/// runtime set up again since (the runtime it saw at the call no longer runs anything).
inline asio::any_io_executor executor_or_default(std::optional<asio::any_io_executor>& ex) {
    return ex ? *std::move(ex) : default_executor();
}

template <class Work> struct starter_for final : starter {
    Work work;
    std::optional<asio::any_io_executor> ex;
    starter_for(Work w, std::optional<asio::any_io_executor> e)
        : work(std::move(w)), ex(std::move(e)) {}
    object start(handle loop) override {
        return launch(loop, executor_or_default(ex), std::move(work));
    }
};

/// The future (loop running) or a LazyFuture (no loop running) for `work`, on `ex` (none: the
/// default runtime).
template <class Work> object future_for(std::optional<asio::any_io_executor> ex, Work work) {
    PYASIO_DETAIL_ASSERT_GIL("pyasio::future_into_py called");
    if (object loop = running_loop())
        return launch(loop, executor_or_default(ex), std::move(work));
    if (!ex)
        (void)default_executor(); // NOTE: after shutdown_runtime() the call itself fails
    future_types& types = per_interpreter<future_types>();
    object lazy = steal(PyType_GenericAlloc(types.lazy, 0));
    if (!lazy)
        throw_error_already_set();
    reinterpret_cast<lazy_object*>(lazy.ptr())->start =
        new starter_for<Work>(std::move(work), std::move(ex));
    return lazy;
}

template <class F> auto as_work(F&& f) {
    using D = std::decay_t<F>;
    if constexpr (std::is_invocable_v<D&>) { // (a) a callable returning an awaitable
        return coroutine_work<D>{D(std::forward<F>(f))};
    } else if constexpr (std::is_invocable_v<D&, const asio::use_awaitable_t<>&>) {
        return initiation_work<D>{D(std::forward<F>(f))}; // (c) an initiation
    } else {
        static_assert(always_false<D>,
                      "pyasio::future_into_py takes a callable returning asio::awaitable<T>, an "
                      "asio::awaitable<T>, or an initiation f(token) such as "
                      "[&](auto token) { return timer.async_wait(token); }");
    }
}

template <class T, class E> auto as_work(asio::awaitable<T, E>&& a) {
    // (b) an awaitable: it can be started once
    return as_work(
        [a = std::make_shared<asio::awaitable<T, E>>(std::move(a))]() { return std::move(*a); });
}

} // namespace detail

/// Python awaits C++: runs `work` on the Asio runtime and returns what Python awaits for its
/// result.
///
/// `work` is one of: (a) a callable returning asio::awaitable<T>; (b) an asio::awaitable<T>;
/// (c) an Asio initiation `f(token)`, e.g. `[t](auto token) { return t->async_wait(token); }`.
///
/// When a loop runs in this thread, the result is a pyasio.Future of that loop (an asyncio.Future
/// that is also a coroutine, so that asyncio.create_task takes it) and the work starts at once.
/// Otherwise it is a LazyFuture that starts the work on the loop that first awaits it (so
/// `asyncio.run(mod.f())` works); one never awaited starts nothing and warns like a coroutine that
/// was never awaited.
///
/// @par Completion
/// The result T is converted with to_python on the loop thread (void gives None); a C++
/// exception becomes the matching Python exception (pyasio::translate_exception), a
/// python_error the original exception object.
///
/// @par Cancellation
/// Cancelling the future (task.cancel(), asyncio.wait_for's timeout) or letting it be garbage
/// collected emits a terminal cancellation to the work on its own strand; its next cancellable
/// wait ends with operation_aborted. A completion racing a cancellation is dropped quietly.
///
/// @par Threads and the GIL
/// Call with the GIL held, on the loop's thread. The work runs on a strand of `ex` (default: the
/// default runtime); its threads never take the GIL: the outcome reaches the loop through the
/// loop bridge, one wake per batch.
template <class Work> object future_into_py(Work&& work, asio::any_io_executor ex) {
    return detail::future_for(std::move(ex), detail::as_work(std::forward<Work>(work)));
}

/// future_into_py on the default runtime (a LazyFuture: the one running when it starts).
template <class Work> object future_into_py(Work&& work) {
    return detail::future_for(std::nullopt, detail::as_work(std::forward<Work>(work)));
}

PYASIO_NAMESPACE_END

#endif // PYASIO_FUTURE_INTO_PY_HPP
