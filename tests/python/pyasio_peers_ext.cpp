// SPDX-License-Identifier: BSL-1.0
// The native side of the peers' test suites, ported (tests/python/test_peers.py): pyasio's
// counterparts of the Rust functions that pyo3-asyncio's and pyo3-async-runtimes' pytests call
// and of the C test helpers of pyawaitable. docs/peers.md maps every peer test to its port.
#include <pyasio.hpp>

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

namespace {
using pyasio::handle;
using pyasio::object;

// --- counters, by a tag each test chooses (so that late work of another test never counts) ---

std::mutex counts_mutex;
std::map<std::string, std::map<std::string, long>> counts_by_tag;

void bump(const std::string& tag, const std::string& key) {
    std::lock_guard<std::mutex> lock(counts_mutex);
    ++counts_by_tag[tag][key];
}

/// counts(tag): {key: how many times it was bumped} for that tag.
PyObject* counts(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        std::string tag = pyasio::from_python<std::string>(handle(arg));
        std::lock_guard<std::mutex> lock(counts_mutex);
        return counts_by_tag[tag];
    });
}

std::chrono::nanoseconds from_seconds(double secs) {
    if (!(secs >= 0))
        throw std::invalid_argument("the duration must be a number of seconds >= 0");
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>(secs));
}

asio::awaitable<void> wait_for(std::chrono::nanoseconds d) {
    asio::steady_timer timer(co_await asio::this_coro::executor, d);
    co_await timer.async_wait(asio::use_awaitable);
}

/// A timer wait that bumps `tag`'s "started", then "completed" or "aborted" (cancelled).
asio::awaitable<void> counted_wait(std::string tag, std::chrono::nanoseconds d) {
    bump(tag, "started");
    try {
        co_await wait_for(d);
    } catch (const std::system_error& e) {
        if (e.code() == asio::error::operation_aborted)
            bump(tag, "aborted");
        throw;
    }
    bump(tag, "completed");
}

// --- pyo3-asyncio's pytests ---

/// sleep(secs): pyo3-asyncio's `rust_sleeper.sleep`, an Asio timer on the runtime.
PyObject* sleep(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        auto d = from_seconds(pyasio::from_python<double>(handle(arg)));
        return pyasio::future_into_py([d] { return wait_for(d); });
    });
}

/// counted_sleep(tag, secs): sleep() that bumps the tag's started/completed/aborted.
PyObject* counted_sleep(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [tag, secs] = pyasio::from_python<std::tuple<std::string, double>>(handle(args));
        return pyasio::future_into_py(
            [tag = tag, d = from_seconds(secs)] { return counted_wait(tag, d); });
    });
}

/// local_counted_sleep(tag, secs): the same work on the loop's own thread (pyo3-asyncio's
/// local_future_into_py): its state is shared without atomics, which only one thread may do.
PyObject* local_counted_sleep(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [tag, secs] = pyasio::from_python<std::tuple<std::string, double>>(handle(args));
        auto rc = std::make_shared<std::chrono::nanoseconds>(from_seconds(secs)); // "Rc"
        return pyasio::future_into_py(
            [tag = tag, rc]() -> asio::awaitable<double> {
                if (!pyasio::gil::held())
                    throw std::logic_error("local work ran off the loop thread");
                co_await counted_wait(tag, *rc);
                co_return std::chrono::duration<double>(*rc).count();
            },
            pyasio::loop_executor::current());
    });
}

/// await_py(aw): C++ work awaits the Python awaitable and returns its result.
PyObject* await_py(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        return pyasio::future_into_py(
            [aw = pyasio::borrow(arg)]() mutable -> asio::awaitable<object> {
                co_return co_await pyasio::into_future(std::move(aw));
            });
    });
}

/// await_py_on(aw[, loop]): the same, on task locals that the C++ work names on its runtime
/// thread, not the loop's, as pyo3-asyncio's tests do: into_future_with_locals(
/// TaskLocals::new(event_loop), aw), with event_loop given, or (none) get_current_loop() there
/// (the loop of the work's task locals: the one running at the call).
PyObject* await_py_on(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        PyObject* a = nullptr;
        PyObject* l = nullptr;
        if (!PyArg_UnpackTuple(args, "await_py_on", 1, 2, &a, &l))
            throw pyasio::python_error::fetch();
        object given = l != nullptr ? pyasio::borrow(l) : object(); // none: get_current_loop()
        return pyasio::future_into_py(
            [aw = pyasio::borrow(a), loop = std::move(given)]() mutable -> asio::awaitable<object> {
                std::optional<pyasio::task_locals> locals;
                {
                    pyasio::gil_acquire gil; // a runtime thread
                    if (!loop)
                        loop = pyasio::get_current_loop();
                    locals = pyasio::task_locals::of(loop);
                    loop.reset();
                    if (pyasio::loop_executor(*locals).running_in_this_thread())
                        throw std::logic_error("await_py_on: named on the loop's thread");
                }
                co_return co_await pyasio::into_future(std::move(aw), *locals);
            });
    });
}

/// The arguments (secs[, sleep]) of async_sleep and sleep_with_locals: the seconds, and the
/// async function to await (asyncio.sleep when not given; trio.sleep under trio).
std::tuple<double, pyasio::async_function> secs_and_sleep(const char* name, PyObject* args) {
    PyObject* secs = nullptr;
    PyObject* sleep_fn = nullptr;
    if (!PyArg_UnpackTuple(args, name, 1, 2, &secs, &sleep_fn))
        throw pyasio::python_error::fetch();
    object fn = sleep_fn != nullptr ? pyasio::borrow(sleep_fn)
                                    : pyasio::getattr(pyasio::import("asyncio"), "sleep");
    return std::make_tuple(pyasio::from_python<double>(handle(secs)),
                           pyasio::async_function(std::move(fn)));
}

/// async_sleep(secs[, sleep]): C++ waits on a timer, then awaits sleep(secs) (asyncio.sleep by
/// default) (test_async_sleep).
PyObject* async_sleep(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [secs, sleep_fn] = secs_and_sleep("async_sleep", args);
        return pyasio::future_into_py(
            [sleep_fn = sleep_fn, secs = secs]() -> asio::awaitable<void> {
                co_await wait_for(from_seconds(secs));
                co_await pyasio::into_future<void>(sleep_fn(secs));
            });
    });
}

/// sleep_with_locals(secs[, sleep]): lib.rs' TaskLocals example: the locals captured at the
/// call (the running loop and a copy of the context) are the ones the C++ work awaits
/// sleep(secs) (asyncio.sleep by default) on.
PyObject* sleep_with_locals(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [secs, sleep_fn] = secs_and_sleep("sleep_with_locals", args);
        pyasio::task_locals locals = pyasio::task_locals::capture();
        return pyasio::future_into_py(
            [sleep_fn = sleep_fn, secs = secs, locals]() -> asio::awaitable<void> {
                co_await pyasio::into_future<void>(sleep_fn(secs), locals);
            });
    });
}

/// blocking_sleep(secs): a synchronous C++ function that blocks its thread, the GIL released
/// (pyo3-asyncio's sync test fns run on a blocking thread).
PyObject* blocking_sleep(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        auto d = from_seconds(pyasio::from_python<double>(handle(arg)));
        pyasio::gil_release nogil;
        std::this_thread::sleep_for(d);
    });
}

/// panic(msg): C++ work that fails with std::runtime_error(msg) (a Rust panic's counterpart).
PyObject* panic(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        std::string msg = pyasio::from_python<std::string>(handle(arg));
        return pyasio::future_into_py([msg]() -> asio::awaitable<void> {
            throw std::runtime_error(msg);
            co_return;
        });
    });
}

struct not_a_std_exception {};

/// panic_unknown(): C++ work that throws a type not derived from std::exception.
PyObject* panic_unknown(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        return pyasio::future_into_py([]() -> asio::awaitable<void> {
            throw not_a_std_exception{};
            co_return;
        });
    });
}

/// out_of_memory(): C++ work that throws std::bad_alloc.
PyObject* out_of_memory(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        return pyasio::future_into_py([]() -> asio::awaitable<void> {
            throw std::bad_alloc();
            co_return;
        });
    });
}

/// async_callback(cb): cvars_mod.async_callback: C++ work awaits cb(), which pyasio calls on the
/// loop thread (pyasio::async_function) inside the context captured at this call.
PyObject* async_callback(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        pyasio::async_function cb(pyasio::borrow(arg));
        return pyasio::future_into_py(
            [cb]() -> asio::awaitable<object> { co_return co_await pyasio::into_future(cb()); });
    });
}

/// async_callback_on_runtime(cb): the same, but cb() is called on the runtime thread under the
/// GIL, as the Rust fixture does; the coroutine still runs in the captured context.
PyObject* async_callback_on_runtime(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        return pyasio::future_into_py([cb = pyasio::borrow(arg)]() -> asio::awaitable<object> {
            object coro;
            {
                pyasio::gil_acquire gil;
                coro = pyasio::call(cb);
            }
            co_return co_await pyasio::into_future(std::move(coro));
        });
    });
}

/// run_sleep(secs): pyasio::run (pyo3-asyncio's run) of C++ work that waits on a timer;
/// returns secs. Called from Python: an interpreter run did not start.
PyObject* run_sleep(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        double secs = pyasio::from_python<double>(handle(arg));
        pyasio::run_options options;
        options.handle_sigint = false;
        return pyasio::run(
            [secs]() -> asio::awaitable<double> {
                co_await wait_for(from_seconds(secs));
                co_return secs;
            },
            options);
    });
}

/// run_loop_type(uvloop): pyasio::run of C++ work that names the type of the loop it got
/// ("module.qualname"); run_options::uvloop as given (else the event-loop policy decides).
PyObject* run_loop_type(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        pyasio::run_options options;
        options.handle_sigint = false;
        options.uvloop = pyasio::from_python<bool>(handle(arg));
        return pyasio::run(
            []() -> asio::awaitable<std::string> {
                co_await wait_for(std::chrono::milliseconds(1));
                std::optional<pyasio::task_locals> locals = pyasio::current_task_locals();
                if (!locals)
                    throw std::logic_error("run's main has no task locals");
                std::string name;
                {
                    pyasio::gil_acquire gil;
                    object type =
                        pyasio::borrow(reinterpret_cast<PyObject*>(Py_TYPE(locals->loop().ptr())));
                    name = pyasio::str(pyasio::getattr(type, "__module__")) + "." +
                           pyasio::str(pyasio::getattr(type, "__qualname__"));
                }
                co_return name;
            },
            options);
    });
}

/// run_trio(fn, uvloop=False): pyasio::run with run_options::trio; main waits on a timer, then
/// awaits fn() (a Python async function, called on the loop: the default task locals are the
/// trio run's) and returns (its result, the name of the loop's type).
PyObject* run_trio(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [fn, uvloop] = pyasio::from_python<std::tuple<object, bool>>(handle(args));
        pyasio::run_options options;
        options.handle_sigint = false;
        options.trio = true;
        options.uvloop = uvloop;
        return pyasio::run(
            [f = pyasio::async_function(
                 std::move(fn))]() -> asio::awaitable<std::tuple<object, std::string>> {
                co_await wait_for(std::chrono::milliseconds(1));
                object result = co_await pyasio::into_future(f());
                std::string loop_type;
                {
                    pyasio::gil_acquire gil;
                    loop_type = pyasio::default_task_locals()->loop().type_name();
                }
                co_return std::make_tuple(std::move(result), loop_type);
            },
            options);
    });
}

/// restore_runtime(): True if the runtime was shut down (then it is set up again, so that
/// later tests run); False if it runs.
PyObject* restore_runtime(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        try {
            (void)pyasio::default_executor();
            return false;
        } catch (const pyasio::runtime_stopped&) {
            pyasio::configure_runtime(0);
            return true;
        }
    });
}

/// run_until_complete_sleep(loop, secs): pyasio::run_until_complete(loop, C++ work) (the doc
/// test of pyo3-asyncio's run_until_complete); the work awaits asyncio.sleep on that loop
/// without naming it. Returns secs.
PyObject* run_until_complete_sleep(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [loop, secs] = pyasio::from_python<std::tuple<object, double>>(handle(args));
        pyasio::async_function asyncio_sleep(pyasio::getattr(pyasio::import("asyncio"), "sleep"));
        return pyasio::run_until_complete(
            loop, [asyncio_sleep, secs = secs]() -> asio::awaitable<double> {
                co_await wait_for(from_seconds(secs));
                co_await pyasio::into_future<void>(asyncio_sleep(secs));
                co_return secs;
            });
    });
}

/// How the last stop_later() ended: "" while it waits, "stopped", or the error.
std::mutex stop_mutex;
std::string stop_outcome_text;

void set_stop_outcome(const std::exception_ptr& e) {
    std::string text = "stopped";
    if (e) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            text = std::string("error: ") + x.what();
        } catch (...) {
            text = "error: unknown";
        }
    }
    std::lock_guard<std::mutex> lock(stop_mutex);
    stop_outcome_text = std::move(text);
}

/// stop_later(loop, secs): a coroutine on the runtime waits, then takes the GIL and calls
/// loop.call_soon_threadsafe(loop.stop) (the run_forever tests).
PyObject* stop_later(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [l, secs] = pyasio::from_python<std::tuple<object, double>>(handle(args));
        {
            std::lock_guard<std::mutex> lock(stop_mutex);
            stop_outcome_text.clear();
        }
        // NOTE: shared, so that copies made on the runtime copy no Python object
        auto loop = std::make_shared<object>(std::move(l));
        asio::co_spawn(
            pyasio::default_executor(),
            [loop, d = from_seconds(secs)]() -> asio::awaitable<void> {
                co_await wait_for(d);
                pyasio::gil_acquire gil;
                pyasio::call_method(*loop, "call_soon_threadsafe", pyasio::getattr(*loop, "stop"));
                loop->reset();
            },
            set_stop_outcome);
    });
}

/// stop_later_on_loop(loop, secs): the same through the loop_executor (pyasio's way): the wait
/// runs on the runtime, loop.stop() on the loop's thread. The loop must not run yet.
PyObject* stop_later_on_loop(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [loop, secs] = pyasio::from_python<std::tuple<object, double>>(handle(args));
        {
            std::lock_guard<std::mutex> lock(stop_mutex);
            stop_outcome_text.clear();
        }
        pyasio::task_locals locals = pyasio::task_locals::of(loop);
        asio::co_spawn(
            pyasio::loop_executor(locals),
            [locals, d = from_seconds(secs)]() -> asio::awaitable<void> {
                co_await wait_for(d);
                pyasio::call_method(locals.loop(), "stop"); // the loop's thread, with the GIL
            },
            set_stop_outcome);
    });
}

PyObject* stop_outcome(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        std::lock_guard<std::mutex> lock(stop_mutex);
        return stop_outcome_text;
    });
}

// --- streams ---

/// collect(aiterable, window): C++ reads every item as an int (pyo3-asyncio's into_stream_v1).
PyObject* collect(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [iterable, window] =
            pyasio::from_python<std::tuple<object, std::size_t>>(handle(args));
        return pyasio::future_into_py(
            [s = pyasio::into_stream<long>(
                 std::move(iterable), window)]() mutable -> asio::awaitable<std::vector<long>> {
                std::vector<long> items;
                while (std::optional<long> item = co_await s.next())
                    items.push_back(*item);
                co_return items;
            });
    });
}

/// collect_objects(aiterable, window): the items as Python objects (into_stream_v2).
PyObject* collect_objects(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [iterable, window] =
            pyasio::from_python<std::tuple<object, std::size_t>>(handle(args));
        return pyasio::future_into_py(
            [s = pyasio::into_stream(std::move(iterable),
                                     window)]() mutable -> asio::awaitable<std::vector<object>> {
                std::vector<object> items;
                while (std::optional<object> item = co_await s.next())
                    items.push_back(std::move(*item));
                co_return items;
            });
    });
}

/// An outcome of C++ reading or awaiting, as text.
std::string describe(const std::exception_ptr& e) {
    if (!e)
        return "ok";
    try {
        std::rethrow_exception(e);
    } catch (const pyasio::task_cancelled&) {
        return "cancelled by python";
    } catch (const pyasio::python_error& x) {
        return std::string("python_error: ") + x.what();
    } catch (const std::system_error& x) {
        if (x.code() == asio::error::operation_aborted)
            return "aborted";
        return std::string("system_error: ") + x.what();
    } catch (const std::exception& x) {
        return std::string("exception: ") + x.what();
    }
}

/// read_cancel_read(aiterable, n, secs, after_race): C++ reads n items, then races one next()
/// against a timer of secs (the timer wins: C++ cancels that next()), awaits after_race(), then
/// reads on to the end. (items before, "timeout" or "item", items after), or the error met
/// after, as text.
PyObject* read_cancel_read(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [iterable, n, secs, after_race] =
            pyasio::from_python<std::tuple<object, long, double, object>>(handle(args));
        return pyasio::future_into_py(
            [s = pyasio::into_stream<long>(std::move(iterable), 4), n = n, d = from_seconds(secs),
             then = pyasio::async_function(std::move(after_race))]() mutable
            -> asio::awaitable<
                std::tuple<std::vector<long>, std::string, std::vector<long>, std::string>> {
                using namespace asio::experimental::awaitable_operators;
                std::vector<long> before, after;
                for (long i = 0; i < n; ++i)
                    before.push_back((co_await s.next()).value());
                asio::steady_timer timer(co_await asio::this_coro::executor, d);
                auto race = co_await (s.next() || timer.async_wait(asio::use_awaitable));
                std::string raced = race.index() == 0 ? "item" : "timeout";
                co_await pyasio::into_future(then());
                std::exception_ptr error;
                try {
                    while (std::optional<long> item = co_await s.next())
                        after.push_back(*item);
                } catch (...) {
                    error = std::current_exception();
                }
                co_return std::make_tuple(std::move(before), std::move(raced), std::move(after),
                                          describe(error));
            });
    });
}

std::mutex gate_mutex;
std::shared_ptr<std::atomic<bool>> last_gate; // gated_count's, for open_gate()

/// gated_count(n, gate_at): a C++ producer of 0..n-1 for `async for` (stream_into_py) that
/// waits before item gate_at until open_gate() is called (10 s at most).
PyObject* gated_count(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [n, gate_at] = pyasio::from_python<std::tuple<long, long>>(handle(args));
        auto gate = std::make_shared<std::atomic<bool>>(false);
        {
            std::lock_guard<std::mutex> lock(gate_mutex);
            last_gate = gate;
        }
        return pyasio::stream_into_py<long>(
            [n = n, gate_at = gate_at,
             gate](pyasio::stream_writer<long> out) -> asio::awaitable<void> {
                for (long i = 0; i < n; ++i) {
                    for (int waited = 0; i == gate_at && !gate->load(); ++waited) {
                        if (waited == 10'000)
                            throw std::runtime_error("gated_count: the gate never opened");
                        co_await wait_for(std::chrono::milliseconds(1));
                    }
                    co_await out.write(i);
                }
            },
            2);
    });
}

PyObject* open_gate(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        std::lock_guard<std::mutex> lock(gate_mutex);
        if (last_gate)
            last_gate->store(true);
    });
}

// --- pyawaitable's tests ---

/// await_each(awaitables): C++ awaits each in turn (pyawaitable's FIFO of awaits); their
/// results, in order.
PyObject* await_each(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        auto awaitables = pyasio::from_python<std::vector<object>>(handle(arg));
        return pyasio::future_into_py(
            [awaitables = std::move(awaitables)]() mutable -> asio::awaitable<std::vector<object>> {
                std::vector<object> results;
                for (object& aw : awaitables)
                    results.push_back(co_await pyasio::into_future(std::move(aw)));
                co_return results;
            });
    });
}

/// await_until(awaitables, stop): C++ awaits each in turn and stops after the first whose
/// result equals `stop` (an int): pyawaitable's PyAwaitable_Cancel from a callback. The results
/// it awaited; the rest are closed unawaited.
PyObject* await_until(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [awaitables, stop] =
            pyasio::from_python<std::tuple<std::vector<object>, long>>(handle(args));
        return pyasio::future_into_py(
            [awaitables = std::move(awaitables),
             stop = stop]() mutable -> asio::awaitable<std::vector<long>> {
                std::vector<long> results;
                for (object& aw : awaitables) {
                    results.push_back(co_await pyasio::into_future<long>(std::move(aw)));
                    if (results.back() == stop)
                        break;
                }
                { // the ones never awaited are closed, so that they warn of nothing
                    pyasio::gil_acquire gil;
                    for (object& aw : awaitables)
                        if (aw && PyObject_HasAttrString(aw.ptr(), "close"))
                            pyasio::call_method(aw, "close");
                    awaitables.clear();
                }
                co_return results;
            });
    });
}

/// await_call(fn, i, s): C++ awaits fn(i, s), called on the loop thread with C++ arguments
/// (pyawaitable v1's await_function with a "is" format).
PyObject* await_call(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [f, i, text] =
            pyasio::from_python<std::tuple<object, long, std::string>>(handle(args));
        pyasio::async_function fn(std::move(f));
        return pyasio::future_into_py([fn, i = i, text = text]() -> asio::awaitable<object> {
            co_return co_await pyasio::into_future(fn(i, text));
        });
    });
}

/// echo_on_loop(x): C++ work on the loop thread that holds x until it returns it.
PyObject* echo_on_loop(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        return pyasio::future_into_py(
            [x = pyasio::borrow(arg)]() -> asio::awaitable<object> {
                co_await wait_for(std::chrono::milliseconds(1));
                co_return x; // the loop's thread: the GIL is held for the copy
            },
            pyasio::loop_executor::current());
    });
}

/// hold_on_loop(x, secs): C++ work on the loop thread that holds x while it waits secs; None.
PyObject* hold_on_loop(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [x, secs] = pyasio::from_python<std::tuple<object, double>>(handle(args));
        return pyasio::future_into_py(
            [x = std::move(x), d = from_seconds(secs)]() -> asio::awaitable<void> {
                co_await wait_for(d);
            },
            pyasio::loop_executor::current());
    });
}

/// with_handlers(tag, aw, on_result, on_error): pyawaitable's callback protocol in C++ terms.
/// C++ awaits aw; then the result handler runs (on_result: "ok" records the result; "raise"
/// throws std::runtime_error, which goes to the error handler; "raise_unknown" throws a type
/// that is not a std::exception; "raise_force" throws past the error handler). On an error, the
/// error handler runs (on_error: "none" lets it propagate; "swallow" ends normally; "reraise"
/// rethrows it; "replace" throws FileExistsError instead). Bumps tag's "result_called",
/// "error_called" and "error_is_zero_division". The result is aw's (or None when swallowed).
PyObject* with_handlers(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [tag, aw, on_result, on_error] =
            pyasio::from_python<std::tuple<std::string, object, std::string, std::string>>(
                handle(args));
        return pyasio::future_into_py(
            [tag = tag, aw = std::move(aw), on_result = on_result,
             on_error = on_error]() mutable -> asio::awaitable<std::optional<object>> {
                object result;
                std::exception_ptr error;
                bool forced = false;
                try {
                    result = co_await pyasio::into_future(std::move(aw));
                } catch (...) {
                    error = std::current_exception();
                }
                if (!error) {
                    bump(tag, "result_called");
                    try {
                        if (on_result == "raise")
                            throw std::runtime_error("the result handler failed");
                        if (on_result == "raise_unknown")
                            throw not_a_std_exception{};
                        if (on_result == "raise_force") {
                            forced = true;
                            throw std::runtime_error("the result handler failed, past the error "
                                                     "handler");
                        }
                    } catch (...) {
                        error = std::current_exception();
                    }
                }
                if (!error)
                    co_return result;
                if (on_error == "none" || forced)
                    std::rethrow_exception(error);
                bump(tag, "error_called");
                try {
                    std::rethrow_exception(error);
                } catch (const pyasio::python_error& e) {
                    pyasio::gil_acquire gil;
                    if (e.matches(handle(PyExc_ZeroDivisionError)))
                        bump(tag, "error_is_zero_division");
                } catch (...) {
                }
                if (on_error == "reraise")
                    std::rethrow_exception(error);
                if (on_error == "replace")
                    throw std::system_error(EEXIST, std::generic_category(),
                                            "replaced by the error handler");
                co_return std::nullopt; // swallowed: None
            });
    });
}

/// async_with(ctx, body, on_error): `async with ctx as v: body(v)` from C++ on the loop thread
/// (pyawaitable v1's PyAwaitable_AsyncWith). TypeError at the call when ctx lacks __aenter__
/// or __aexit__. An exception of body goes to __aexit__, which may suppress it. on_error
/// "swallow": an exception leaving the block (from body or __aexit__) is swallowed; "none":
/// it propagates. The result is None.
PyObject* async_with(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [ctx, body, on_error] =
            pyasio::from_python<std::tuple<object, object, std::string>>(handle(args));
        for (const char* name : {"__aenter__", "__aexit__"})
            if (!PyObject_HasAttrString(ctx.ptr(), name))
                throw pyasio::type_error(std::string("async_with: ") + ctx.type_name() +
                                         " has no " + name);
        return pyasio::future_into_py(
            [ctx = std::move(ctx), body = std::move(body),
             on_error = on_error]() -> asio::awaitable<void> {
                // the loop's thread, with the GIL, between the awaits
                try {
                    object entered =
                        co_await pyasio::into_future(pyasio::call_method(ctx, "__aenter__"));
                    std::optional<pyasio::python_error> failed;
                    try {
                        if (body.ptr() != Py_None)
                            pyasio::call(body, entered);
                    } catch (const pyasio::python_error& e) {
                        failed = e;
                    }
                    if (!failed) {
                        co_await pyasio::into_future(pyasio::call_method(
                            ctx, "__aexit__", handle(Py_None), handle(Py_None), handle(Py_None)));
                    } else {
                        object tb = failed->traceback() ? pyasio::borrow(failed->traceback())
                                                        : pyasio::borrow(Py_None);
                        object suppress = co_await pyasio::into_future(pyasio::call_method(
                            ctx, "__aexit__", failed->type(), failed->value(), tb));
                        if (PyObject_IsTrue(suppress.ptr()) != 1)
                            throw *failed;
                    }
                } catch (const pyasio::python_error&) {
                    if (on_error != "swallow")
                        throw;
                }
            },
            pyasio::loop_executor::current());
    });
}

// --- loop set-ups ---

PyObject* set_wake(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        std::string mode = pyasio::from_python<std::string>(handle(arg));
        if (mode == "reader")
            pyasio::set_loop_wake(pyasio::loop_wake::reader);
        else if (mode == "threadsafe")
            pyasio::set_loop_wake(pyasio::loop_wake::call_soon_threadsafe);
        else
            throw std::invalid_argument("wake mode must be 'reader' or 'threadsafe'");
    });
}

/// wake_mode(): how this module's bridge wakes the running loop.
PyObject* wake_mode(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        auto b = pyasio::detail::bridge_registry::instance().bridge_for(pyasio::get_running_loop());
        return std::string(b->wake_mode() == pyasio::loop_wake::reader ? "reader" : "threadsafe");
    });
}

PyMethodDef methods[] = {
    {"counts", counts, METH_O, "what the tag's work counted"},
    {"sleep", sleep, METH_O, "rust_sleeper.sleep: an Asio timer"},
    {"counted_sleep", counted_sleep, METH_VARARGS, "sleep, counted under a tag"},
    {"local_counted_sleep", local_counted_sleep, METH_VARARGS, "the same on the loop executor"},
    {"await_py", await_py, METH_O, "C++ awaits the awaitable"},
    {"await_py_on", await_py_on, METH_VARARGS,
     "C++ awaits it on task_locals::of(loop) named on a runtime thread"},
    {"async_sleep", async_sleep, METH_VARARGS, "a timer, then asyncio.sleep (or the one given)"},
    {"sleep_with_locals", sleep_with_locals, METH_VARARGS,
     "asyncio.sleep (or the one given) on captured locals"},
    {"blocking_sleep", blocking_sleep, METH_O, "blocks, the GIL released"},
    {"panic", panic, METH_O, "work that throws std::runtime_error"},
    {"panic_unknown", panic_unknown, METH_NOARGS, "work that throws a non-std exception"},
    {"out_of_memory", out_of_memory, METH_NOARGS, "work that throws std::bad_alloc"},
    {"async_callback", async_callback, METH_O, "C++ awaits cb() (async_function)"},
    {"async_callback_on_runtime", async_callback_on_runtime, METH_O,
     "C++ awaits cb(), called on the runtime"},
    {"run_sleep", run_sleep, METH_O, "pyasio::run of a timer"},
    {"run_loop_type", run_loop_type, METH_O, "pyasio::run; the type of its loop"},
    {"run_trio", run_trio, METH_VARARGS, "pyasio::run with run_options::trio"},
    {"restore_runtime", restore_runtime, METH_NOARGS, "sets up a runtime that was shut down"},
    {"run_until_complete_sleep", run_until_complete_sleep, METH_VARARGS,
     "pyasio::run_until_complete(loop, work)"},
    {"stop_later", stop_later, METH_VARARGS, "call_soon_threadsafe(loop.stop) from C++"},
    {"stop_later_on_loop", stop_later_on_loop, METH_VARARGS, "loop.stop() via the loop executor"},
    {"stop_outcome", stop_outcome, METH_NOARGS, "how the last stop_later ended"},
    {"collect", collect, METH_VARARGS, "into_stream<long>"},
    {"collect_objects", collect_objects, METH_VARARGS, "into_stream<object>"},
    {"read_cancel_read", read_cancel_read, METH_VARARGS, "one next() cancelled by C++"},
    {"gated_count", gated_count, METH_VARARGS, "a C++ producer that waits for open_gate()"},
    {"open_gate", open_gate, METH_NOARGS, "lets gated_count's producer go on"},
    {"await_each", await_each, METH_O, "C++ awaits each in turn"},
    {"await_until", await_until, METH_VARARGS, "C++ awaits in turn until a result"},
    {"await_call", await_call, METH_VARARGS, "C++ awaits fn(i, s)"},
    {"echo_on_loop", echo_on_loop, METH_O, "returns x from the loop thread"},
    {"hold_on_loop", hold_on_loop, METH_VARARGS, "holds x on the loop thread for a while"},
    {"with_handlers", with_handlers, METH_VARARGS, "result and error handlers in C++"},
    {"async_with", async_with, METH_VARARGS, "async with, from C++"},
    {"set_wake", set_wake, METH_O, "'reader' or 'threadsafe' for loops bridged from now on"},
    {"wake_mode", wake_mode, METH_NOARGS, "this loop's wake mode"},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT,
                      "_pyasio_peers_test",
                      "the native side of the peers' test suites",
                      -1,
                      methods,
                      nullptr,
                      nullptr,
                      nullptr,
                      nullptr};
} // namespace

PYASIO_MODULE_INIT(_pyasio_peers_test) {
    return PyModule_Create(&module);
}
