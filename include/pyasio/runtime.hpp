// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_RUNTIME_HPP
#define PYASIO_RUNTIME_HPP

/// @file
/// The Asio runtime that runs C++ work for Python: configure it, install your own executor,
/// shut it down.

#include <pyasio/config.hpp>

#include <pyasio/detail/object_core.hpp>
#include <pyasio/error.hpp>
#include <pyasio/gil.hpp>
#include <pyasio/object.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/execution.hpp>
#include <asio/execution_context.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/query.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

PYASIO_NAMESPACE_BEGIN

namespace detail {
/// True on the threads of a pyasio::runtime.
inline thread_local bool runtime_thread = false;
inline bool on_runtime_thread() noexcept {
    return runtime_thread;
}

/// Reports an exception that escaped a completion handler `where` pyasio runs it (Asio would
/// end the thread): through sys.unraisablehook, which prints it with its traceback by default,
/// as Python reports an exception in a callback. On stderr when Python no longer runs. An error
/// path only: the GIL is taken for the report. Never throws.
inline void report_escaped(const std::exception_ptr& error, const char* where) noexcept {
    // NOTE: allocates nothing of its own (a std::bad_alloc here would end the process): Python
    // formats the message; the fallback prints with fprintf.
    static constexpr const char* message = "pyasio: an exception escaped a completion handler %s "
                                           "and was ignored; handlers must not throw: catch it "
                                           "inside the handler";
    try {
        gil_acquire gil; // std::logic_error when Python no longer runs
        object context = steal(PyUnicode_FromFormat(message, where)); // NOTE: before the error
        translate_exception(error);
        PyErr_WriteUnraisable(context.ptr());
        PyErr_Clear(); // NOTE: only if the hook itself failed
        return;
    } catch (...) {
        detail::caught();
    }
    std::fprintf(stderr, message, where);
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        std::fprintf(stderr, ": %s\n", e.what());
    } catch (...) {
        detail::caught();
        std::fputs("\n", stderr);
    }
}
} // namespace detail

/// The Asio runtime that runs C++ work for Python: an io_context served by a pool of threads.
///
/// Its threads never take the GIL to complete an operation: results travel to the Python loop
/// through the loop bridge and are converted there. stop() (or destruction) stops the io_context
/// and joins its threads; handlers still pending stay in the io_context until it is destroyed,
/// which destroys them without running them.
class runtime {
public:
    /// Starts `threads` threads (at least 1).
    explicit runtime(std::size_t threads) : work_(io_.get_executor()) {
        threads = std::max<std::size_t>(threads, 1);
        threads_.reserve(threads);
        for (std::size_t i = 0; i < threads; ++i)
            threads_.emplace_back(&runtime::serve_thread, static_cast<void*>(this));
    }

    ~runtime() { stop(); }

    runtime(const runtime&) = delete;
    runtime& operator=(const runtime&) = delete;

    /// Stops the io_context and joins the threads (each finishes the handler it runs). Not from
    /// one of its own threads.
    void stop() {
        work_.reset();
        io_.stop();
        for (auto& t : threads_)
            if (t.joinable())
                t.join();
    }

    /// The executor on which work runs.
    asio::io_context::executor_type get_executor() noexcept { return io_.get_executor(); }
    /// How many threads serve it.
    std::size_t thread_count() const noexcept { return threads_.size(); }

    /// The default thread count: the hardware's concurrency, at least 2.
    static std::size_t default_thread_count() noexcept {
        return std::max<std::size_t>(std::thread::hardware_concurrency(), 2);
    }

private:
    // NOTE: a plain function of a void*, not a lambda or a member: std::thread's state type is an
    // instance over the callable's type, and libstdc++ exports its instances (its vtable) from an
    // extension module, where another module's copy of pyasio could bind to it. Over
    // void (*)(void*) and void* it names nothing of pyasio's, and any copy's works for all.
    static void serve_thread(void* self) { static_cast<runtime*>(self)->serve(); }

    void serve() {
        detail::runtime_thread = true;
        for (;;) {
            try {
                // NOTE: one handler at a time, so that a handler that returns holding the GIL (a
                // GIL scope kept across a co_await) is named here, in release builds too, instead
                // of deadlocking or crashing inside CPython later. The check is one thread-local
                // read per handler (bench/future_into_py.py: within the noise).
                while (io_.run_one() != 0)
                    if (detail::gil_held())
                        detail::fatal("a runtime thread still holds the GIL after a handler "
                                      "returned: a GIL scope (pyasio::gil_acquire) was kept "
                                      "across a co_await (rule: never hold the GIL across a "
                                      "suspension; in a coroutine use pyasio::async_gil and "
                                      "co_await gil.release_during(op))");
                return;
            } catch (...) { // a handler threw: report it, and serve the others on
                detail::report_escaped(detail::caught(), "on a runtime thread");
            }
        }
    }

    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    std::vector<std::thread> threads_;
};

/// The runtime was shut down (pyasio::shutdown_runtime(), or interpreter exit) and has not been
/// set up again: no new work can start on it. Raised in Python as RuntimeError.
class runtime_stopped : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {

/// Counts the forks this process is a child of. What the parent's threads left half done (the
/// runtime, its io_context, the registry's links) is never touched by a child: it starts afresh.
inline std::atomic<unsigned> fork_generation{0};

/// An operation whose C++ work runs, known to the runtime so that shutdown can cancel it.
struct inflight_operation {
    inflight_operation* prev = nullptr;
    inflight_operation* next = nullptr;
    bool listed = false;    // guarded by the registry's mutex
    unsigned listed_in = 0; // the fork generation whose registry lists it
    /// Adds an owner unless the operation is being destroyed. Registry mutex held: no locking.
    virtual bool hold() noexcept = 0;
    /// Asks the work to stop (terminal cancellation), then drops the owner hold() added.
    virtual void cancel_for_shutdown() noexcept = 0;

protected:
    ~inflight_operation() = default;
};

/// Which operations' C++ work runs now: listed when made, unlisted when the work finishes.
class inflight_registry {
public:
    static inflight_registry& instance() noexcept {
        // NOTE: never destroyed (placement in static storage, no destructor call): operations
        // may be destroyed at process exit, after the statics
        static inflight_registry* r = ::new (storage()) inflight_registry;
        return *r;
    }

    /// In the child of a fork: an empty registry replaces the parent's, whose mutex a parent's
    /// thread may have held (its operations are the parent's: remove() ignores them).
    static void reset_after_fork() noexcept {
        instance();
        ::new (storage()) inflight_registry;
    }

    void add(inflight_operation* op) noexcept {
        std::lock_guard<std::mutex> lock(mutex_);
        op->listed_in = fork_generation.load(std::memory_order_relaxed);
        op->prev = nullptr;
        op->next = head_;
        if (head_ != nullptr)
            head_->prev = op;
        head_ = op;
        op->listed = true;
        ++count_;
    }

    void remove(inflight_operation* op) noexcept {
        if (op->listed_in != fork_generation.load(std::memory_order_relaxed))
            return; // listed by the parent of this forked process
        std::lock_guard<std::mutex> lock(mutex_);
        if (!op->listed)
            return;
        (op->prev != nullptr ? op->prev->next : head_) = op->next;
        if (op->next != nullptr)
            op->next->prev = op->prev;
        op->listed = false;
        if (--count_ == 0)
            empty_.notify_all();
    }

    std::size_t size() {
        std::lock_guard<std::mutex> lock(mutex_);
        return count_;
    }

    /// Cancels every listed operation (outside the lock: a cancel may free an operation).
    void cancel_all() noexcept {
        std::vector<inflight_operation*> held;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            try {
                held.reserve(count_);
            } catch (...) { // std::bad_alloc: nothing is cancelled; shutdown still stops
                detail::caught();
                return;
            }
            for (inflight_operation* op = head_; op != nullptr; op = op->next)
                if (op->hold())
                    held.push_back(op);
        }
        for (inflight_operation* op : held)
            op->cancel_for_shutdown();
    }

    /// Waits until no work runs, or until `deadline`; true if none runs.
    bool wait_empty(std::chrono::steady_clock::time_point deadline) {
        std::unique_lock<std::mutex> lock(mutex_);
        return empty_.wait_until(lock, deadline, [this] { return count_ == 0; });
    }

private:
    static void* storage() noexcept {
        alignas(inflight_registry) static unsigned char bytes[sizeof(inflight_registry)];
        return bytes;
    }

    std::mutex mutex_;
    std::condition_variable empty_;
    inflight_operation* head_ = nullptr;
    std::size_t count_ = 0;
};

/// The default runtime's state: configured, running (the executor everyone gets), or stopped.
class runtime_slot {
public:
    static runtime_slot& instance() noexcept {
        // NOTE: destroyed at process exit, after the last interpreter: that joins the threads
        // of every runtime it started and destroys what their io_contexts still hold
        static runtime_slot s;
        return s;
    }

    runtime_slot() noexcept {
#if PYASIO_DETAIL_HAS_FORK
        ::pthread_atfork(nullptr, nullptr, &after_fork_in_child);
#endif
    }
    runtime_slot(const runtime_slot&) = delete;
    runtime_slot& operator=(const runtime_slot&) = delete;
    ~runtime_slot() = default;

    /// The current executor (the fast path: one atomic load), or a started runtime's.
    asio::any_io_executor executor() {
        if (const asio::any_io_executor* ex = current_.load(std::memory_order_acquire))
            return *ex;
        return start();
    }

    void configure(std::size_t threads) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (current_.load(std::memory_order_relaxed) != nullptr)
            throw std::logic_error(
                "pyasio::configure_runtime: the runtime already runs; configure it before the "
                "first pyasio operation (or call pyasio::shutdown_runtime() first)");
        threads_ = threads;
        installed_.reset();
        stopped_ = false;
    }

    void install(asio::any_io_executor ex) {
        if (!ex)
            throw std::invalid_argument(
                "pyasio::install_runtime: the executor is empty (give an io_context's executor, "
                "a thread_pool's, or any Asio executor)");
        std::lock_guard<std::mutex> lock(mutex_);
        if (current_.load(std::memory_order_relaxed) != nullptr)
            throw std::logic_error(
                "pyasio::install_runtime: the runtime already runs; install yours before the "
                "first pyasio operation (or call pyasio::shutdown_runtime() first)");
        installed_ = std::move(ex);
        stopped_ = false;
    }

    /// Starts the runtime unless it runs already; true when this call started it (pyasio::run
    /// shuts down only a runtime it started).
    bool start_if_idle() {
        bool started = false;
        start_locked(&started);
        register_exit_hook();
        return started;
    }

    /// Lets a runtime that was shut down start again (pyasio::run does, at its start and after
    /// it shut down the runtime it started).
    void rearm() noexcept {
        std::lock_guard<std::mutex> lock(mutex_);
        stopped_ = false;
    }

    /// Stops new work from starting; returns the runtime pyasio owns (null for an installed
    /// executor, or when none ran). The caller cancels the work in flight and stops it.
    runtime* stop() noexcept {
        std::lock_guard<std::mutex> lock(mutex_);
        stopped_ = true;
        stopped_generation_ = interpreter_generation();
        installed_.reset();
        const asio::any_io_executor* ex = current_.exchange(nullptr, std::memory_order_acq_rel);
        if (ex == nullptr || retired_.empty())
            return nullptr;
        return retired_.back().owned.get();
    }

    /// The execution context of the runtime's executor; after a shutdown, that of the last
    /// runtime (kept alive), so that I/O objects made on a loop_executor still find one.
    asio::execution_context& context() {
        try {
            return asio::query(executor(), asio::execution::context);
        } catch (const runtime_stopped&) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (retired_.empty()) { // shut down before it ever started: a context that never
                static asio::io_context none; // runs, like a stopped runtime's
                return none;
            }
            return asio::query(retired_.back().ex, asio::execution::context);
        }
    }

    std::size_t thread_count() {
        std::lock_guard<std::mutex> lock(mutex_);
        if (current_.load(std::memory_order_relaxed) == nullptr || retired_.empty())
            return 0;
        return retired_.back().owned ? retired_.back().owned->thread_count() : 0;
    }

private:
    struct record {
        std::unique_ptr<runtime> owned; // null for an installed executor
        asio::any_io_executor ex;
    };

    asio::any_io_executor start() {
        asio::any_io_executor ex = start_locked();
        register_exit_hook();
        return ex;
    }

    /// Python's atexit runs shutdown_runtime() before this interpreter finalizes. Registered
    /// once per interpreter, outside the mutex (taking the GIL under it could deadlock).
    void register_exit_hook() {
        unsigned now = interpreter_generation();
        if (hook_generation_.exchange(now + 1, std::memory_order_acq_rel) == now + 1)
            return;
        if (!interpreter_alive() && !gil_held())
            return;
        try {
            gil_acquire gil;
            static PyMethodDef def = {
                "pyasio_shutdown_runtime",
                [](PyObject*, PyObject*) -> PyObject* {
                    shutdown_at_exit();
                    Py_RETURN_NONE;
                },
                METH_NOARGS, "Shuts pyasio's runtime down before the interpreter finalizes."};
            object fn = checked(PyCFunction_New(&def, nullptr));
            call(getattr(import("atexit"), "register"), fn);
        } catch (...) { // no hook: the threads are still joined at process exit
            detail::caught();
            hook_generation_.store(0, std::memory_order_release);
        }
    }

    static void shutdown_at_exit() noexcept;

    /// In the child of a fork only the forking thread exists: the runtime's threads do not, and
    /// a mutex one of them held stays locked. The child starts a fresh runtime at its first use
    /// (an installed executor is forgotten: install it again). The parent's runtimes are left
    /// as they are, never destroyed (that would join threads the child does not have).
    static void after_fork_in_child() noexcept {
        fork_generation.fetch_add(1, std::memory_order_relaxed);
        inflight_registry::reset_after_fork();
        runtime_slot& s = instance();
        ::new (&s.mutex_) std::mutex;
        // NOTE: leaked on purpose; without the memory, the runtimes at least are never destroyed
        if (auto* kept = new (std::nothrow) std::deque<record>())
            kept->swap(s.retired_);
        else
            for (record& r : s.retired_)
                (void)r.owned.release();
        if (s.installed_)
            (void)new (std::nothrow) asio::any_io_executor(*std::move(s.installed_)); // likewise
        s.retired_.clear();
        s.installed_.reset();
        s.current_.store(nullptr, std::memory_order_relaxed);
        s.stopped_ = false;
    }

    asio::any_io_executor start_locked(bool* started = nullptr) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (const asio::any_io_executor* ex = current_.load(std::memory_order_relaxed))
            return *ex;
        // NOTE: a shutdown belongs to one interpreter: a new one (pyasio::run called again)
        // starts a fresh runtime.
        if (stopped_ && stopped_generation_ == interpreter_generation())
            throw runtime_stopped(
                "pyasio: the runtime was shut down (pyasio::shutdown_runtime() or interpreter "
                "exit), so no new C++ work can start. Set it up again first with "
                "pyasio::configure_runtime() or pyasio::install_runtime()");
        record r;
        if (installed_) {
            r.ex = *installed_;
        } else {
            r.owned = std::make_unique<runtime>(threads_ != 0 ? threads_
                                                              : runtime::default_thread_count());
            r.ex = r.owned->get_executor();
        }
        // NOTE: records are kept until the process exits: an executor handed out earlier may
        // still be copied by another thread, and a stopped io_context may hold handlers that
        // refer to Python objects of a finalized interpreter (destroying those while a newer
        // interpreter runs would release them into it).
        retired_.push_back(std::move(r));
        current_.store(&retired_.back().ex, std::memory_order_release);
        if (started != nullptr)
            *started = true;
        return retired_.back().ex;
    }

    std::mutex mutex_;
    std::atomic<const asio::any_io_executor*> current_{nullptr};
    std::size_t threads_ = 0; // 0: runtime::default_thread_count()
    std::optional<asio::any_io_executor> installed_;
    bool stopped_ = false;
    unsigned stopped_generation_ = 0;
    std::deque<record> retired_;               // NOTE: a deque: push_back never moves the records
    std::atomic<unsigned> hook_generation_{0}; // interpreter generation + 1 once registered
};

} // namespace detail

/// Sets the number of threads of the default runtime, before it starts (it starts at the first
/// pyasio operation that needs it). std::logic_error if it already runs. After
/// shutdown_runtime(), it also allows the runtime to start again.
inline void configure_runtime(std::size_t threads) {
    detail::runtime_slot::instance().configure(threads);
}

/// Runs pyasio's C++ work on `ex` (your io_context's executor, a thread_pool's, a strand...)
/// instead of the default runtime: pyo3-asyncio's init_with_runtime. Call it before the first
/// pyasio operation (std::logic_error once the runtime runs). You keep running and stopping
/// the executor's context; pyasio never stops it.
inline void install_runtime(asio::any_io_executor ex) {
    detail::runtime_slot::instance().install(std::move(ex));
}

/// install_runtime(io.get_executor()).
inline void install_runtime(asio::io_context& io) {
    install_runtime(asio::any_io_executor(io.get_executor()));
}

/// The executor pyasio runs C++ work on: the installed one, or the default runtime's (started on
/// first use with runtime::default_thread_count() threads, or configure_runtime()'s count).
/// Throws pyasio::runtime_stopped after shutdown_runtime() in the same interpreter.
inline asio::any_io_executor default_executor() {
    return detail::runtime_slot::instance().executor();
}

/// How many threads the running default runtime has (0 when it does not run, or when an
/// installed executor is used).
inline std::size_t runtime_thread_count() {
    return detail::runtime_slot::instance().thread_count();
}

/// Shuts the runtime down: no new work starts (runtime_stopped); the work in flight is cancelled
/// (a terminal cancellation: its Python futures end cancelled); then, waiting at most `grace`
/// for that work to finish, the default runtime's threads are stopped and joined. An installed
/// executor is only let go of, not stopped. Work that ignores cancellation past `grace` is
/// abandoned: it never runs again and its Python future never completes.
///
/// pyasio calls it at interpreter exit (an atexit hook), before finalization. Call it with or
/// without the GIL (it is released while waiting), never from a runtime thread
/// (std::logic_error).
inline void shutdown_runtime(std::chrono::milliseconds grace = std::chrono::seconds(5)) {
    if (detail::on_runtime_thread())
        throw std::logic_error(
            "pyasio::shutdown_runtime: called on one of the runtime's own threads, which it "
            "would have to join (and wait for the work that calls it); call it from the main "
            "thread or a thread of your own");
    runtime* owned = detail::runtime_slot::instance().stop();
    detail::inflight_registry& inflight = detail::inflight_registry::instance();
    inflight.cancel_all();
    std::optional<PyThreadState*> saved; // NOTE: the runtime's work may need the GIL to finish
    if (detail::gil_held())
        saved = PyEval_SaveThread();
    inflight.wait_empty(std::chrono::steady_clock::now() + grace);
    if (owned != nullptr)
        owned->stop();
    if (saved)
        PyEval_RestoreThread(*saved);
}

namespace detail {
inline void runtime_slot::shutdown_at_exit() noexcept {
    try {
        shutdown_runtime();
    } catch (...) { // nothing to report to at exit
        detail::caught();
    }
}
} // namespace detail

PYASIO_NAMESPACE_END

#endif // PYASIO_RUNTIME_HPP
