// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_LOOP_HPP
#define PYASIO_LOOP_HPP

/// @file
/// Event loops and task locals: task_locals (a loop and a contextvars context), the current and
/// default task locals, and how C++ threads wake a loop (loop_wake).

#include <pyasio/config.hpp>

#include <pyasio/convert.hpp>
#include <pyasio/detail/intrusive_stack.hpp>
#include <pyasio/detail/loop_family.hpp>
#include <pyasio/error.hpp>
#include <pyasio/gil.hpp>
#include <pyasio/object.hpp>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>

// NOTE: which file descriptors can wake a loop is decided here, by platform: an eventfd on Linux,
// a pipe on the other POSIX systems (made with pipe2 where it exists, else with pipe and fcntl:
// macOS), none on Windows (its loops are woken with call_soon_threadsafe). These headers are in
// detail/system_headers.hpp too, which includes them before Asio's hidden region.
#if !defined(_WIN32)
/// 1 where a pipe can wake a loop (POSIX): see loop_wake.
#define PYASIO_DETAIL_HAS_PIPE_WAKE 1
#else
/// 1 where a pipe can wake a loop (POSIX): see loop_wake.
#define PYASIO_DETAIL_HAS_PIPE_WAKE 0
#endif
#if !defined(PYASIO_DETAIL_HAS_EVENTFD)
#if defined(__linux__)
/// 1 where an eventfd can wake a loop (Linux): see loop_wake. Defined to 0 beforehand, pyasio
/// compiles as where there is none (for tests).
#define PYASIO_DETAIL_HAS_EVENTFD 1
#else
/// 1 where an eventfd can wake a loop (Linux): see loop_wake. Defined to 0 beforehand, pyasio
/// compiles as where there is none (for tests).
#define PYASIO_DETAIL_HAS_EVENTFD 0
#endif
#endif
#if !defined(PYASIO_DETAIL_HAS_PIPE2)
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) ||   \
    defined(__DragonFly__)
/// 1 where pipe2 exists (Linux, the BSDs; not macOS): the wake's pipe is made by one call.
/// Defined to 0 beforehand, the pipe is made with pipe and fcntl, as on macOS (for tests).
#define PYASIO_DETAIL_HAS_PIPE2 1
#else
/// 1 where pipe2 exists (Linux, the BSDs; not macOS): the wake's pipe is made by one call.
/// Defined to 0 beforehand, the pipe is made with pipe and fcntl, as on macOS (for tests).
#define PYASIO_DETAIL_HAS_PIPE2 0
#endif
#endif
#if !defined(PYASIO_USE_PIPE_WAKE)
/// 1: loops are woken through a pipe even where an eventfd exists (Linux), as on macOS and the
/// BSDs; for tests of that path. Define it for the whole build (every translation unit of a
/// module): it chooses an inline variable's value.
#define PYASIO_USE_PIPE_WAKE 0
#endif

#if PYASIO_DETAIL_HAS_PIPE_WAKE
#include <fcntl.h>
#include <unistd.h>
#endif
#if PYASIO_DETAIL_HAS_EVENTFD
#include <sys/eventfd.h>
#endif

PYASIO_NAMESPACE_BEGIN

/// How C++ threads wake a Python event loop that has work waiting.
///
/// reader is the default where a file descriptor can wake a loop: an eventfd on Linux, a pipe on
/// the other POSIX systems (macOS, the BSDs; on Linux too when PYASIO_USE_PIPE_WAKE=1). On
/// Windows, and for any loop whose add_reader raises NotImplementedError (Windows'
/// ProactorEventLoop), the bridge uses call_soon_threadsafe instead, by itself: choosing reader
/// never fails for want of add_reader.
enum class loop_wake {
    /// A file descriptor watched with loop.add_reader (an eventfd on Linux, a non-blocking pipe
    /// on the other POSIX systems): the waking thread writes to it (8 bytes; 1 to a pipe) and
    /// never takes the GIL. The default; used with loops that have add_reader (asyncio's
    /// selector loops, uvloop). Where there is no such file descriptor (Windows), or when the
    /// loop's add_reader raises NotImplementedError, the loop is woken with call_soon_threadsafe.
    reader,
    /// loop.call_soon_threadsafe: the waking thread takes the GIL for the call. For loops without
    /// add_reader; every loop has it.
    call_soon_threadsafe,
};

class task_locals;

namespace detail {
struct task_locals_access;

/// loop.call_soon_threadsafe(fn, *args), called from a Python function (made once per
/// interpreter): every call_soon_threadsafe of pyasio goes through it.
// NOTE: a runtime thread has no Python frame, and uvloop before 0.18 in debug mode (python -X dev)
// then raises ValueError ("call stack is not deep enough") from call_soon_threadsafe: the loop
// was never woken. Called from a Python frame, it is.
struct threadsafe_wake {
    object call = make();

private:
    static object make() {
        return python_function("def call_soon_threadsafe(loop, fn, *args, **kwargs):\n"
                               "    loop.call_soon_threadsafe(fn, *args, **kwargs)\n",
                               "call_soon_threadsafe");
    }
};

/// loop.call_soon_threadsafe(fn, args...) from any thread (see threadsafe_wake). Needs the GIL.
template <class... Args> void call_soon_threadsafe(handle loop, handle fn, Args&&... args) {
    call(per_interpreter<threadsafe_wake>().call, loop, fn, std::forward<Args>(args)...);
}

/// The file descriptors that can wake a loop (see loop_wake).
enum class wake_fd_kind {
    none,    ///< none (Windows): loops are woken with call_soon_threadsafe
    eventfd, ///< one eventfd, written and read (Linux)
    pipe2,   ///< a pipe made with pipe2 (Linux, the BSDs)
    pipe,    ///< a pipe made with pipe and fcntl (macOS, and where pipe2 is missing)
};

/// What this platform and build wake loops with: eventfd on Linux, a pipe on the other POSIX
/// systems (and on Linux with PYASIO_USE_PIPE_WAKE=1), none on Windows.
inline constexpr wake_fd_kind default_wake_fd_kind =
#if PYASIO_DETAIL_HAS_EVENTFD && !PYASIO_USE_PIPE_WAKE
    wake_fd_kind::eventfd;
#elif PYASIO_DETAIL_HAS_PIPE_WAKE && PYASIO_DETAIL_HAS_PIPE2
    wake_fd_kind::pipe2;
#elif PYASIO_DETAIL_HAS_PIPE_WAKE
    wake_fd_kind::pipe;
#else
    wake_fd_kind::none;
#endif

/// The name of a kind: "none", "eventfd", "pipe2" or "pipe".
constexpr const char* wake_fd_kind_name(wake_fd_kind kind) noexcept {
    switch (kind) {
    case wake_fd_kind::eventfd:
        return "eventfd";
    case wake_fd_kind::pipe2:
        return "pipe2";
    case wake_fd_kind::pipe:
        return "pipe";
    case wake_fd_kind::none:
        break;
    }
    return "none";
}

#if PYASIO_DETAIL_HAS_PIPE_WAKE
/// Opens a wake's file descriptors: fds[0] to read, fds[1] to write (the same for an eventfd),
/// both non-blocking and close-on-exec. std::system_error when the system refuses;
/// std::invalid_argument for a kind this platform does not have.
inline void open_wake_fds(wake_fd_kind kind, int (&fds)[2]) {
#if PYASIO_DETAIL_HAS_EVENTFD
    if (kind == wake_fd_kind::eventfd) {
        fds[0] = fds[1] = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fds[0] < 0)
            throw std::system_error(errno, std::system_category(), "pyasio: eventfd");
        return;
    }
#endif
#if PYASIO_DETAIL_HAS_PIPE2
    if (kind == wake_fd_kind::pipe2) {
        if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
            throw std::system_error(errno, std::system_category(), "pyasio: pipe2");
        return;
    }
#endif
    if (kind == wake_fd_kind::pipe) {
        // NOTE: not atomic with a fork+exec on another thread, which may inherit the pair before
        // FD_CLOEXEC is set: the price of a system without pipe2 (macOS)
        if (::pipe(fds) < 0)
            throw std::system_error(errno, std::system_category(), "pyasio: pipe");
        for (int fd : fds) {
            int fl = ::fcntl(fd, F_GETFL);
            if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
                ::fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
                int error = errno;
                ::close(fds[0]);
                ::close(fds[1]);
                throw std::system_error(error, std::system_category(), "pyasio: fcntl");
            }
        }
        return;
    }
    throw std::invalid_argument(std::string("pyasio: no ") + wake_fd_kind_name(kind) +
                                " wake on this platform");
}

/// Makes a wake's read end readable: 8 bytes to an eventfd, 1 to a pipe. Async-signal-safe. A
/// full pipe (EAGAIN) is readable already: nothing is lost.
inline void signal_wake_fd(wake_fd_kind kind, int write_fd) noexcept {
    if (kind == wake_fd_kind::eventfd) {
        std::uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(write_fd, &one, sizeof one);
    } else {
        unsigned char one = 1;
        [[maybe_unused]] ssize_t n = ::write(write_fd, &one, 1);
    }
}

/// Makes a wake's read end unreadable until the next signal: reads the eventfd's counter, or the
/// pipe until it is empty.
inline void clear_wake_fd(wake_fd_kind kind, int read_fd) noexcept {
    if (kind == wake_fd_kind::eventfd) {
        std::uint64_t count = 0;
        [[maybe_unused]] ssize_t n = ::read(read_fd, &count, sizeof count);
        return;
    }
    // NOTE: until EAGAIN (empty): a signal after that is a new wake
    for (;;) {
        unsigned char bytes[64];
        ssize_t n = ::read(read_fd, bytes, sizeof bytes);
        if (n <= 0 && !(n < 0 && errno == EINTR))
            break;
    }
}

/// Closes a file descriptor.
inline void close_wake_fd(int fd) noexcept {
    ::close(fd);
}
#else
/// No wake file descriptors here (Windows): std::invalid_argument.
inline void open_wake_fds(wake_fd_kind kind, int (&)[2]) {
    throw std::invalid_argument(std::string("pyasio: no ") + wake_fd_kind_name(kind) +
                                " wake on this platform");
}
/// Nothing to signal here (never called: nothing opens).
inline void signal_wake_fd(wake_fd_kind, int) noexcept {}
/// Nothing to clear here (never called: nothing opens).
inline void clear_wake_fd(wake_fd_kind, int) noexcept {}
/// Nothing to close here (never called: nothing opens).
inline void close_wake_fd(int) noexcept {}
#endif

/// The file descriptor(s) of a reader-mode wake: a loop watches read_fd() with add_reader; any
/// thread signal()s without the GIL; the loop thread clear()s it before it takes the batch.
/// An eventfd is one descriptor for both ends; a pipe is two, both non-blocking and
/// close-on-exec.
class wake_fd {
public:
    /// No file descriptor.
    wake_fd() noexcept = default;

    /// Opens one of `kind`. std::system_error when the system refuses; std::invalid_argument
    /// for a kind this platform does not have (none included).
    explicit wake_fd(wake_fd_kind kind) {
        int fds[2] = {-1, -1};
        open_wake_fds(kind, fds);
        kind_ = kind;
        read_ = fds[0];
        write_ = fds[1];
    }

    wake_fd(wake_fd&& other) noexcept
        : kind_(std::exchange(other.kind_, wake_fd_kind::none)),
          read_(std::exchange(other.read_, -1)), write_(std::exchange(other.write_, -1)) {}
    wake_fd& operator=(wake_fd&& other) noexcept {
        wake_fd(std::move(other)).swap(*this);
        return *this;
    }
    ~wake_fd() { close(); }

    /// Exchanges the descriptors of two wakes.
    void swap(wake_fd& other) noexcept {
        std::swap(kind_, other.kind_);
        std::swap(read_, other.read_);
        std::swap(write_, other.write_);
    }

    /// What it is; none once closed.
    wake_fd_kind kind() const noexcept { return kind_; }
    /// The descriptor to watch with add_reader; -1 when closed.
    int read_fd() const noexcept { return read_; }
    /// The descriptor signal() writes to (read_fd() for an eventfd); -1 when closed.
    int write_fd() const noexcept { return write_; }

    /// Makes read_fd() readable (no effect when closed). Any thread, no GIL.
    void signal() const noexcept {
        if (kind_ != wake_fd_kind::none)
            signal_wake_fd(kind_, write_);
    }

    /// Makes read_fd() unreadable until the next signal() (no effect when closed). The thread
    /// that watches it.
    void clear() const noexcept {
        if (kind_ != wake_fd_kind::none)
            clear_wake_fd(kind_, read_);
    }

    /// Closes the descriptors (no effect when closed). No signal() or clear() may run meanwhile:
    /// the numbers may be reused at once.
    void close() noexcept {
        if (write_ >= 0 && write_ != read_)
            close_wake_fd(write_);
        if (read_ >= 0)
            close_wake_fd(read_);
        read_ = write_ = -1;
        kind_ = wake_fd_kind::none;
    }

private:
    wake_fd_kind kind_ = wake_fd_kind::none;
    int read_ = -1;
    int write_ = -1;
};

/// A unit of work for the loop thread. Queued by any thread without the GIL; run on the loop
/// thread with the GIL by the bridge's drain, in the order queued.
struct loop_job {
    loop_job* next = nullptr;
    /// Runs on the loop thread with the GIL held; must not throw (but lets a forced unwind
    /// through: not noexcept, see detail::caught()). Consumes the job.
    virtual void run() = 0;
    /// The loop is gone: release the job without completing it. The GIL is held if the
    /// interpreter is alive. Consumes the job.
    virtual void abandon() noexcept = 0;

protected:
    ~loop_job() = default;
};

/// Something waiting on the loop thread that must hear when its loop closes (an into_future
/// whose task is pending). Linked and unlinked on the loop thread with the GIL.
struct loop_watch {
    loop_watch* prev = nullptr;
    loop_watch* next = nullptr;
    bool watched = false;
    /// The loop was closed. Loop thread, GIL held; must not throw. Already unlinked.
    virtual void on_loop_closed() noexcept = 0;

protected:
    ~loop_watch() = default;
};

/// One per asyncio event loop: a lock-free multi-producer queue of loop_jobs, and one wake of
/// the loop per batch. Only the push that finds the queue empty wakes the loop; one drain on the
/// loop thread takes the whole batch.
class loop_bridge;
/// In call_soon_threadsafe mode, how the bridge hears that its loop closed (defined below).
void watch_close_with_a_timer(const std::shared_ptr<loop_bridge>& bridge, handle loop);

class loop_bridge : public std::enable_shared_from_this<loop_bridge> {
public:
    /// A bridge for `loop`, woken as `wake` asks: reader mode where this platform has a wake
    /// file descriptor (see default_wake_fd_kind), call_soon_threadsafe otherwise. GIL held.
    loop_bridge(handle loop, loop_wake wake) {
        // NOTE: weak: the loop owns the bridge (through its reader), never the other way round.
        loop_ = checked(PyWeakref_NewRef(loop.ptr(), nullptr));
        if (wake == loop_wake::reader && default_wake_fd_kind != wake_fd_kind::none)
            fd_ = wake_fd(default_wake_fd_kind);
        else
            wake = loop_wake::call_soon_threadsafe;
        wake_.store(wake, std::memory_order_relaxed);
    }

    ~loop_bridge() { abandon_all(); }

    loop_bridge(const loop_bridge&) = delete;
    loop_bridge& operator=(const loop_bridge&) = delete;

    /// Installs the drain callback on the loop. Called once, on any thread, with the GIL.
    ///
    /// In reader mode only the loop holds `drain`; closing the loop drops its readers, so the
    /// callback's death tells the bridge that the loop closed (see loop_closed). `attach_later`
    /// calls attach_here(drain) when the loop thread runs it.
    /// A loop whose add_reader raises NotImplementedError (Windows' ProactorEventLoop, and
    /// asyncio's AbstractEventLoop) is woken with call_soon_threadsafe instead, and the bridge's
    /// file descriptors are closed: the user sees no error.
    void attach(handle loop, object drain, const object& attach_later) {
        if (wake_mode() == loop_wake::reader) {
            // NOTE: on the loop's thread, or while the loop runs nowhere (pyasio::run's, before
            // it runs), the reader is added at once
            object running = running_loop_of_this_thread();
            if ((running && running.ptr() == loop.ptr()) ||
                call_method(loop, "is_running").ptr() != Py_True) {
                if (!add_reader(loop, drain))
                    fall_back_to_call_soon_threadsafe(loop, std::move(drain));
                return;
            }
            // NOTE: add_reader is not thread-safe (uvloop's, or a selector the loop's thread
            // waits in): the loop's own thread adds the reader, when it next runs callbacks.
            // Until then the pending callback alone holds `drain`: a loop closed first drops
            // it, which tells the bridge, as the reader's removal does. Jobs pushed meanwhile
            // wait in the file descriptor, which is readable when the reader is added (or, if
            // the loop has no add_reader, are drained when the bridge falls back).
            call_soon_threadsafe(loop, attach_later);
            return;
        }
        drain_ = std::move(drain);
        watch_close_with_a_timer(shared_from_this(), loop);
        // NOTE: a wake before this (the bridge is listed before it is attached) found no drain
        // callback and scheduled nothing: run one drain for the jobs pushed until now.
        if (pushes_.load(std::memory_order_relaxed) != 0)
            call_soon_threadsafe(loop, drain_);
    }

    /// The scheduled half of attach, on the loop's thread with the GIL: adds the reader, or
    /// falls back to call_soon_threadsafe when the loop has no add_reader (NotImplementedError).
    /// If the loop refuses it otherwise, C++ completions can never reach the loop: the bridge is
    /// closed (its jobs end with event_loop_closed) and the error is reported through
    /// sys.unraisablehook.
    void attach_here(handle drain) noexcept {
        try {
            if (object loop = this->loop())
                if (!add_reader(loop, drain))
                    fall_back_to_call_soon_threadsafe(loop, borrow(drain));
        } catch (...) {
            translate_exception(detail::caught());
            PyErr_WriteUnraisable(drain.ptr());
            loop_closed();
        }
    }

    /// Starts telling `w` when the loop closes. Loop thread, GIL held.
    void watch(loop_watch* w) noexcept {
        w->prev = nullptr;
        w->next = watches_;
        if (watches_ != nullptr)
            watches_->prev = w;
        watches_ = w;
        w->watched = true;
    }

    /// Stops telling `w` (no effect when it is not watched). Loop thread, GIL held.
    void unwatch(loop_watch* w) noexcept {
        if (!w->watched)
            return;
        (w->prev != nullptr ? w->prev->next : watches_) = w->next;
        if (w->next != nullptr)
            w->next->prev = w->prev;
        w->watched = false;
    }

    /// The loop closed (it dropped our drain callback, its reader, or our close timer, in
    /// call_soon_threadsafe mode): jobs are abandoned from
    /// now on, and every watch hears it. Loop thread (or the thread closing it), GIL held.
    void loop_closed() noexcept {
        close();
        while (watches_ != nullptr) {
            loop_watch* w = watches_;
            unwatch(w);
            w->on_loop_closed();
        }
    }

    /// Queues a job for the loop thread. Any thread; no GIL needed in reader mode.
    void push(loop_job* job) noexcept {
        if (closed_.load(std::memory_order_acquire)) {
            job->abandon();
            return;
        }
        pushes_.fetch_add(1, std::memory_order_relaxed);
        if (jobs_.push(job))
            wake();
    }

    /// Runs every queued job, oldest first. The loop thread, with the GIL. Throws nothing but a
    /// forced unwind (CPython ending this thread at exit: the batch's other jobs are dropped).
    void drain() {
        // NOTE: cleared before taking the batch: a push after the clear finds the queue empty
        // (we are about to take it) or not, and either wakes us again or rides along. In
        // reader mode only: a bridge that fell back has closed its file descriptor (before
        // it scheduled any drain).
        if (wake_.load(std::memory_order_acquire) == loop_wake::reader)
            fd_.clear();
        drains_.fetch_add(1, std::memory_order_relaxed);
        jobs_.consume([](loop_job* job) { job->run(); });
    }

    /// The loop is gone: jobs queued now or later are abandoned, never run.
    void close() noexcept {
        closed_.store(true, std::memory_order_release);
        abandon_all();
    }

    /// How the loop is woken: reader until the bridge falls back to call_soon_threadsafe
    /// (see attach).
    loop_wake wake_mode() const noexcept { return wake_.load(std::memory_order_acquire); }

    /// The kind of the file descriptor that wakes the loop: none in call_soon_threadsafe mode
    /// (and after a fall back). GIL held.
    wake_fd_kind wake_kind() const noexcept { return fd_.kind(); }

    /// The file descriptor the loop watches, or -1. GIL held.
    int wake_read_fd() const noexcept { return fd_.read_fd(); }

    /// The loop, or an empty object once it is gone. GIL held.
    object loop() const { return weak_target(loop_); }

    /// Counters for tests and benchmarks: jobs pushed and drains run.
    std::uint64_t pushes() const noexcept { return pushes_.load(std::memory_order_relaxed); }
    std::uint64_t drains() const noexcept { return drains_.load(std::memory_order_relaxed); }

    /// Forgets every Python reference without releasing it: for an interpreter that is gone.
    void forget_python() noexcept {
        (void)loop_.release();
        (void)drain_.release();
        watches_ = nullptr; // their states belonged to that interpreter's tasks
    }

private:
    void wake() noexcept {
        // NOTE: counted while it may write, so that a fall back (which switches the mode, then
        // waits for the count to be 0) never closes the file descriptor under a write, whose
        // number might already name another file. seq_cst: this increment and the mode's store
        // are ordered, so that either the write is waited for or this wake sees the new mode.
        signalling_.fetch_add(1, std::memory_order_seq_cst);
        if (wake_.load(std::memory_order_seq_cst) == loop_wake::reader) {
            fd_.signal();
            signalling_.fetch_sub(1, std::memory_order_release);
            return;
        }
        signalling_.fetch_sub(1, std::memory_order_relaxed);
        if (!interpreter_alive())
            return;
        try {
            gil_acquire gil;
            if (!drain_)
                return; // not attached yet: attach runs a drain
            object loop = weak_target(loop_);
            if (!loop)
                return;
            try {
                call_soon_threadsafe(loop, drain_);
            } catch (const python_error& e) {
                // A closed loop raises RuntimeError: its jobs are abandoned when it goes away.
                // Anything else is reported: the loop was not woken.
                if (!e.matches(handle(PyExc_RuntimeError))) {
                    e.restore();
                    PyErr_WriteUnraisable(loop.ptr());
                }
            }
        } catch (...) {
            detail::caught(); // gil_acquire refused: the interpreter is finalizing
        }
    }

    void abandon_all() noexcept {
        jobs_.consume([](loop_job* job) { job->abandon(); });
    }

    /// The loop running in this thread, or an empty object (asyncio's _get_running_loop).
    static object running_loop_of_this_thread();

    /// loop.add_reader(fd, drain); false when the loop has none (NotImplementedError: asyncio's
    /// AbstractEventLoop.add_reader, which Windows' ProactorEventLoop keeps). Other errors
    /// propagate. GIL held, on the loop's thread or while the loop runs nowhere.
    bool add_reader(handle loop, handle drain) {
        try {
            call_method(loop, "add_reader", fd_.read_fd(), drain);
            return true;
        } catch (const python_error& e) {
            if (!e.matches(handle(PyExc_NotImplementedError)))
                throw;
            return false;
        }
    }

    /// Reader mode becomes call_soon_threadsafe mode for good, for a loop without add_reader.
    /// GIL held, where add_reader was called.
    void fall_back_to_call_soon_threadsafe(handle loop, object drain) {
        drain_ = std::move(drain); // NOTE: before the mode: a wake that sees the mode needs it
        wake_.store(loop_wake::call_soon_threadsafe, std::memory_order_seq_cst);
        // NOTE: a wake that read the old mode may still write to the file descriptor: wait for
        // it (it takes no lock and no GIL: this is short) before closing.
        while (signalling_.load(std::memory_order_seq_cst) != 0)
            std::this_thread::yield();
        fd_.close();
        watch_close_with_a_timer(shared_from_this(), loop);
        // NOTE: the wakes written to the file descriptor woke nothing (no reader watches it):
        // run one drain for the jobs pushed until now; the pushes from now on wake the loop
        // themselves (or ride along with a wake that does).
        if (pushes_.load(std::memory_order_relaxed) != 0)
            call_soon_threadsafe(loop, drain_);
    }

    intrusive_stack<loop_job, &loop_job::next> jobs_;
    std::atomic<bool> closed_{false};
    std::atomic<std::uint64_t> pushes_{0};
    std::atomic<std::uint64_t> drains_{0};
    std::atomic<loop_wake> wake_{loop_wake::reader};
    std::atomic<unsigned> signalling_{0}; // wakes that may be writing to fd_
    wake_fd fd_;                          // reader mode only
    object loop_;                         // a weak reference
    object drain_; // call_soon_threadsafe mode only, once attached (GIL held); holds only a
                   // weak_ptr to this bridge
    loop_watch* watches_ = nullptr; // loop thread, GIL held
};

/// Process-wide settings and the registry of bridges (one per live loop).
class bridge_registry {
public:
    static bridge_registry& instance() {
        static bridge_registry r;
        return r;
    }

    loop_wake default_wake() const noexcept { return wake_.load(std::memory_order_relaxed); }
    void set_default_wake(loop_wake w) noexcept { wake_.store(w, std::memory_order_relaxed); }

    /// The bridge for `loop`, made on first use. Any thread, with the GIL; a loop that is not
    /// running on this thread gets the bridge's reader from its own thread (see attach).
    std::shared_ptr<loop_bridge> bridge_for(handle loop);

    /// Drops the bridge of a loop that died. With the GIL.
    void forget(PyObject* loop) noexcept {
        std::shared_ptr<loop_bridge> b;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            auto it = bridges_.find(loop);
            if (it == bridges_.end())
                return;
            b = std::move(it->second.bridge);
            bridges_.erase(it);
        }
        b->close();
    }

    std::size_t size() {
        std::lock_guard<std::mutex> lock(mutex_);
        return bridges_.size();
    }

private:
    struct entry {
        std::shared_ptr<loop_bridge> bridge;
        object watcher; // weakref(loop, on_loop_gone)
    };

    std::mutex mutex_;
    std::unordered_map<PyObject*, entry> bridges_;
    unsigned generation_ = 0;
    // NOTE: reader where there is no wake file descriptor too: the bridge then uses
    // call_soon_threadsafe (see loop_bridge's constructor)
    std::atomic<loop_wake> wake_{loop_wake::reader};
};

namespace bridge_callbacks {
/// The weak reference to a bridge that a capsule of bridge_capsule holds (null for another
/// object).
inline std::weak_ptr<loop_bridge>* weak_bridge_of(PyObject* capsule) noexcept {
    return static_cast<std::weak_ptr<loop_bridge>*>(
        PyCapsule_GetPointer(capsule, "pyasio.loop_bridge"));
}

/// The bridge a capsule of bridge_capsule names, or null once it is gone.
inline std::shared_ptr<loop_bridge> bridge_of(PyObject* capsule) noexcept {
    std::weak_ptr<loop_bridge>* weak = weak_bridge_of(capsule);
    return weak != nullptr ? weak->lock() : nullptr;
}

inline PyObject* drain(PyObject* self, PyObject*) {
    if (std::shared_ptr<loop_bridge> bridge = bridge_of(self))
        bridge->drain();
    Py_RETURN_NONE;
}
inline PyObject* loop_gone(PyObject* self, PyObject*) noexcept {
    // NOTE: self is the loop's address as an int: the loop itself is being destroyed.
    bridge_registry::instance().forget(static_cast<PyObject*>(PyLong_AsVoidPtr(self)));
    Py_RETURN_NONE;
}
inline PyObject* attach(PyObject* drain_callback, PyObject*) noexcept {
    // NOTE: self is the drain callback; its self, the capsule, names the bridge.
    if (std::shared_ptr<loop_bridge> bridge = bridge_of(PyCFunction_GetSelf(drain_callback)))
        bridge->attach_here(handle(drain_callback));
    Py_RETURN_NONE;
}
inline PyMethodDef drain_def = {"pyasio_drain", drain, METH_NOARGS,
                                "Runs the C++ completions waiting for this loop."};
inline PyMethodDef attach_def = {"pyasio_attach", attach, METH_NOARGS,
                                 "Makes the loop watch pyasio's wake-up file descriptor."};
inline PyMethodDef loop_gone_def = {"pyasio_loop_gone", loop_gone, METH_O, nullptr};

/// The close timer's capsule died: the loop closed, unless it is open still (the timer was
/// cancelled, by code that cancels every timer of the loop): then a new timer is armed.
inline void close_timer_gone(const std::shared_ptr<loop_bridge>& bridge) noexcept;

/// The drain callback's capsule died: the loop closed (or was collected).
inline void drain_gone(const std::shared_ptr<loop_bridge>& bridge) noexcept {
    bridge->loop_closed();
}

/// A capsule's destructor: tells `Gone` about the bridge, if it is still there.
template <void (*Gone)(const std::shared_ptr<loop_bridge>&) noexcept>
void capsule_gone(PyObject* capsule) {
    std::unique_ptr<std::weak_ptr<loop_bridge>> weak(weak_bridge_of(capsule));
    if (std::shared_ptr<loop_bridge> bridge = weak ? weak->lock() : nullptr)
        Gone(bridge);
}

/// A capsule that names `bridge` weakly; its death tells the bridge that the loop closed (for
/// the close timer's, see close_timer_gone).
inline object bridge_capsule(const std::shared_ptr<loop_bridge>& bridge, bool close_timer = false) {
    auto* weak = new std::weak_ptr<loop_bridge>(bridge);
    object capsule = steal(
        PyCapsule_New(weak, "pyasio.loop_bridge",
                      close_timer ? capsule_gone<close_timer_gone> : capsule_gone<drain_gone>));
    if (!capsule) {
        delete weak;
        throw_error_already_set();
    }
    return capsule;
}

/// How often the close timer of a call_soon_threadsafe-mode bridge runs (it only re-arms).
inline constexpr double close_timer_seconds = 3600.0;

/// A new, empty contextvars.Context: the close timer runs in one, so that it keeps no caller's
/// context variables alive for the loop's lifetime.
inline object empty_context() {
    return call(getattr(import("contextvars"), "Context"));
}

inline PyObject* close_timer(PyObject* capsule, PyObject*);
inline PyMethodDef close_timer_def = {"pyasio_close_timer", close_timer, METH_NOARGS,
                                      "Tells pyasio when the loop closes (by being dropped)."};

/// The close timer: arms itself again (a new function around the same capsule) an hour on.
inline PyObject* close_timer(PyObject* capsule, PyObject*) {
    return entry_point([&] {
        if (std::shared_ptr<loop_bridge> bridge = bridge_of(capsule))
            if (object loop = bridge->loop())
                call_method(loop, "call_later", close_timer_seconds,
                            checked(PyCFunction_New(&close_timer_def, capsule)),
                            kwarg("context", empty_context()));
    });
}
} // namespace bridge_callbacks

// NOTE: a loop drops its pending callbacks and timers when it closes (BaseEventLoop.close clears
// _ready and _scheduled), as it drops its readers: a callback the loop alone holds, whose capsule
// tells the bridge when it dies, is heard in either wake mode. In call_soon_threadsafe mode it is
// a timer that re-arms itself every hour; its first run, scheduled from here, arms it on the
// loop's thread (call_later is not thread-safe). GIL held.
inline void watch_close_with_a_timer(const std::shared_ptr<loop_bridge>& bridge, handle loop) {
    object capsule = bridge_callbacks::bridge_capsule(bridge, true);
    call_soon_threadsafe(
        loop, checked(PyCFunction_New(&bridge_callbacks::close_timer_def, capsule.ptr())),
        kwarg("context", bridge_callbacks::empty_context()));
}

inline void
bridge_callbacks::close_timer_gone(const std::shared_ptr<loop_bridge>& bridge) noexcept {
    try {
        error_kept kept; // NOTE: a capsule may die while an exception propagates
        object loop = bridge->loop();
        if (loop && call_method(loop, "is_closed").ptr() == Py_False) {
            watch_close_with_a_timer(bridge, loop);
            return;
        }
    } catch (...) {
        translate_exception(detail::caught());
        PyErr_WriteUnraisable(nullptr);
    }
    bridge->loop_closed();
}

inline std::shared_ptr<loop_bridge> bridge_registry::bridge_for(handle loop) {
    PYASIO_DETAIL_ASSERT_GIL("pyasio: bridge_for called");
    auto find = [&]() -> std::shared_ptr<loop_bridge> {
        if (generation_ != interpreter_generation()) { // bridges of a finalized interpreter
            for (auto& [key, e] : bridges_) {
                e.bridge->forget_python();
                (void)e.watcher.release();
            }
            bridges_.clear();
            generation_ = interpreter_generation();
        }
        auto it = bridges_.find(loop.ptr());
        return it != bridges_.end() ? it->second.bridge : nullptr;
    };
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (std::shared_ptr<loop_bridge> b = find())
            return b;
    }
    // NOTE: Python runs below (weakref creation may collect garbage and fire weakref callbacks
    // that call forget; add_reader runs Python code, during which the GIL may pass to another
    // thread), so the mutex is held only to look up and to list. The bridge is listed before
    // it is attached, so that two threads naming one loop share one bridge; jobs pushed to it
    // before the attach wait for it (see attach).
    auto bridge = std::make_shared<loop_bridge>(loop, default_wake());
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (std::shared_ptr<loop_bridge> b = find())
            return b; // another thread listed one meanwhile; ours was never attached
        bridges_.insert_or_assign(loop.ptr(), entry{bridge, object()});
    }
    try {
        // NOTE: the capsule dies with the drain callback: in reader mode, when the loop drops
        // its readers (loop.close(), or the loop's collection), or the attach callback it has
        // not run yet.
        object capsule = bridge_callbacks::bridge_capsule(bridge);
        object drain = checked(PyCFunction_New(&bridge_callbacks::drain_def, capsule.ptr()));
        object attach_later = checked(PyCFunction_New(&bridge_callbacks::attach_def, drain.ptr()));
        object key = checked(PyLong_FromVoidPtr(loop.ptr()));
        object on_gone = checked(PyCFunction_New(&bridge_callbacks::loop_gone_def, key.ptr()));
        object watcher = checked(PyWeakref_NewRef(loop.ptr(), on_gone.ptr()));
        bridge->attach(loop, std::move(drain), attach_later);
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = bridges_.find(loop.ptr());
        if (it != bridges_.end() && it->second.bridge == bridge)
            it->second.watcher = std::move(watcher);
    } catch (...) {
        detail::caught();
        {
            std::lock_guard<std::mutex> lock(mutex_);
            auto it = bridges_.find(loop.ptr());
            if (it != bridges_.end() && it->second.bridge == bridge)
                bridges_.erase(it);
        }
        bridge->close(); // its jobs, if any thread pushed one, end with event_loop_closed
        throw;
    }
    return bridge;
}

} // namespace detail

/// Chooses how C++ threads wake event loops whose bridge is created from now on (loops already
/// bridged keep theirs). Default: loop_wake::reader. On Windows (no file descriptor to watch)
/// reader means call_soon_threadsafe, and so it does for a loop whose add_reader raises
/// NotImplementedError.
inline void set_loop_wake(loop_wake w) noexcept {
    detail::bridge_registry::instance().set_default_wake(w);
}

/// The running event loop of this thread, or an empty object when none runs: the asyncio loop
/// (asyncio's own, or uvloop), or, in a trio run, the pyasio.TrioLoop that stands for it.
/// Needs the GIL.
inline object running_loop() {
    PYASIO_DETAIL_ASSERT_GIL("pyasio::running_loop called");
    return detail::running_loop_of_any_family();
}

namespace detail {
inline object loop_bridge::running_loop_of_this_thread() {
    return running_loop();
}

/// True on the thread running `bridge`'s loop, with the GIL, while it runs.
inline bool loop_runs_here(const loop_bridge& bridge) {
    if (!gil::held())
        return false;
    return runs_here(bridge.loop(), running_loop());
}
} // namespace detail

/// The running event loop of this thread; RuntimeError naming the fix when none runs.
inline object get_running_loop() {
    object loop = running_loop();
    if (!loop)
        detail::throw_error(PyExc_RuntimeError,
                            "pyasio: no running event loop in this thread (call this from a "
                            "coroutine or callback running on an asyncio loop, or in a trio "
                            "run)");
    return loop;
}

namespace detail {

#if PYASIO_DETAIL_LIMITED
/// The C++ side of in_context in the limited API, which has no call to enter a context: the
/// body runs inside context.run(trampoline). One per in_context call, on its thread's stack.
struct context_call {
    void (*invoke)(void*);
    void* body;
    std::exception_ptr error; // what the body threw
    bool ran = false;
};

/// The context_call that the next trampoline call on this thread runs.
inline thread_local context_call* pending_context_call = nullptr;

/// What context.run calls: the pending context_call's body. A C++ exception (a python_error
/// too) is kept for in_context to throw again; Python sees a placeholder it never reports.
inline PyObject* context_trampoline(PyObject*, PyObject*) {
    context_call* c = std::exchange(pending_context_call, nullptr);
    c->ran = true;
    try {
        c->invoke(c->body);
    } catch (...) {
        c->error = detail::caught();
        PyErr_SetString(PyExc_RuntimeError, "pyasio: the body of in_context threw");
        return nullptr;
    }
    // NOTE: a body may return with a Python error set (a failed call it leaves to the caller,
    // as with the full API's context_scope): it goes up as that error, not as a result
    // returned with an exception set (SystemError)
    if (PyErr_Occurred() != nullptr)
        return nullptr;
    Py_RETURN_NONE;
}

/// The contextvars calls of the limited API (Python calls: contextvars has no C API there),
/// made once per interpreter.
struct context_names {
    object copy_context = getattr(import("contextvars"), "copy_context");
    object context_type = getattr(import("contextvars"), "Context");
    object run = interned("run");
    object copy = interned("copy");
    object trampoline = make_trampoline();

private:
    static object make_trampoline() {
        static PyMethodDef def = {"_in_context", context_trampoline, METH_NOARGS,
                                  "Runs pyasio's C++ code in a contextvars.Context."};
        return checked(PyCFunction_New(&def, nullptr));
    }
};
#endif

/// A copy of the current contextvars context (contextvars.copy_context()). GIL held.
inline object copy_current_context() {
#if PYASIO_DETAIL_LIMITED
    return call(per_interpreter<context_names>().copy_context);
#else
    return checked(PyContext_CopyCurrent());
#endif
}

/// True for a contextvars.Context. GIL held.
inline bool is_context(handle o) {
#if PYASIO_DETAIL_LIMITED
    return Py_TYPE(o.ptr()) ==
           reinterpret_cast<PyTypeObject*>(per_interpreter<context_names>().context_type.ptr());
#else
    return PyContext_CheckExact(o.ptr());
#endif
}

#if !PYASIO_DETAIL_LIMITED
/// Makes `context` the current contextvars context for its lifetime (GIL held); see in_context.
class context_scope {
public:
    explicit context_scope(handle context) {
        if (PyThreadState_Get()->context == context.ptr())
            return;
        if (PyContext_Enter(context.ptr()) < 0) { // RuntimeError: already entered
            PyErr_Clear();
            copy_ = checked(PyContext_Copy(context.ptr()));
            if (PyContext_Enter(copy_.ptr()) < 0)
                throw_error_already_set();
        }
        entered_ = copy_ ? copy_.ptr() : context.ptr();
    }
    ~context_scope() {
        // NOTE: not after CPython ended this thread (a forced unwind; it lost the GIL first)
        if (entered_ != nullptr && gil_held() && PyContext_Exit(entered_) < 0)
            PyErr_WriteUnraisable(nullptr); // only if the stack of contexts was corrupted
    }
    context_scope(const context_scope&) = delete;
    context_scope& operator=(const context_scope&) = delete;

private:
    object copy_;
    PyObject* entered_ = nullptr;
};
#endif

/// Runs body() with `context` as the current contextvars context (GIL held); what body throws
/// propagates. When the context is entered further up the stack, body runs in a copy of it (the
/// same variables; a task made inside copies the current context anyway). When it is current
/// already (e.g. in a done callback made with it), the full API runs body in it as it is; the
/// limited API, which cannot tell, runs it in a copy (a variable body sets is then not seen
/// after it).
template <class F> void in_context(handle context, F&& body) {
#if PYASIO_DETAIL_LIMITED
    const context_names& names = per_interpreter<context_names>();
    context_call c{
        [](void* b) { std::forward<F> (*static_cast<std::remove_reference_t<F>*>(b))(); },
        static_cast<void*>(&body), nullptr, false};
    object entered = borrow(context);
    for (int attempt = 0; attempt < 2; ++attempt) {
        context_call* outer = std::exchange(pending_context_call, &c);
        PyObject* args[] = {entered.ptr(), names.trampoline.ptr()};
        object result = steal(PyObject_VectorcallMethod(names.run.ptr(), args, 2, nullptr));
        pending_context_call = outer;
        if (result)
            return;
        if (c.ran) {
            if (c.error) {
                PyErr_Clear(); // the placeholder
                std::rethrow_exception(c.error);
            }
            throw_error_already_set();
        }
        // NOTE: the body never ran: the context is entered already (RuntimeError)
        // (exactly RuntimeError: a RecursionError, its subclass, is an error)
        if (attempt > 0 || PyErr_Occurred() != PyExc_RuntimeError)
            throw_error_already_set();
        PyErr_Clear();
        entered = call_method(context, names.copy);
    }
#else
    context_scope scope(context);
    std::forward<F>(body)();
#endif
}

} // namespace detail

/// The event loop and the contextvars context that Python code started for C++ work runs in
/// (pyo3-asyncio's TaskLocals). future_into_py captures them at the call; inside that call's C++
/// work, current_task_locals() returns them.
///
/// Copies share one immutable value and need no GIL, so C++ work may hold and pass them on any
/// thread; loop() and context() are for use with the GIL held. The loop is held weakly (a loop
/// that is dropped while C++ work runs can still be collected; its work then ends without
/// reaching it), the context strongly. Converted to Python, a task_locals is the tuple
/// (loop, context), with None for a loop that is gone.
class task_locals {
public:
    /// The loop running in this thread and a copy of the current context (what asyncio gives a
    /// new task). GIL held; RuntimeError when no loop runs in this thread.
    static task_locals capture() { return task_locals(get_running_loop()); }

    /// The locals of `loop` (pyo3-asyncio's TaskLocals::new(event_loop)) with a copy of the
    /// context current on this thread now, as asyncio's call_soon_threadsafe copies the
    /// caller's context. Any thread, with the GIL: the loop may run in another thread, run
    /// here, or not run yet. type_error for an object that is not an asyncio event loop;
    /// event_loop_closed for a closed loop.
    static task_locals of(handle loop) {
        check_loop(loop);
        return task_locals(loop, detail::copy_current_context());
    }

    /// The locals of `loop` with `context` (a contextvars.Context, used as it is, not copied):
    /// Python code that into_future runs on the loop sees its variables. Any thread, with the
    /// GIL. type_error for a loop or context of another type; event_loop_closed for a closed
    /// loop.
    static task_locals of(handle loop, handle context) {
        if (!context || !detail::is_context(context))
            throw type_error(std::string("pyasio::task_locals::of: expected a contextvars.Context, "
                                         "got ") +
                             (context ? context.type_name() : "no object") +
                             " (make one with contextvars.copy_context(), or leave it out for a "
                             "copy of the current context)");
        check_loop(loop);
        return task_locals(loop, borrow(context));
    }

    /// The event loop, or an empty object once it is gone. GIL held.
    object loop() const { return d_->bridge->loop(); }
    /// The contextvars.Context.
    handle context() const noexcept { return d_->context; }

    /// The loop's bridge (pyasio's queue into the loop thread).
    const std::shared_ptr<detail::loop_bridge>& bridge() const noexcept { return d_->bridge; }

    /// True for copies of one capture; two captures are never equal, even of the same loop.
    friend bool operator==(const task_locals& a, const task_locals& b) noexcept {
        return a.d_ == b.d_;
    }

private:
    friend struct detail::task_locals_access;

    /// The loop running in this thread, with a copy of the current context. GIL held.
    explicit task_locals(handle running) : task_locals(running, detail::copy_current_context()) {}

    /// Any loop, any context. GIL held.
    task_locals(handle loop, object context)
        : d_(std::make_shared<const data>(
              data{detail::bridge_registry::instance().bridge_for(loop), std::move(context)})) {}

    /// `loop` is an open event loop. GIL held.
    static void check_loop(handle loop) {
        if (!loop || !detail::is_event_loop(loop))
            throw type_error(std::string("pyasio::task_locals::of: expected an event loop, "
                                         "got ") +
                             (loop ? loop.type_name() : "no object") +
                             " (an asyncio.AbstractEventLoop: asyncio.new_event_loop(), or "
                             "asyncio.get_running_loop() on the loop's thread; in a trio run, "
                             "pyasio::running_loop() on its thread)");
        if (call_method(loop, "is_closed").ptr() == Py_True)
            throw event_loop_closed("pyasio::task_locals::of: the event loop is closed, so "
                                    "nothing can run on it; name a loop that is open (one that "
                                    "runs, or a new one)");
    }

    struct data {
        std::shared_ptr<detail::loop_bridge> bridge; // holds the loop weakly
        object context;
    };
    std::shared_ptr<const data> d_;
};

namespace detail {
struct task_locals_access {
    static task_locals capture(handle running_loop) { return task_locals(running_loop); }
};

/// The task locals of the C++ work running on this thread (set by the work's executor).
inline thread_local const task_locals* current_locals = nullptr;

/// Makes `locals` current on this thread for its lifetime.
class task_locals_scope {
public:
    explicit task_locals_scope(const task_locals* locals) noexcept
        : previous_(std::exchange(current_locals, locals)) {}
    ~task_locals_scope() { current_locals = previous_; }
    task_locals_scope(const task_locals_scope&) = delete;
    task_locals_scope& operator=(const task_locals_scope&) = delete;

private:
    const task_locals* previous_;
};
} // namespace detail

namespace detail {
/// The default task locals (set by pyasio::run for the loop it runs).
struct default_locals_slot {
    std::mutex mutex;
    std::optional<task_locals> locals;
    static default_locals_slot& instance() {
        static default_locals_slot* s = make(); // NOTE: never destroyed
        return *s;
    }

private:
    static inline std::atomic<default_locals_slot*> made{nullptr};
    static default_locals_slot* make() {
        auto* s = new default_locals_slot;
        made.store(s, std::memory_order_release);
#if PYASIO_DETAIL_HAS_FORK
        // In the child of a fork, a thread that held the mutex at the fork does not exist.
        // NOTE: not instance(): a fork while it is being made would leave its guard held.
        ::pthread_atfork(nullptr, nullptr, [] {
            if (default_locals_slot* p = made.load(std::memory_order_acquire))
                ::new (&p->mutex) std::mutex;
        });
#endif
        return s;
    }
};
} // namespace detail

/// Sets the task locals that into_future uses when the C++ code calling it has none of its own
/// (see current_task_locals()): pyasio::run sets them to its loop for the whole run. Pass
/// std::nullopt to clear them. Any thread; no GIL needed.
inline void set_default_task_locals(std::optional<task_locals> locals) {
    auto& slot = detail::default_locals_slot::instance();
    std::lock_guard<std::mutex> lock(slot.mutex);
    slot.locals = std::move(locals);
}

/// The task locals set with set_default_task_locals(), if any.
inline std::optional<task_locals> default_task_locals() {
    auto& slot = detail::default_locals_slot::instance();
    std::lock_guard<std::mutex> lock(slot.mutex);
    return slot.locals;
}

/// The task locals of the C++ code running on this thread: inside work started by
/// future_into_py (any of its handlers, on any runtime thread), the loop and context captured at
/// the future_into_py call; inside a handler of a loop_executor, its loop's; inside a
/// task_locals_scope, that scope's; elsewhere, nothing (into_future then falls back to
/// default_task_locals()). No GIL needed.
inline std::optional<task_locals> current_task_locals() {
    if (detail::current_locals == nullptr)
        return std::nullopt;
    return *detail::current_locals;
}

/// The event loop of the C++ code running on this thread (pyo3-asyncio's get_current_loop):
/// the loop of current_task_locals() if any, else the loop running in this thread. GIL held.
/// Raises RuntimeError (a python_error) when there is neither, and event_loop_closed when the
/// current task locals' loop is gone. default_task_locals() is not consulted: use it yourself
/// as the next fallback, as into_future does.
inline object get_current_loop() {
    if (detail::current_locals != nullptr) {
        if (object loop = detail::current_locals->loop())
            return loop;
        throw event_loop_closed("pyasio::get_current_loop: the event loop of the current task "
                                "locals is gone (closed and collected)");
    }
    if (object loop = running_loop())
        return loop;
    detail::throw_error(PyExc_RuntimeError,
                        "pyasio::get_current_loop: no task locals are current and no event loop "
                        "runs in this thread; call it from C++ work started by "
                        "pyasio::future_into_py, in a loop_executor handler or a "
                        "pyasio::task_locals_scope, or on the loop's thread while it runs");
}

/// Makes `locals` the current task locals of this thread for its lifetime, for C++ code that
/// must name its loop: into_future called inside the scope runs there. No GIL needed.
class task_locals_scope {
public:
    /// Makes `locals` current; the destructor restores the ones current before. Scopes nest;
    /// destroy it on the thread that made it. For synchronous code: do not keep one across a
    /// co_await (the coroutine may resume on another thread, and other handlers on this one would
    /// see these locals meanwhile); in a coroutine, pass the locals to into_future.
    explicit task_locals_scope(task_locals locals) noexcept
        : locals_(std::move(locals)), scope_(&locals_) {}
    task_locals_scope(const task_locals_scope&) = delete;
    task_locals_scope& operator=(const task_locals_scope&) = delete;

private:
    task_locals locals_;
    detail::task_locals_scope scope_;
};

/// task_locals -> the tuple (loop, context); there is no conversion from Python.
template <> struct converter<task_locals> {
    /// (loop, context), with None for a loop that is gone. Needs the GIL.
    static object to_python(const task_locals& locals) {
        object loop = locals.loop();
        return pyasio::to_python(
            std::tuple<handle, handle>(loop ? handle(loop) : handle(Py_None), locals.context()));
    }
};

PYASIO_NAMESPACE_END

#endif // PYASIO_LOOP_HPP
