// SPDX-License-Identifier: BSL-1.0
// The peers' tests in which native code awaits Python, ported: pyo3-asyncio's (0.17 to 0.20)
// and pyo3-async-runtimes' pytests, whose async tests are Rust futures on the native runtime
// (PYASIO_TEST_CASE bodies here) and whose sync tests run on a thread that is not the loop's
// (plain TEST_CASEs here: the Catch2 thread). Each case is named after the peer test and runs
// in three sections, one per runtime set-up: the default runtime, one runtime thread
// (pyo3-asyncio's current-thread tokio), and a user's own io_context. Python's side of the same
// tests is tests/python/test_peers.py; docs/peers.md maps every peer test to its port.
//
// The peers sleep 1 s where these sleep a millisecond: the behaviour is tested, not the
// duration, and nothing asserts a duration (timeouts only guard against hangs).
#include "support.hpp"

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace {
using pyasio::handle;
using pyasio::object;
using namespace std::chrono_literals;

// --- the runtime set-ups ---

/// A user's own io_context, run by a thread of the user's for the rest of the program (work
/// that outlives a test may still refer to it).
struct own_context {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    std::thread thread{[this] { io.run(); }};

    own_context() = default;
    own_context(const own_context&) = delete;
    own_context& operator=(const own_context&) = delete;
    ~own_context() {
        work.reset();
        io.stop();
        thread.join();
    }
    static own_context& get() {
        static own_context c;
        return c;
    }
};

enum class runtime_kind { default_runtime, one_thread, own_io_context };

/// The runtime set up as `kind` for one test (what ran before is shut down first), and the
/// default runtime again after it.
class runtime_setup {
public:
    explicit runtime_setup(runtime_kind kind) : kind_(kind) {
        pyasio::shutdown_runtime(5s);
        if (kind == runtime_kind::default_runtime)
            pyasio::configure_runtime(0);
        else if (kind == runtime_kind::one_thread)
            pyasio::configure_runtime(1);
        else
            pyasio::install_runtime(own_context::get().io);
    }
    runtime_setup(const runtime_setup&) = delete;
    runtime_setup& operator=(const runtime_setup&) = delete;
    ~runtime_setup() {
        try {
            pyasio::shutdown_runtime(5s);
            pyasio::configure_runtime(0);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "test_peers: the runtime was not set back: %s\n", e.what());
        }
    }

    /// The runtime is the one named (started now if the test started none).
    void check() const {
        (void)pyasio::default_executor();
        if (kind_ == runtime_kind::one_thread) {
            CHECK(pyasio::runtime_thread_count() == 1);
        } else if (kind_ == runtime_kind::own_io_context) {
            CHECK(pyasio::default_executor() ==
                  asio::any_io_executor(own_context::get().io.get_executor()));
        } else {
            CHECK(pyasio::runtime_thread_count() == pyasio::runtime::default_thread_count());
        }
    }

private:
    runtime_kind kind_;
};

/// Runs `test` once per runtime set-up, each in a section named after it.
template <class Test> void under_each_runtime(Test test) {
    SECTION("default runtime") {
        runtime_setup setup(runtime_kind::default_runtime);
        test();
        setup.check();
    }
    SECTION("one runtime thread") {
        runtime_setup setup(runtime_kind::one_thread);
        test();
        setup.check();
    }
    SECTION("own io_context") {
        runtime_setup setup(runtime_kind::own_io_context);
        test();
        setup.check();
    }
}

} // namespace

/// An async peer test: the body (a coroutine), run under each runtime set-up.
// NOTE: in the bodies, a lambda with captures is named before it goes into a co_await
// expression: g++ 12 destroys a closure temporary of a co_await full-expression twice (checked
// with a closure that counts its copies), which released a shared_ptr it held once too often.
#define PEERS_ASYNC_TEST(body, name)                                                               \
    static asio::awaitable<void> body();                                                           \
    TEST_CASE("peers: " name, "[peers]") {                                                         \
        under_each_runtime([] { pyasio::testing::run_async_test(&body); });                        \
    }                                                                                              \
    static asio::awaitable<void> body()

namespace {

// --- helpers ---

asio::awaitable<void> sleep_ms(long ms) {
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
    co_await timer.async_wait(asio::use_awaitable);
}

/// Defines Python code in __main__ and returns one of its names. Takes the GIL.
object define(const std::string& code, const std::string& name) {
    pyasio::gil_acquire gil;
    test::exec(code);
    return test::eval(name);
}

/// sleep(secs): pyo3-asyncio's `rust_sleeper.sleep`, an Asio timer on the runtime.
PyObject* cpp_sleep(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        auto d = std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::duration<double>(pyasio::from_python<double>(handle(arg))));
        return pyasio::future_into_py([d]() -> asio::awaitable<void> {
            asio::steady_timer timer(co_await asio::this_coro::executor, d);
            co_await timer.async_wait(asio::use_awaitable);
        });
    });
}

/// async_callback(cb): cvars_mod.async_callback: C++ work awaits cb() (called on the loop).
PyObject* cpp_async_callback(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        pyasio::async_function cb(pyasio::borrow(arg));
        return pyasio::future_into_py(
            [cb]() -> asio::awaitable<object> { co_return co_await pyasio::into_future(cb()); });
    });
}

PyMethodDef sleep_def = {"peers_sleep", cpp_sleep, METH_O, "an Asio timer"};
PyMethodDef async_callback_def = {"peers_async_callback", cpp_async_callback, METH_O,
                                  "C++ awaits cb()"};

/// A Python function for `def`. GIL held.
object cpp_function(PyMethodDef& def) {
    PyObject* f = PyCFunction_New(&def, nullptr);
    if (f == nullptr)
        throw pyasio::python_error::fetch();
    return pyasio::steal(f);
}

/// Puts peers_sleep, peers_async_callback and the Python helpers into __main__. GIL held.
void define_helpers() {
    object main = pyasio::import("__main__");
    pyasio::setattr(main, "peers_sleep", cpp_function(sleep_def));
    pyasio::setattr(main, "peers_async_callback", cpp_function(async_callback_def));
    test::exec("import asyncio\n"
               "def peers_finish(loop):\n"
               "    try:\n"
               "        tasks = asyncio.all_tasks(loop)\n"
               "        for task in tasks:\n"
               "            task.cancel()\n"
               "        if tasks:\n"
               "            loop.run_until_complete(\n"
               "                asyncio.gather(*tasks, return_exceptions=True))\n"
               "        loop.run_until_complete(loop.shutdown_asyncgens())\n"
               "        if hasattr(loop, 'shutdown_default_executor'):\n"
               "            loop.run_until_complete(loop.shutdown_default_executor())\n"
               "    finally:\n"
               "        loop.close()\n");
}

/// An outcome as text: "ok", "cancelled by python", "aborted", "python_error: <what>"...
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

/// How an awaitable operation ended, as describe() tells it.
template <class Op> asio::awaitable<std::string> outcome_of(Op op) {
    try {
        co_await std::move(op);
        co_return "ok";
    } catch (...) {
        co_return describe(std::current_exception());
    }
}

/// How a std::future ended (waited for with the GIL released, 10 s at most: "hung").
template <class T> std::string outcome_here(std::future<T>& f) {
    {
        pyasio::gil_release nogil; // the Catch2 thread holds the GIL in a plain test case
        if (f.wait_for(10s) != std::future_status::ready)
            return "hung";
    }
    try {
        f.get();
        return "ok";
    } catch (...) {
        return describe(std::current_exception());
    }
}

/// What a cancellation test watches of its C++ work.
struct work_flags {
    std::atomic<bool> started{false};
    std::atomic<bool> completed{false};
    std::atomic<bool> aborted{false};
};

/// A 60 s timer wait that records how it went: within a test only a cancellation ends it (a
/// 5 ms one raced the cancellation on a loaded host).
asio::awaitable<void> flagged_wait(std::shared_ptr<work_flags> flags) {
    flags->started = true;
    try {
        co_await sleep_ms(60'000);
    } catch (const std::system_error& e) {
        if (e.code() == asio::error::operation_aborted)
            flags->aborted = true;
        throw;
    }
    flags->completed = true;
}

/// The work was dropped: if its wait began, it ended cancelled; and it does not complete later.
asio::awaitable<void> expect_never_completed(std::shared_ptr<work_flags> flags) {
    for (int i = 0; i < 10'000 && flags->started && !flags->aborted && !flags->completed; ++i)
        co_await sleep_ms(1);
    CHECK((!flags->started || flags->aborted));
    co_await sleep_ms(20);
    CHECK_FALSE(flags->completed);
}

/// expect_never_completed from a plain test case (GIL held).
void expect_never_completed_here(const std::shared_ptr<work_flags>& flags) {
    pyasio::gil_release nogil;
    for (int i = 0; i < 10'000 && flags->started && !flags->aborted && !flags->completed; ++i)
        std::this_thread::sleep_for(1ms);
    CHECK((!flags->started || flags->aborted));
    std::this_thread::sleep_for(20ms);
    CHECK_FALSE(flags->completed);
}

/// The harness's own task locals (pyasio::run's, the default ones): what into_future falls back
/// to where C++ code has none of its own, as pyo3-asyncio's harness runs its tests in its scope.
pyasio::task_locals harness_locals() {
    std::optional<pyasio::task_locals> locals = pyasio::default_task_locals();
    REQUIRE(locals.has_value());
    return *locals;
}

/// The harness's loop (pyasio::run's, running on the main thread): pyo3-asyncio's sync tests
/// get it as their `event_loop` argument, its async tests from get_current_loop(). GIL held.
// NOTE: not pyasio::get_current_loop(): a test body has no task locals of its own and runs no
// loop, and get_current_loop() does not fall back to the default locals (docs/runtime.md).
object harness_loop() {
    object loop = harness_locals().loop();
    REQUIRE(loop);
    return loop;
}

/// pyo3-asyncio's TaskLocals::new(event_loop), made where its tests make it: on a thread that is
/// not the loop's (a runtime thread, or the Catch2 thread), with pyasio::task_locals::of(loop).
/// GIL held.
pyasio::task_locals new_task_locals(handle loop) {
    pyasio::task_locals locals = pyasio::task_locals::of(loop);
    CHECK_FALSE(pyasio::loop_executor(locals).running_in_this_thread()); // not the loop's thread
    CHECK(locals.loop().ptr() == loop.ptr());
    return locals;
}

/// new_task_locals(harness_loop()), from a thread that does not hold the GIL (it takes it).
pyasio::task_locals new_task_locals_for_harness_loop() {
    pyasio::gil_acquire gil;
    return new_task_locals(harness_loop());
}

} // namespace

// --- pyo3-asyncio's tests (tokio_asyncio/mod.rs, test_async_std_asyncio.rs) ---

PEERS_ASYNC_TEST(test_future_into_py, "test_future_into_py") {
    // C++ awaits a Python coroutine that awaits C++ (C++ -> Python -> C++)
    object sleep_for = define("async def sleep_for_1ms(sleep_for):\n"
                              "    await sleep_for(0.001)\n",
                              "sleep_for_1ms");
    object coro;
    {
        pyasio::gil_acquire gil;
        coro = pyasio::call(sleep_for, cpp_function(sleep_def));
        sleep_for.reset();
    }
    co_await pyasio::into_future<void>(std::move(coro));
}

PEERS_ASYNC_TEST(test_async_sleep, "test_async_sleep") {
    co_await sleep_ms(1);
    object coro;
    {
        pyasio::gil_acquire gil;
        coro = pyasio::call(pyasio::getattr(pyasio::import("asyncio"), "sleep"), 0.001);
    }
    co_await pyasio::into_future<void>(std::move(coro));
}

TEST_CASE("peers: test_blocking_sleep", "[peers]") {
    // A test that blocks a thread other than the loop's (the GIL released) holds up neither
    // the loop nor C++ awaiting Python meanwhile.
    under_each_runtime([] {
        object coro = pyasio::call(define("import asyncio\n"
                                          "async def py_sleep(d):\n"
                                          "    await asyncio.sleep(d)\n",
                                          "py_sleep"),
                                   0.001);
        std::future<void> slept =
            pyasio::into_future<void>(std::move(coro), harness_locals(), asio::use_future);
        {
            pyasio::gil_release nogil;
            std::this_thread::sleep_for(2ms);
        }
        CHECK(outcome_here(slept) == "ok");
    });
}

PEERS_ASYNC_TEST(test_into_future, "test_into_future") {
    // common::test_into_future(get_current_loop()): on this runtime thread, C++ names the
    // harness's loop, which runs on the main thread (TaskLocals::new(event_loop):
    // task_locals::of(loop)), and awaits a coroutine there
    pyasio::task_locals locals = new_task_locals_for_harness_loop();
    object py_sleep = define("import asyncio\n"
                             "async def py_sleep(d):\n"
                             "    await asyncio.sleep(d)\n",
                             "py_sleep");
    object coro; // made here, under the GIL, as pyo3-asyncio makes it
    {
        pyasio::gil_acquire gil;
        coro = pyasio::call(py_sleep, 0.001);
    }
    co_await pyasio::into_future<void>(std::move(coro), locals);
    // and called on the loop's thread (async_function), on the same locals
    pyasio::async_function on_loop(std::move(py_sleep));
    co_await pyasio::into_future<void>(on_loop(0.001), locals);
}

PEERS_ASYNC_TEST(test_other_awaitables, "test_other_awaitables") {
    // common::test_other_awaitables(get_current_loop()): C++ awaits an asyncio.Future (an
    // executor's), not a coroutine, on task locals it names on this runtime thread
    pyasio::task_locals locals = new_task_locals_for_harness_loop();
    auto future = std::make_shared<object>();
    // NOTE: the peer calls loop.run_in_executor on the runtime thread; asyncio's loop methods
    // are not thread-safe, so the port calls it on the loop's thread, through the loop_executor
    // of the same locals (get_current_loop() is their loop there)
    auto make_future = [future]() -> asio::awaitable<void> {
        object loop = pyasio::get_current_loop();
        object sleep = pyasio::call(pyasio::getattr(pyasio::import("functools"), "partial"),
                                    pyasio::getattr(pyasio::import("time"), "sleep"), 0.001);
        *future = pyasio::call_method(loop, "run_in_executor", handle(Py_None), sleep);
        co_return;
    };
    co_await asio::co_spawn(pyasio::loop_executor(locals), std::move(make_future),
                            asio::use_awaitable);
    {
        pyasio::gil_acquire gil;
        object future_type = pyasio::getattr(pyasio::import("asyncio"), "Future");
        CHECK(PyObject_IsInstance(future->ptr(), future_type.ptr()) == 1);
    }
    co_await pyasio::into_future<void>(std::move(*future), locals);
}

PEERS_ASYNC_TEST(test_local_future_into_py, "test_local_future_into_py") {
    // async-std's form: pyo3-asyncio's local_future_into_py is future_into_py on the loop's
    // executor; its work keeps state that only one thread may use ("Rc").
    pyasio::task_locals locals = harness_locals();
    auto rc = std::make_shared<long>(1);
    object future;
    {
        pyasio::gil_acquire gil; // no loop runs on this thread: a LazyFuture
        future = pyasio::future_into_py(
            [rc]() -> asio::awaitable<long> {
                if (!pyasio::gil::held())
                    throw std::logic_error("local work off the loop's thread");
                co_await sleep_ms(*rc);
                co_return *rc;
            },
            pyasio::loop_executor(locals));
    }
    long result = co_await pyasio::into_future<long>(std::move(future), locals);
    CHECK(result == 1);
}

TEST_CASE("peers: test_local_future_into_py from a plain thread", "[peers]") {
    // tokio's form: a sync test on a thread that is not the loop's, given the loop
    // (`event_loop`): local_future_into_py_with_locals(TaskLocals::new(event_loop), work), then
    // into_future_with_locals(TaskLocals::new(event_loop), future), both locals made here
    under_each_runtime([] {
        object event_loop = harness_loop();
        auto rc = std::make_shared<long>(1);
        object future = pyasio::future_into_py(
            [rc]() -> asio::awaitable<long> {
                if (!pyasio::gil::held())
                    throw std::logic_error("local work off the loop's thread");
                co_await sleep_ms(*rc);
                co_return *rc;
            },
            pyasio::loop_executor(new_task_locals(event_loop)));
        std::future<long> result = pyasio::into_future<long>(
            std::move(future), new_task_locals(event_loop), asio::use_future);
        CHECK(outcome_here(result) == "ok");
    });
}

PEERS_ASYNC_TEST(test_panic, "test_panic") {
    // pyasio has no RustPanic: the C++ exception arrives as the matching Python exception
    object future;
    {
        pyasio::gil_acquire gil;
        future = pyasio::future_into_py([]() -> asio::awaitable<void> {
            throw std::runtime_error("this panic was intentional!");
            co_return;
        });
    }
    std::string outcome = co_await outcome_of(pyasio::into_future<void>(std::move(future)));
    CHECK(outcome == "python_error: RuntimeError: this panic was intentional!");
}

PEERS_ASYNC_TEST(test_cancel, "test_cancel") {
    // The future is cancelled (by C++, through Python's API) before C++ awaits it: C++ gets
    // the cancellation, and the C++ work behind the future is dropped.
    auto flags = std::make_shared<work_flags>();
    object future;
    {
        pyasio::gil_acquire gil; // no loop runs on this thread: a LazyFuture
        future = pyasio::future_into_py([flags] { return flagged_wait(flags); });
        CHECK(pyasio::call_method(future, "cancel").ptr() == Py_True);
    }
    std::string outcome = co_await outcome_of(pyasio::into_future<void>(std::move(future)));
    CHECK(outcome == "cancelled by python");
    co_await expect_never_completed(flags);
}

PEERS_ASYNC_TEST(test_cancel_on_the_loop, "test_cancel of a future made on the loop") {
    // test_cancel with the future made on the loop's thread (an asyncio.Future)
    pyasio::task_locals locals = harness_locals();
    auto flags = std::make_shared<work_flags>();
    auto future = std::make_shared<object>();
    auto make_future = [flags, future]() -> asio::awaitable<void> {
        *future = pyasio::future_into_py([flags] { return flagged_wait(flags); });
        pyasio::call_method(*future, "cancel");
        co_return;
    };
    co_await asio::co_spawn(pyasio::loop_executor(locals), std::move(make_future),
                            asio::use_awaitable);
    std::string outcome =
        co_await outcome_of(pyasio::into_future<void>(std::move(*future), locals));
    CHECK(outcome == "cancelled by python");
    co_await expect_never_completed(flags);
}

TEST_CASE("peers: test_local_cancel", "[peers]") {
    // tokio's form, a sync test given the loop: on this thread (not the loop's), locals made
    // with TaskLocals::new(event_loop) are made current (scope_local: a task_locals_scope); a
    // future whose work runs on the loop's thread (local_future_into_py, on the current locals)
    // is cancelled, then awaited by C++ on the current locals
    under_each_runtime([] {
        pyasio::task_locals_scope scope(new_task_locals(harness_loop()));
        auto flags = std::make_shared<work_flags>();
        object future =
            pyasio::future_into_py([flags] { return flagged_wait(flags); },
                                   pyasio::loop_executor(pyasio::current_task_locals().value()));
        CHECK(pyasio::call_method(future, "cancel").ptr() == Py_True);
        std::future<void> awaited = pyasio::into_future<void>(std::move(future), asio::use_future);
        CHECK(outcome_here(awaited) == "cancelled by python");
        expect_never_completed_here(flags);
    });
}

TEST_CASE("peers: test_multiple_asyncio_run", "[peers]") {
    // On a thread that is not the loop's, while the harness's pyasio::run runs: pyasio::run
    // twice, then twice a new loop on which Python awaits C++. The harness's interpreter and
    // runtime go on.
    under_each_runtime([] {
        pyasio::task_locals harness = harness_locals();
        pyasio::run_options options;
        options.handle_sigint = false;
        for (long i = 1; i <= 2; ++i) {
            long r = pyasio::run(
                [i]() -> asio::awaitable<long> {
                    co_await sleep_ms(1);
                    co_return i;
                },
                options);
            CHECK(r == i);
        }
        REQUIRE(Py_IsInitialized());
        CHECK(pyasio::default_task_locals() == harness); // the harness's loop is the default again
        define_helpers();
        for (int i = 0; i < 2; ++i)
            test::exec("async def main():\n"
                       "    return await peers_sleep(0.001)\n"
                       "loop = asyncio.new_event_loop()\n"
                       "try:\n"
                       "    assert loop.run_until_complete(main()) is None\n"
                       "finally:\n"
                       "    peers_finish(loop)\n");
        long after = pyasio::block_on([]() -> asio::awaitable<long> {
            co_await sleep_ms(1);
            co_return 7;
        });
        CHECK(after == 7);
    });
}

PEERS_ASYNC_TEST(test_async_gen_v1, "test_async_gen_v1") {
    pyasio::async_function gen(define("import asyncio\n"
                                      "async def gen():\n"
                                      "    for i in range(10):\n"
                                      "        await asyncio.sleep(0.0001)\n"
                                      "        yield i\n",
                                      "gen"));
    auto stream = pyasio::into_stream<int>(gen(), 4);
    std::vector<int> items;
    while (std::optional<int> item = co_await stream.next())
        items.push_back(*item);
    CHECK(items == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
}

PEERS_ASYNC_TEST(test_async_gen_v2, "test_async_gen_v2") {
    // the items as Python objects, converted afterwards
    pyasio::async_function gen(define("import asyncio\n"
                                      "async def gen():\n"
                                      "    for i in range(10):\n"
                                      "        await asyncio.sleep(0.0001)\n"
                                      "        yield i\n",
                                      "gen"));
    auto stream = pyasio::into_stream(gen(), 4);
    std::vector<object> objects;
    while (std::optional<object> item = co_await stream.next())
        objects.push_back(std::move(*item));
    std::vector<int> items;
    {
        pyasio::gil_acquire gil;
        for (object& o : objects)
            items.push_back(pyasio::from_python<int>(o));
        objects.clear();
    }
    CHECK(items == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
}

PEERS_ASYNC_TEST(test_async_gen_full_buffer, "test_async_gen_full_buffer") {
    // pyo3-async-runtimes: a generator much faster than the reader, more items than the window
    pyasio::async_function gen(define("async def gen(n):\n"
                                      "    for i in range(n):\n"
                                      "        yield i\n",
                                      "gen"));
    auto stream = pyasio::into_stream<int>(gen(1000), 10);
    std::vector<int> items;
    while (std::optional<int> item = co_await stream.next())
        items.push_back(*item);
    std::vector<int> expected(1000);
    for (int i = 0; i < 1000; ++i)
        expected[i] = i;
    CHECK(items == expected);
}

TEST_CASE("peers: test_contextvars", "[peers]") {
    // The context of Python's call into C++ is the one the coroutine C++ awaits later runs in;
    // twice, each with asyncio.run, on a thread that is not the harness loop's.
    under_each_runtime([] {
        define_helpers();
        for (int i = 0; i < 2; ++i)
            test::exec("import contextvars\n"
                       "cx = contextvars.ContextVar('cx')\n"
                       "async def contextvars_test():\n"
                       "    assert cx.get() == 'foobar'\n"
                       "async def main():\n"
                       "    cx.set('foobar')\n"
                       "    await peers_async_callback(contextvars_test)\n"
                       "asyncio.run(main())\n");
    });
}

TEST_CASE("peers: test_race_condition_regression", "[peers]") {
    // Python cancels a C++ timer's future as the timer completes it: the completion must never
    // reach the cancelled future (InvalidStateError in the loop's exception handler). pyo3:
    // 1000 x 100 ms; here 100 x 1 ms, each on a new loop in debug mode.
    under_each_runtime([] {
        define_helpers();
        object race =
            define("import random\n"
                   "def race(n):\n"
                   "    triggered = []\n"
                   "    async def trigger_race_condition(delay):\n"
                   "        future = asyncio.wrap_future(peers_sleep(0.001))\n"
                   "        await asyncio.sleep(delay)\n"
                   "        future.cancel()\n"
                   "    rng = random.Random(18)\n"
                   "    for _ in range(n):\n"
                   "        loop = asyncio.new_event_loop()\n"
                   "        loop.set_debug(True)\n"
                   "        loop.set_exception_handler(\n"
                   "            lambda loop, context: triggered.append(context))\n"
                   "        try:\n"
                   "            loop.run_until_complete(\n"
                   "                trigger_race_condition(rng.uniform(0.00099, 0.00101)))\n"
                   "        finally:\n"
                   "            peers_finish(loop)\n"
                   "    return [str(c.get('message')) for c in triggered]\n",
                   "race");
        auto triggered = pyasio::from_python<std::vector<std::string>>(pyasio::call(race, 100));
        CHECK(triggered.empty());
    });
}

TEST_CASE("peers: test_run_forever", "[peers]") {
    // A loop in run_forever (on this thread) is stopped by C++ on the runtime, which takes the
    // GIL and calls loop.call_soon_threadsafe(loop.stop).
    under_each_runtime([] {
        define_helpers();
        object asyncio = pyasio::import("asyncio");
        object loop = pyasio::call(pyasio::getattr(asyncio, "new_event_loop"));
        pyasio::call(pyasio::getattr(asyncio, "set_event_loop"), loop);
        object guard_fired = test::eval("[]");
        object guard = define("def peers_guard(loop, fired):\n" // a hang guard only
                              "    fired.append(True)\n"
                              "    loop.stop()\n",
                              "peers_guard");
        pyasio::call_method(loop, "call_later", 10.0, guard, loop, guard_fired);
        auto held = std::make_shared<object>(loop);
        auto stopped = std::make_shared<std::promise<std::string>>();
        std::future<std::string> outcome = stopped->get_future();
        asio::co_spawn(
            pyasio::default_executor(),
            [held]() -> asio::awaitable<void> {
                co_await sleep_ms(1);
                pyasio::gil_acquire gil;
                pyasio::call_method(*held, "call_soon_threadsafe", pyasio::getattr(*held, "stop"));
                held->reset();
            },
            [stopped](const std::exception_ptr& e) { stopped->set_value(describe(e)); });
        pyasio::call_method(loop, "run_forever");
        CHECK(PyObject_Length(guard_fired.ptr()) == 0);
        std::string how = "hung";
        {
            pyasio::gil_release nogil;
            if (outcome.wait_for(10s) == std::future_status::ready)
                how = outcome.get();
        }
        CHECK(how == "ok");
        pyasio::call(pyasio::getattr(asyncio, "set_event_loop"), handle(Py_None));
        pyasio::call(test::eval("peers_finish"), loop);
    });
}

TEST_CASE("peers: test_uvloop", "[peers]") {
    // The loop of pyasio::run comes from asyncio.new_event_loop(), so uvloop's policy applies;
    // run_until_complete runs C++ work on a uvloop loop given to it.
    under_each_runtime([] {
        object uvloop = pyasio::steal(PyImport_ImportModule("uvloop"));
        if (!uvloop) {
            PyErr_Clear();
            WARN("uvloop is not installed for this Python (Debian: python3-uvloop): skipped");
            return;
        }
        auto loop_type = []() -> asio::awaitable<std::string> {
            co_await sleep_ms(1);
            std::string name;
            {
                pyasio::gil_acquire gil;
                object loop = pyasio::current_task_locals()->loop();
                object type = pyasio::borrow(reinterpret_cast<PyObject*>(Py_TYPE(loop.ptr())));
                name = pyasio::str(pyasio::getattr(type, "__module__")) + "." +
                       pyasio::str(pyasio::getattr(type, "__qualname__"));
            }
            co_return name;
        };
        object loop = pyasio::call(pyasio::getattr(uvloop, "new_event_loop"));
        CHECK(pyasio::run_until_complete(loop, loop_type) == "uvloop.Loop");
        define_helpers();
        pyasio::call(test::eval("peers_finish"), loop);

        object asyncio = pyasio::import("asyncio");
        object policy = pyasio::call(pyasio::getattr(asyncio, "get_event_loop_policy"));
        pyasio::call(pyasio::getattr(asyncio, "set_event_loop_policy"),
                     pyasio::call(pyasio::getattr(uvloop, "EventLoopPolicy")));
        std::string type;
        try {
            pyasio::run_options options;
            options.handle_sigint = false;
            type = pyasio::run(loop_type, options);
        } catch (...) {
            pyasio::call(pyasio::getattr(asyncio, "set_event_loop_policy"), policy);
            throw;
        }
        pyasio::call(pyasio::getattr(asyncio, "set_event_loop_policy"), policy);
        CHECK(type == "uvloop.Loop");
    });
}

// --- the doc tests that run (src/tokio.rs, src/async_std.rs) ---

TEST_CASE("peers: run_until_complete doc test", "[peers]") {
    // C++ work runs to completion on a loop that is not running, which is left open
    under_each_runtime([] {
        define_helpers();
        object loop = pyasio::call(pyasio::getattr(pyasio::import("asyncio"), "new_event_loop"));
        pyasio::async_function asyncio_sleep(pyasio::getattr(pyasio::import("asyncio"), "sleep"));
        long r = pyasio::run_until_complete(loop, [asyncio_sleep]() -> asio::awaitable<long> {
            co_await sleep_ms(1);
            co_await pyasio::into_future<void>(asyncio_sleep(0.001)); // on that loop
            co_return 1;
        });
        CHECK(r == 1);
        CHECK(pyasio::call_method(loop, "is_closed").ptr() == Py_False);
        pyasio::call(test::eval("peers_finish"), loop);
    });
}

// --- src/testing.rs: the test attributes compile, for async and for sync tests ---

PEERS_ASYNC_TEST(test_async_test_compiles, "test_async_test_compiles") {
    co_return;
}

TEST_CASE("peers: test_sync_test_compiles", "[peers]") {
    under_each_runtime([] {});
}

// --- pyawaitable ---

TEST_CASE("peers: test_add_await_expr", "[peers]") {
    // pyawaitable: a NULL expression fails at once; pyasio: into_future of an empty object is a
    // type_error at the call, before anything runs
    under_each_runtime([] {
        bool called = false;
        try {
            pyasio::into_future(
                object(), harness_locals(),
                [&called](const std::exception_ptr&, const object&) { called = true; });
            FAIL("no type_error");
        } catch (const pyasio::type_error& e) {
            CHECK(std::string(e.what()).find("got no object") != std::string::npos);
        }
        CHECK_FALSE(called);
    });
}
