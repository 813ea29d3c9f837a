// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_RUN_HPP
#define PYASIO_RUN_HPP

/// @file
/// Embedding: run (the main of a program that embeds Python), run_until_complete, and
/// block_on for synchronous code.

#include <pyasio/config.hpp>

#include <pyasio/error.hpp>
#include <pyasio/future_into_py.hpp>
#include <pyasio/gil.hpp>
#include <pyasio/into_future.hpp>
#include <pyasio/loop.hpp>
#include <pyasio/object.hpp>
#include <pyasio/runtime.hpp>

#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <asio/use_future.hpp>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

PYASIO_NAMESPACE_BEGIN

/// How pyasio::run sets up Python and its event loop.
struct run_options {
    /// The program's arguments, Python's sys.argv (give main's argc/argv to run's other
    /// overload to fill it).
    std::vector<std::string> argv;
    /// Run on uvloop's event loop (pyasio::run throws a clear error if uvloop is not
    /// installed; Debian: python3-uvloop).
    bool uvloop = false;
    /// Makes the event loop instead (called with the GIL once the interpreter runs).
    std::function<object()> loop_factory;
    /// Run trio's event loop (trio.run) instead of an asyncio loop: C++ work and Python code
    /// then await each other under trio (docs/trio.md). pyasio::run throws a clear error if
    /// trio is not installed (Debian: python3-trio), or if uvloop or loop_factory is set too.
    bool trio = false;
    /// Threads of the default runtime (0: runtime::default_thread_count()).
    std::size_t runtime_threads = 0;
    /// Built-in modules of the program, importable from Python (PyImport_AppendInittab; only
    /// when pyasio::run starts the interpreter): {"name", PyInit_function}.
    std::vector<std::pair<std::string, PyObject* (*)()>> modules;
    /// Ctrl-C cancels the main coroutine; run then throws pyasio::interrupted. When false (and
    /// run starts the interpreter), Python installs no signal handlers: Ctrl-C ends the program.
    bool handle_sigint = true;
    /// How long shutdown waits for cancelled C++ work to finish.
    std::chrono::milliseconds shutdown_grace{5000};
    /// Finalize the interpreter that run started, at its end. Set it to false if the program
    /// will call run again: a later run then uses the same interpreter. (CPython cannot
    /// reliably start asyncio in a second interpreter after finalizing the first: 3.11's
    /// _asyncio keeps objects of the first, and 3.13 crashes.)
    bool finalize = true;
};

namespace detail {

/// The thread runs a Python event loop's run_until_complete/run_forever: blocking here would
/// stop that loop.
inline void check_not_on_a_running_loop(const char* what) {
    if (gil_held() && running_loop())
        throw std::logic_error(std::string(what) +
                               ": called on a thread whose event loop is running; waiting here "
                               "would block that loop for ever (deadlock). Await the work "
                               "instead (pyasio::future_into_py)");
}

template <class F> auto as_main(F&& f) {
    using D = std::decay_t<F>;
    if constexpr (std::is_invocable_v<D&>)
        return D(std::forward<F>(f));
    else
        return [a = std::make_shared<D>(std::forward<F>(f))]() { return std::move(*a); };
}

/// A C++ coroutine's result or exception, kept in C++.
template <class T> struct outcome {
    std::optional<std::conditional_t<std::is_void_v<T>, char, T>> value;
    std::exception_ptr error;

    T take() {
        if (error)
            std::rethrow_exception(error);
        if constexpr (!std::is_void_v<T>)
            return std::move(*value);
    }
};

/// What Python awaits for run's main (a callable returning asio::awaitable<T>): its result or
/// exception is kept in `out`, in C++ (never converted to Python). GIL held.
template <class Make, class T> object main_awaitable(Make make, std::shared_ptr<outcome<T>> out) {
    return future_into_py([make = std::move(make), out]() mutable -> asio::awaitable<void> {
        try {
            if constexpr (std::is_void_v<T>) {
                co_await make();
                out->value.emplace();
            } else {
                out->value.emplace(co_await make());
            }
        } catch (...) {
            out->error = detail::caught();
        }
    });
}

template <class Make>
using main_result_t = typename awaitable_value<std::invoke_result_t<Make&>>::type;

/// run_until_complete needs an asyncio loop: a trio run has no loop to run until a result.
inline void refuse_a_trio_loop(handle loop) {
    if (is_trio_loop(loop))
        throw std::logic_error("pyasio::run_until_complete: given a trio run's loop; trio has no "
                               "loop to run until a result: run the work with trio.run, or "
                               "pyasio::run with run_options::trio");
}

/// Runs the asyncio loop `loop`, which does not run yet, until `awaitable` is done; its result.
/// With `sigint`, Ctrl-C cancels it: interrupted. GIL held.
inline object run_awaitable(handle loop, handle awaitable, bool sigint) {
    refuse_a_trio_loop(loop);
    object task = start_task(loop, awaitable);
    if (!task)
        throw_error_already_set();
    bool handler = false;
    if (sigint) {
        try { // NOTE: only on the main thread, and only loops that support it
            call_method(loop, "add_signal_handler", int(SIGINT), getattr(task, "cancel"));
            handler = true;
        } catch (const python_error&) {
        }
    }
    const char* stopped = nullptr;
    object result;
    try {
        result = call_method(loop, "run_until_complete", task);
    } catch (const python_error& e) {
        // the task cancelled by our SIGINT handler, or KeyboardInterrupt from Python code
        // (Python's own SIGINT handler, or raised), which asyncio lets out of the loop
        if (handler && call_method(task, "cancelled").ptr() == Py_True)
            stopped = "pyasio: interrupted by Ctrl-C (SIGINT); the main coroutine was cancelled";
        else if (e.matches(handle(PyExc_KeyboardInterrupt)))
            stopped = "pyasio: interrupted: KeyboardInterrupt was raised in Python code the main "
                      "coroutine awaited (Ctrl-C, or raised by the code), which stops the event "
                      "loop; the main coroutine was cancelled";
        else
            throw;
    }
    if (handler)
        call_method(loop, "remove_signal_handler", int(SIGINT));
    if (stopped != nullptr)
        throw interrupted(stopped);
    return result;
}

/// Runs C++ work (a callable returning asio::awaitable<T>) on the asyncio loop `loop`, which
/// does not run yet, until it completes: its result or exception, kept in C++. GIL held.
template <class Make> auto run_cpp(handle loop, Make make, bool sigint) {
    auto out = std::make_shared<outcome<main_result_t<Make>>>();
    run_awaitable(loop, main_awaitable(std::move(make), out), sigint);
    return out->take();
}

/// asyncio.run's ending for `loop`: cancels the tasks left and waits for them, finishes async
/// generators and the default executor, then closes the loop. GIL held.
inline void finish_loop(handle loop) {
    object asyncio = import("asyncio");
    object tasks = steal(PySequence_Tuple(call(getattr(asyncio, "all_tasks"), loop).ptr()));
    if (!tasks)
        throw_error_already_set();
    if (tuple_size(tasks.ptr()) > 0) {
        for (Py_ssize_t i = 0; i < tuple_size(tasks.ptr()); ++i)
            call_method(handle(tuple_item(tasks.ptr(), i)), "cancel");
        object keywords = checked(PyDict_New());
        if (PyDict_SetItemString(keywords.ptr(), "return_exceptions", Py_True) < 0)
            throw_error_already_set();
        object gather =
            checked(PyObject_Call(getattr(asyncio, "gather").ptr(), tasks.ptr(), keywords.ptr()));
        call_method(loop, "run_until_complete", gather);
    }
    call_method(loop, "run_until_complete", call_method(loop, "shutdown_asyncgens"));
#if PY_VERSION_HEX >= 0x03090000
    call_method(loop, "run_until_complete", call_method(loop, "shutdown_default_executor"));
#endif
    call(getattr(asyncio, "set_event_loop"), handle(Py_None));
    call_method(loop, "close");
}

/// Makes a python_error in `e` render its message now (GIL held), before the interpreter goes.
inline void render_message(const std::exception_ptr& e) noexcept {
    if (!e)
        return;
    try {
        std::rethrow_exception(e);
    } catch (const python_error& err) {
        (void)err.what();
    } catch (...) {
        detail::caught();
    }
}

/// The event loop `options` ask for. GIL held.
inline object make_loop(const run_options& options) {
    if (options.loop_factory)
        return options.loop_factory();
    if (options.uvloop) {
        object uvloop = steal(PyImport_ImportModule("uvloop"));
        if (!uvloop) {
            PyErr_Clear();
            throw std::runtime_error("pyasio::run: run_options::uvloop is set, but uvloop is not "
                                     "installed for this Python (Debian: apt-get install "
                                     "python3-uvloop)");
        }
        return call(getattr(uvloop, "new_event_loop"));
    }
    return call(getattr(import("asyncio"), "new_event_loop"));
}

/// Starts the interpreter for pyasio::run (none runs).
inline void start_interpreter(const run_options& options) {
    // NOTE: PyImport_AppendInittab keeps the name pointer: the strings live for the process.
    static std::vector<std::unique_ptr<std::string>> names;
    for (const auto& [name, init] : options.modules) {
        names.push_back(std::make_unique<std::string>(name));
        if (PyImport_AppendInittab(names.back()->c_str(), init) != 0)
            throw std::runtime_error("pyasio::run: could not add the built-in module " + name);
    }
#if PYASIO_DETAIL_LIMITED
    // NOTE: the limited API has no PyConfig: Py_InitializeEx starts Python in its compatible
    // configuration (no C locale coercion, no UTF-8 mode under LANG=C) and ends the process
    // (Py_FatalError) if it cannot; sys.argv is set after the start (Python's own options are
    // never parsed from it)
    Py_InitializeEx(options.handle_sigint ? 1 : 0);
    if (!options.argv.empty()) {
        object argv = checked(PyList_New(0));
        for (const std::string& a : options.argv) {
            object arg = checked(PyUnicode_DecodeLocale(a.c_str(), "surrogateescape"));
            if (PyList_Append(argv.ptr(), arg.ptr()) < 0)
                throw_error_already_set();
        }
        if (PySys_SetObject("argv", argv.ptr()) < 0)
            throw_error_already_set();
    }
#else
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.parse_argv = 0; // argv is the program's: sys.argv as given, not Python's options
    config.install_signal_handlers = options.handle_sigint ? 1 : 0;
    std::vector<char*> argv;
    for (const std::string& a : options.argv)
        argv.push_back(const_cast<char*>(a.c_str()));
    PyStatus status = argv.empty()
                          ? PyStatus_Ok()
                          : PyConfig_SetBytesArgv(&config, Py_ssize_t(argv.size()), argv.data());
    if (!PyStatus_Exception(status))
        status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status))
        throw std::runtime_error(std::string("pyasio::run: Python did not start: ") +
                                 (status.err_msg != nullptr
                                      ? status.err_msg
                                      : "exit status " + std::to_string(status.exitcode)));
#endif
}

/// Refuses to start an interpreter after one was finalized in this process.
// NOTE: CPython cannot reliably start asyncio again in a new interpreter: 3.11's _asyncio keeps
// objects of the first one (the next run failed with "NameError: name 'len' is not defined"),
// and 3.13 crashes in a plain asyncio.run after a re-initialization.
inline void refuse_a_second_interpreter() {
    if (interpreter_generation() != 0)
        throw std::logic_error(
            "pyasio::run: the Python interpreter was finalized earlier in this process (by an "
            "earlier pyasio::run, or by the program), and CPython cannot reliably start asyncio "
            "in a second one; give the earlier pyasio::run options.finalize = false to keep the "
            "interpreter for the next run (the last run may finalize it)");
}

/// Refuses a pyasio::run on a runtime thread (as block_on refuses): its loop would hold the
/// thread.
inline void refuse_run_on_a_runtime_thread() {
    if (on_runtime_thread())
        throw std::logic_error(
            "pyasio::run: called on a runtime thread; its loop would hold that thread until "
            "run returns, which can starve the runtime of the thread its work needs (deadlock). "
            "co_await the work instead, or call pyasio::run from a thread of your own");
}

/// Refuses a pyasio::run on the thread of a running event loop, as asyncio.run refuses.
// NOTE: a loop runs on this thread only inside its callbacks, which hold the GIL.
inline void refuse_run_on_a_running_loop() {
    if (!gil_held())
        return;
    if (running_loop())
        throw std::logic_error(
            "pyasio::run: called on a thread whose event loop is running (as asyncio.run() "
            "cannot be called from a running event loop): it would run a second loop on this "
            "thread and block the running one. co_await the work instead (Python awaits C++ "
            "work through pyasio::future_into_py, C++ awaits Python through "
            "pyasio::into_future), or run a new loop on a thread of its own (pyasio::run or "
            "pyasio::run_until_complete there)");
}

/// The pyasio::run calls in progress in the process, on any threads.
///
/// The run that starts while no other runs is the outermost one: it starts the interpreter (or
/// takes over one that an earlier run started and kept), sets the default task locals, and at
/// its end shuts down the runtime if it started it and finalizes the interpreter that a run
/// started. A run that starts while it runs (on another thread) is nested: it runs a loop of its
/// own and uses the interpreter and the runtime as they are, tearing down neither. The outermost
/// run waits for its nested runs to end before it tears anything down; a run that starts during
/// that teardown waits for the teardown to end (and is then the outermost run itself).
class run_registry {
public:
    static run_registry& instance() {
        static run_registry* r = make(); // NOTE: never destroyed: a run may end at process exit
        return *r;
    }

    /// One run's registration, for its whole duration (destroyed on every path out of run).
    class entry {
    public:
        /// Registers a run; the outermost one starts the interpreter if none runs.
        explicit entry(const run_options& options) : runs_(instance()) {
            std::unique_lock<std::mutex> lock(runs_.mutex_);
            runs_.wait_while_tearing_down(lock);
            outermost_ = runs_.active_ == 0;
            if (outermost_) {
                // NOTE: under the mutex, so that a nested run always finds the interpreter
                // running; no other thread can hold the GIL of an interpreter not yet started.
                if (!Py_IsInitialized()) {
                    refuse_a_second_interpreter();
                    start_interpreter(options);
                    runs_.started_ = true;
                    runs_.generation_ = interpreter_generation();
                }
                owns_interpreter_ = runs_.started_ && runs_.generation_ == interpreter_generation();
            }
            ++runs_.active_;
        }

        ~entry() {
            std::lock_guard<std::mutex> lock(runs_.mutex_);
            --runs_.active_;
            if (outermost_)
                runs_.tearing_down_ = false;
            runs_.changed_.notify_all();
        }

        entry(const entry&) = delete;
        entry& operator=(const entry&) = delete;

        /// No other run was in progress when this one started.
        bool outermost() const noexcept { return outermost_; }

        /// The outermost run, at its end: waits until the runs nested in it have ended (with the
        /// GIL released, if held), then keeps new runs waiting until this entry is destroyed.
        void wait_for_nested() {
            std::optional<PyThreadState*> saved;
            if (gil_held())
                saved = PyEval_SaveThread();
            {
                std::unique_lock<std::mutex> lock(runs_.mutex_);
                runs_.changed_.wait(lock, [this] { return runs_.active_ == 1; });
                runs_.tearing_down_ = true;
            }
            if (saved)
                PyEval_RestoreThread(*saved);
        }

        /// Finalizes the interpreter if this run owns it (the outermost run, with an interpreter
        /// a run started). The GIL held by this thread, once, as Py_FinalizeEx needs.
        void finalize() {
            if (!owns_interpreter_)
                return;
            {
                std::lock_guard<std::mutex> lock(runs_.mutex_);
                runs_.started_ = false;
            }
            Py_FinalizeEx();
        }

    private:
        run_registry& runs_;
        bool outermost_ = false;
        bool owns_interpreter_ = false;
    };

private:
    static run_registry* make() {
        auto* r = new run_registry;
#if PYASIO_DETAIL_HAS_FORK
        // NOTE: the child of a fork has none of the parent's runs (only the forking thread).
        static run_registry* made = r;
        ::pthread_atfork(nullptr, nullptr, [] {
            ::new (&made->mutex_) std::mutex;
            ::new (&made->changed_) std::condition_variable;
            made->active_ = 0;
            made->tearing_down_ = false;
        });
#endif
        return r;
    }

    /// Waits (the GIL released, if held) while the outermost run tears down.
    void wait_while_tearing_down(std::unique_lock<std::mutex>& lock) {
        while (tearing_down_) {
            if (!gil_held()) {
                changed_.wait(lock, [this] { return !tearing_down_; });
                continue;
            }
            // NOTE: the teardown needs the GIL (shutdown_runtime, Py_FinalizeEx), and may free
            // this thread's thread state (finalization) or join this thread (a
            // threading.Thread, at exit): waiting here with a thread state would deadlock or
            // touch freed memory.
            throw std::logic_error(
                "pyasio::run: called from Python code while the outermost pyasio::run shuts "
                "down (its runtime, and perhaps the interpreter); start runs on threads that "
                "end before the outermost run's main returns");
        }
    }

    std::mutex mutex_;
    std::condition_variable changed_;
    std::size_t active_ = 0;
    bool tearing_down_ = false;
    bool started_ = false;    // a run started the interpreter (and no run finalized it yet)
    unsigned generation_ = 0; // the interpreter generation it started
};

} // namespace detail

namespace detail {

/// Calls the std::function<object(handle)> its capsule points to with the loop: how trio's run
/// starts run's main (the function lives in run_new_loop's frame while trio.run runs).
inline PyObject* call_run_start(PyObject* capsule, PyObject* loop) {
    return entry_point([&] {
        auto* start = static_cast<std::function<object(handle)>*>(
            PyCapsule_GetPointer(capsule, "pyasio.run_start"));
        if (start == nullptr)
            throw_error_already_set();
        return (*start)(handle(loop));
    });
}

/// Runs a new event loop of the family `options` name (asyncio's, uvloop, loop_factory's, or a
/// trio run) on this thread until the awaitable that main(loop) returns is done. main is called
/// with the GIL once the loop exists, on its thread; while the loop runs it is the default for
/// into_future when `outermost`. The asyncio loop is then finished as asyncio.run finishes it
/// (trio.run finishes its own). GIL held.
template <class Main> void run_new_loop(const run_options& options, bool outermost, Main& main) {
    struct defaults { // NOTE: the default task locals are the loop's while it runs
        bool set = false;
        void use(handle loop) {
            set_default_task_locals(task_locals::of(loop));
            set = true;
        }
        void reset() {
            if (std::exchange(set, false))
                set_default_task_locals(std::nullopt);
        }
        ~defaults() { reset(); }
    } defaults;
    if (options.trio) {
        if (options.uvloop || options.loop_factory)
            throw std::invalid_argument(
                "pyasio::run: run_options::trio asks for trio's loop, and uvloop or "
                "loop_factory for an asyncio loop; set one of them");
        trio_family& trio = trio_imported("pyasio::run: run_options::trio is set");
        std::function<object(handle)> start = [&](handle loop) {
            if (outermost)
                defaults.use(loop);
            return main(loop);
        };
        static PyMethodDef start_def = {"pyasio_run_main", call_run_start, METH_O,
                                        "Starts pyasio::run's main in a trio run."};
        object capsule = checked(PyCapsule_New(&start, "pyasio.run_start", nullptr));
        try {
            call(trio.run, checked(PyCFunction_New(&start_def, capsule.ptr())));
        } catch (const python_error& e) {
            // NOTE: trio raises KeyboardInterrupt in the main task (cancelling the future it
            // awaits, so the C++ main too), then out of trio.run
            if (options.handle_sigint && e.matches(handle(PyExc_KeyboardInterrupt)))
                throw interrupted("pyasio: interrupted by Ctrl-C (SIGINT) under trio "
                                  "(KeyboardInterrupt); the main coroutine was cancelled");
            throw;
        }
        return;
    }
    object loop = make_loop(options);
    call(getattr(import("asyncio"), "set_event_loop"), loop);
    if (outermost)
        defaults.use(loop);
    std::exception_ptr error;
    try {
        run_awaitable(loop, main(handle(loop)), options.handle_sigint);
    } catch (...) {
        error = detail::caught();
    }
    defaults.reset();
    try {
        finish_loop(loop);
    } catch (...) {
        std::exception_ptr finishing = detail::caught();
        if (!error)
            error = std::move(finishing);
    }
    if (error)
        std::rethrow_exception(error);
}

/// pyasio::run's frame: registers the run and starts the interpreter, runs a new loop until the
/// awaitable main(loop) returns is done (run_new_loop), calls after(done) (GIL held, the loop
/// finished; done: the awaitable completed, nothing failed), then shuts down in order (in the
/// outermost run only, once the runs nested in it have ended: the runtime it started and the
/// interpreter a run started). Rethrows what failed.
template <class Main, class After>
void run_with(const run_options& options, Main main, After after) {
    refuse_run_on_a_runtime_thread();
    refuse_run_on_a_running_loop(); // NOTE: before it registers: a refused run is no run
    run_registry::entry run(options);
    const bool outermost = run.outermost();
    bool owns_runtime = false;
    std::exception_ptr failure;
    {
        gil_acquire gil; // NOTE: the interpreter we started is held by this thread already
        try {
            if (outermost) {
                runtime_slot::instance().rearm(); // an earlier run shut it down
                if (options.runtime_threads != 0)
                    configure_runtime(options.runtime_threads);
                owns_runtime = runtime_slot::instance().start_if_idle();
            }
            run_new_loop(options, outermost, main);
        } catch (...) {
            failure = detail::caught();
        }
        try {
            after(!failure);
        } catch (...) {
            std::exception_ptr error = detail::caught();
            if (!failure)
                failure = std::move(error);
        }
        if (outermost) {
            run.wait_for_nested();
            if (owns_runtime) {
                try {
                    shutdown_runtime(options.shutdown_grace);
                } catch (...) {
                    std::exception_ptr error = detail::caught();
                    if (!failure)
                        failure = std::move(error);
                }
                runtime_slot::instance().rearm(); // left as run found it: later work starts one
            }
        }
        // NOTE: a python_error renders its message on first what(): do it while Python lives
        render_message(failure);
        release_pending();
    }
    if (options.finalize) // this thread holds the GIL of the interpreter it started
        run.finalize();
    if (failure)
        std::rethrow_exception(failure);
}

} // namespace detail

/// Runs C++ work on `loop`, an event loop that is not running (asyncio's run_until_complete for
/// C++ code), and returns its result T or rethrows its exception, in C++. `work` is a callable
/// returning asio::awaitable<T>, or an asio::awaitable<T>; it runs on the default runtime, with
/// `loop` as its task locals' loop (into_future inside it needs no loop argument). The loop is
/// left open. GIL held, on the thread that will run the loop.
template <class Work>
requires(!std::is_convertible_v<Work, object>) auto run_until_complete(handle loop, Work&& work) {
    detail::check_not_on_a_running_loop("pyasio::run_until_complete");
    detail::refuse_a_trio_loop(loop);
    return detail::run_cpp(loop, detail::as_main(std::forward<Work>(work)), false);
}

/// loop.run_until_complete(awaitable) for a Python awaitable: its result. GIL held.
inline object run_until_complete(handle loop, const object& awaitable) {
    detail::check_not_on_a_running_loop("pyasio::run_until_complete");
    detail::refuse_a_trio_loop(loop);
    return call_method(loop, "run_until_complete", awaitable);
}

/// The main of a C++ program that embeds Python: starts the interpreter (argv, built-in
/// modules), makes the event loop (asyncio's, uvloop, options.loop_factory, or a trio run with
/// options.trio) and runs it on
/// this thread while `main` (a callable returning asio::awaitable<T>) runs on the Asio runtime;
/// returns main's result or rethrows its exception. While it runs, the loop is the default for
/// into_future (default_task_locals()), so C++ code anywhere can await Python.
///
/// Then it shuts down in order: cancels the tasks left, shuts down async generators and the
/// default executor, closes the loop, shuts down the runtime if it started it (cancelling C++
/// work in flight; a later use starts a fresh one), and finalizes the interpreter it started
/// (unless options.finalize is false). Ctrl-C cancels main and throws pyasio::interrupted after
/// the same shutdown.
///
/// If the program started Python itself, run uses that interpreter and leaves it running (it
/// never starts a second one, nor finalizes one it did not start). It may be called again after
/// it returned, with a fresh loop and runtime each time; to keep the interpreter for the next
/// call, set options.finalize = false. Call it on the main thread (for Ctrl-C).
///
/// Called on another thread while a run runs, it is nested: it runs a loop of its own on that
/// thread, and tears down neither the interpreter nor the runtime (options.finalize and
/// runtime_threads do not apply; the default task locals stay the outer run's). The outermost
/// run waits for the runs nested in it to end before it tears down.
///
/// Throws std::logic_error on the thread of a running event loop (as asyncio.run refuses: await
/// the work there instead, or run a new loop on another thread), and on a runtime thread.
template <class Main> auto run(Main&& main, run_options options = {}) {
    auto make = detail::as_main(std::forward<Main>(main));
    auto out = std::make_shared<detail::outcome<detail::main_result_t<decltype(make)>>>();
    // NOTE: `out` is read only once main's future completed: an interrupted or failed run
    // leaves main's coroutine to write it later, on a runtime thread
    detail::run_with(
        options, [&](handle) { return detail::main_awaitable(std::move(make), out); },
        [&](bool done) {
            if (done)
                detail::render_message(out->error);
        });
    return out->take();
}

/// run() with main's argc/argv as Python's sys.argv.
template <class Main> auto run(int argc, char** argv, Main&& main, run_options options = {}) {
    options.argv.assign(argv, argv + argc);
    return run(std::forward<Main>(main), std::move(options));
}

namespace detail {

/// C++ work run on the default runtime while a synchronous caller waits for it.
template <class T> struct waited_work {
    std::mutex mutex;
    std::condition_variable changed;
    bool done = false;
    outcome<T> out;
    asio::cancellation_signal signal;
};

/// How a wait_for_work ended.
enum class wait_end { done, interrupted, timed_out };

/// Runs `make` (a callable returning asio::awaitable<T>) on a strand of the default runtime
/// and waits for it with the GIL (if held) released. On the main thread Ctrl-C, or `timeout`,
/// cancels the work (terminal), which is then waited for up to `grace` more. Refuses to wait
/// where it would deadlock.
template <class Make>
auto wait_for_work(const char* what, Make make, std::optional<std::chrono::milliseconds> timeout,
                   std::chrono::milliseconds grace) {
    check_not_on_a_running_loop(what);
    if (on_runtime_thread())
        throw std::logic_error(std::string(what) +
                               ": called on a runtime thread; waiting there can starve the "
                               "runtime of the thread the work needs (deadlock). co_await the "
                               "work instead");
    using T = typename awaitable_value<std::invoke_result_t<Make&>>::type;
    auto s = std::make_shared<waited_work<T>>();
    auto strand = asio::make_strand(default_executor());
    asio::co_spawn(strand, std::move(make),
                   asio::bind_cancellation_slot(s->signal.slot(),
                                                [s](const std::exception_ptr& e, auto... value) {
                                                    std::lock_guard<std::mutex> lock(s->mutex);
                                                    s->out.error = e;
                                                    if constexpr (sizeof...(value) > 0)
                                                        s->out.value.emplace(std::move(value)...);
                                                    s->done = true;
                                                    s->changed.notify_all();
                                                }));
    const bool python = gil::held();
    const auto start = std::chrono::steady_clock::now();
    std::optional<std::chrono::steady_clock::time_point> give_up; // once cancelled
    wait_end end = wait_end::done;
    for (;;) {
        bool done;
        {
            std::optional<gil_release> nogil;
            if (python)
                nogil.emplace();
            std::unique_lock<std::mutex> lock(s->mutex);
            // NOTE: in slices, so that Ctrl-C and the timeout are seen while waiting
            done =
                s->changed.wait_for(lock, std::chrono::milliseconds(20), [&] { return s->done; });
        }
        if (done)
            break;
        auto now = std::chrono::steady_clock::now();
        if (give_up) {
            if (now >= *give_up)
                break; // cancelled, and still not done: abandoned (it keeps its own state)
            continue;
        }
        if (python && PyErr_CheckSignals() < 0) {
            PyErr_Clear(); // KeyboardInterrupt: cancel the work, then report it
            end = wait_end::interrupted;
        } else if (timeout && now - start >= *timeout) {
            end = wait_end::timed_out;
        } else {
            continue;
        }
        give_up = now + grace;
        asio::post(strand, [s] { s->signal.emit(asio::cancellation_type::terminal); });
    }
    return std::pair<wait_end, std::shared_ptr<waited_work<T>>>(end, s);
}

} // namespace detail

/// Runs C++ work to completion from synchronous code (an ordinary extension function, a plain
/// C++ thread) and returns its result T or rethrows its exception. `work` is a callable returning
/// asio::awaitable<T>, or an asio::awaitable<T>; it runs on the default runtime. The GIL, if
/// held, is released while waiting, so other Python threads run; on the main thread Ctrl-C
/// cancels the work, waits for it to end, and throws pyasio::interrupted (KeyboardInterrupt).
///
/// Throws std::logic_error where waiting would deadlock: on a thread whose event loop is running,
/// or on a runtime thread.
template <class Work>
requires(!std::is_convertible_v<Work, object>) auto block_on(Work&& work) {
    auto [end, s] =
        detail::wait_for_work("pyasio::block_on", detail::as_main(std::forward<Work>(work)),
                              std::nullopt, std::chrono::seconds(5));
    if (end == detail::wait_end::interrupted)
        throw interrupted("pyasio::block_on: interrupted by Ctrl-C (SIGINT); the C++ work was "
                          "cancelled");
    std::lock_guard<std::mutex> lock(s->mutex);
    return s->out.take();
}

/// Waits for a Python awaitable from synchronous C++ code on a thread that is not the loop's
/// (asyncio.run_coroutine_threadsafe(...).result()): runs it on `locals`' loop and returns its
/// result converted to T, or throws what into_future would. The GIL, if held, is released while
/// waiting. Throws std::logic_error on the loop's own thread while it runs, where waiting would
/// deadlock, and when the loop is not running (it would never run the awaitable);
/// event_loop_closed when it is closed.
template <class T = object> T block_on(object awaitable, task_locals locals) {
    {
        gil_acquire gil; // NOTE: the GIL may have been released by the caller: ask with it
        if (detail::loop_runs_here(*locals.bridge()))
            throw std::logic_error("pyasio::block_on: called on the thread of the loop the "
                                   "awaitable runs on; waiting here would stop that loop "
                                   "(deadlock). Await it instead");
        object loop = locals.loop();
        if (!loop || call_method(loop, "is_closed").ptr() == Py_True)
            throw event_loop_closed("pyasio::block_on: the event loop is closed, so the "
                                    "awaitable can never run");
        // NOTE: a loop that is not running would never run it: this call would wait for ever
        if (call_method(loop, "is_running").ptr() != Py_True)
            throw std::logic_error(
                "pyasio::block_on: the event loop is not running, so the awaitable would never "
                "run and this call would wait for ever; call it while the loop runs in its own "
                "thread (one just started may not run yet: wait for it, e.g. for an event it "
                "sets with loop.call_soon), or run the loop here with "
                "pyasio::run_until_complete(loop, awaitable)");
    }
    std::future<std::conditional_t<std::is_void_v<T>, void, T>> result =
        into_future<T>(std::move(awaitable), std::move(locals), asio::use_future);
    if (gil::held()) {
        gil_release nogil;
        result.wait();
    }
    return result.get();
}

PYASIO_NAMESPACE_END

#endif // PYASIO_RUN_HPP
