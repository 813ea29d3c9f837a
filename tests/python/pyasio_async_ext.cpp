// SPDX-License-Identifier: BSL-1.0
// Async functions exposed to Python with pyasio::future_into_py; used by test_future_into_py.py.
#include <pyasio.hpp>

#include "wake_probe.hpp"

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

namespace {
using pyasio::handle;

std::atomic<long> started{0};        // coroutine bodies that began
std::atomic<long> aborted{0};        // waits that ended with operation_aborted
std::atomic<long> completed{0};      // waits that ran to the end
std::atomic<long> paused_started{0}; // coroutine bodies that began on the paused context
std::atomic<long> timers_freed{0};   // timers of timer_wait destroyed (their wait ended)

/// Waits ms on a timer of the coroutine's executor, counting how it ended.
asio::awaitable<void> wait_ms(long ms, std::atomic<long>& started_counter = started) {
    started_counter.fetch_add(1);
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
    try {
        co_await timer.async_wait(asio::use_awaitable);
    } catch (const std::system_error& e) {
        if (e.code() == asio::error::operation_aborted)
            aborted.fetch_add(1);
        throw;
    }
    completed.fetch_add(1);
}

PyObject* noop(PyObject*, PyObject*) {
    return pyasio::entry_point(
        [] { return pyasio::future_into_py([]() -> asio::awaitable<void> { co_return; }); });
}

/// echo_<T>(x): x converted to T at the call, returned by C++ work on the runtime.
template <class T> PyObject* echo(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        T value = pyasio::from_python<T>(handle(arg));
        return pyasio::future_into_py(
            [value = std::move(value)]() -> asio::awaitable<T> { co_return value; });
    });
}

PyObject* sleep_ms(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        long ms = pyasio::from_python<long>(handle(arg));
        return pyasio::future_into_py([ms] { return wait_ms(ms); });
    });
}

/// A user's execution context that runs only once resumed: work queued for it waits, and must
/// not hold up work for the default runtime. get(1): one thread, so the context runs its
/// handlers in the order posted; get(2): two threads.
struct paused_context {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    std::vector<std::thread> threads;
    std::size_t thread_count;

    explicit paused_context(std::size_t n) : thread_count(n) {}
    ~paused_context() {
        work.reset();
        io.stop();
        for (auto& t : threads)
            t.join();
    }
    static paused_context& get(std::size_t n) {
        static paused_context one(1), two(2);
        return n == 1 ? one : two;
    }
    void resume() {
        while (threads.size() < thread_count)
            threads.emplace_back([this] { io.run(); });
    }
};

PyObject* sleep_ms_paused(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        long ms = pyasio::from_python<long>(handle(arg));
        return pyasio::future_into_py([ms] { return wait_ms(ms, paused_started); },
                                      paused_context::get(1).io.get_executor());
    });
}

PyObject* noop_paused(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        return pyasio::future_into_py([]() -> asio::awaitable<void> { co_return; },
                                      paused_context::get(1).io.get_executor());
    });
}

PyObject* resume_paused(PyObject*, PyObject*) {
    return pyasio::entry_point([] { paused_context::get(1).resume(); });
}

/// meet_paused(n): work on the two-thread paused context that waits (busy, up to 5 s) until n
/// such works have started; True if they all met. Started in one batch, n = 2 meet only if the
/// batch's works start on different threads. Counts for the whole process: call it n times.
PyObject* meet_paused(PyObject*, PyObject* arg) {
    static std::atomic<long> arrived{0};
    return pyasio::entry_point([&] {
        long n = pyasio::from_python<long>(handle(arg));
        return pyasio::future_into_py(
            [n]() -> asio::awaitable<bool> {
                arrived.fetch_add(1);
                auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
                while (arrived.load() < n && std::chrono::steady_clock::now() < give_up) {
                }
                co_return arrived.load() >= n;
            },
            paused_context::get(2).io.get_executor());
    });
}

PyObject* resume_paused_pair(PyObject*, PyObject*) {
    return pyasio::entry_point([] { paused_context::get(2).resume(); });
}

/// batch_then_discard(n): n works queued as one batch for an io_context that runs one handler
/// (the batch's start, which posts all runs but the first) and is then destroyed; the futures.
/// Works whose run was posted but never ran must end cancelled.
PyObject* batch_then_discard(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        long n = pyasio::from_python<long>(handle(arg));
        auto io = std::make_unique<asio::io_context>(1);
        std::vector<pyasio::object> futures;
        for (long i = 0; i < n; ++i)
            futures.push_back(pyasio::future_into_py(
                [i]() -> asio::awaitable<long> { co_return i; }, io->get_executor()));
        io->run_one();
        io.reset();
        return pyasio::to_python(futures);
    });
}

/// context_destroyed_midway(): work that waits on a 60 s timer of an io_context of its own,
/// which is destroyed while the work waits; the future.
PyObject* context_destroyed_midway(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        auto io = std::make_unique<asio::io_context>(1);
        pyasio::object future = pyasio::future_into_py(
            []() -> asio::awaitable<void> {
                asio::steady_timer timer(co_await asio::this_coro::executor,
                                         std::chrono::seconds(60));
                co_await timer.async_wait(asio::use_awaitable);
            },
            io->get_executor());
        io->run_for(std::chrono::milliseconds(50)); // the work starts and waits
        io.reset();
        return future;
    });
}

/// A user's io_context that a thread of the user's runs once, with no work guard: run()
/// returns as soon as the context has no work left.
struct run_once_context {
    asio::io_context io{1};
    std::atomic<bool> work_ended{false};
    std::atomic<bool> run_returned_first{false}; // run() returned before the work ended
    std::thread thread;
};
run_once_context* run_once = nullptr; // the last one made
// NOTE: every one is kept to the process's end (the states of its work may outlive a test),
// reachable from here: a vector never destroyed (a static one is, at exit, before the leak check)
std::vector<run_once_context*>& run_once_contexts = *new std::vector<run_once_context*>;

/// await_on_run_once_context(fn): work on a fresh run_once_context that awaits fn() (Python)
/// while nothing else is queued on that context; completes with fn()'s result. The context's
/// thread starts at once.
PyObject* await_on_run_once_context(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        if (run_once != nullptr && run_once->thread.joinable())
            run_once->thread.join();
        run_once_contexts.reserve(run_once_contexts.size() + 1);
        run_once = new run_once_context;
        run_once_contexts.push_back(run_once);
        run_once_context* c = run_once;
        pyasio::object future = pyasio::future_into_py(
            [fn = pyasio::async_function(pyasio::borrow(arg)), c]() -> asio::awaitable<long> {
                long result = co_await pyasio::into_future<long>(fn());
                c->work_ended = true;
                co_return result;
            },
            c->io.get_executor());
        c->thread = std::thread([c] {
            c->io.run();
            c->run_returned_first = !c->work_ended.load();
        });
        return future;
    });
}

/// run_once_context_returned_first(): joins the last run_once_context's thread; whether its
/// run() returned before the work ended (it must not: the work was pending there).
PyObject* run_once_context_returned_first(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        if (run_once == nullptr || !run_once->thread.joinable())
            throw std::logic_error("call await_on_run_once_context first");
        pyasio::gil_release nogil;
        run_once->thread.join();
        return run_once->run_returned_first.load();
    });
}

/// configure_runtime(threads): pyasio::configure_runtime, before this module's first work.
PyObject* configure_runtime(PyObject*, PyObject* arg) {
    return pyasio::entry_point(
        [&] { pyasio::configure_runtime(pyasio::from_python<std::size_t>(handle(arg))); });
}

/// bad_utf8(): work on the runtime whose result, a std::string, is not UTF-8.
PyObject* bad_utf8(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        return pyasio::future_into_py(
            []() -> asio::awaitable<std::string> { co_return std::string("caf\xe9"); });
    });
}

PyObject* fail(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        std::string msg = pyasio::from_python<std::string>(handle(arg));
        return pyasio::future_into_py([msg]() -> asio::awaitable<int> {
            throw std::invalid_argument(msg);
            co_return 0;
        });
    });
}

PyObject* refuse(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        return pyasio::future_into_py([]() -> asio::awaitable<void> {
            throw std::system_error(ECONNREFUSED, std::system_category(), "connect");
            co_return;
        });
    });
}

/// connect_closed_port(): a real Asio connect to a port nobody listens on (its error code is in
/// Asio's own category, not std::system_category()).
PyObject* connect_closed_port(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        return pyasio::future_into_py([]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            // NOTE: the port stays bound (not listening) through the connect: a port closed
            // before it could be the connecting socket's own ephemeral port, and a connect to
            // itself is not refused (1 in ~10 runs saw ECONNRESET)
            asio::ip::tcp::acceptor bound(ex);
            bound.open(asio::ip::tcp::v4());
            bound.bind({asio::ip::address_v4::loopback(), 0});
            asio::ip::tcp::socket socket(ex);
            co_await socket.async_connect(bound.local_endpoint(), asio::use_awaitable);
        });
    });
}

/// raise_later(exc): C++ work that throws the given Python exception object.
PyObject* raise_later(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        pyasio::python_error error{pyasio::borrow(arg)};
        return pyasio::future_into_py([error]() -> asio::awaitable<void> {
            throw error;
            co_return;
        });
    });
}

/// timer_wait(ms): an Asio initiation (a timer's async_wait) given directly.
PyObject* timer_wait(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        long ms = pyasio::from_python<long>(handle(arg));
        std::shared_ptr<asio::steady_timer> timer(
            new asio::steady_timer(pyasio::default_executor(), std::chrono::milliseconds(ms)),
            [](asio::steady_timer* t) {
                delete t;
                timers_freed.fetch_add(1);
            });
        return pyasio::future_into_py([timer](auto&& token) {
            return timer->async_wait(std::forward<decltype(token)>(token));
        });
    });
}

/// initiation_throws(): an Asio initiation that throws before it starts the wait (and so
/// destroys the completion handler unrun).
PyObject* initiation_throws(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        auto timer = std::make_shared<asio::steady_timer>(pyasio::default_executor());
        return pyasio::future_into_py([timer](auto&& token) {
            if (timer)
                throw std::invalid_argument("the initiation refused before the wait");
            return timer->async_wait(std::forward<decltype(token)>(token));
        });
    });
}

asio::awaitable<std::string> greet(std::string name) {
    co_return "hello " + name;
}

/// greet(name): an asio::awaitable given directly.
PyObject* greet_py(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        return pyasio::future_into_py(greet(pyasio::from_python<std::string>(handle(arg))));
    });
}

/// bad_result(): the result cannot be converted to Python (invalid UTF-8).
PyObject* bad_result(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        return pyasio::future_into_py(
            []() -> asio::awaitable<std::string> { co_return std::string("bad \xff"); });
    });
}

/// task_locals_here(): the task locals current inside the C++ work, as (loop, context).
PyObject* task_locals_here(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        return pyasio::future_into_py([]() -> asio::awaitable<std::optional<pyasio::task_locals>> {
            // after a hop through a timer, on whichever runtime thread resumes
            asio::steady_timer timer(co_await asio::this_coro::executor,
                                     std::chrono::milliseconds(1));
            co_await timer.async_wait(asio::use_awaitable);
            co_return pyasio::current_task_locals();
        });
    });
}

/// task_locals_in_initiation(): the task locals current when an initiation is called.
PyObject* task_locals_in_initiation(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        return pyasio::future_into_py([](auto&& token) {
            return asio::async_initiate<decltype(token), void(std::optional<pyasio::task_locals>)>(
                [](auto handler) { std::move(handler)(pyasio::current_task_locals()); }, token);
        });
    });
}

PyObject* capture_task_locals(PyObject*, PyObject*) {
    return pyasio::entry_point([] { return pyasio::task_locals::capture(); });
}

PyObject* has_task_locals(PyObject*, PyObject*) {
    return pyasio::entry_point([] { return pyasio::current_task_locals().has_value(); });
}

PyObject* stats(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        return std::map<std::string, long>{
            {"started", started.load()},
            {"aborted", aborted.load()},
            {"completed", completed.load()},
            {"paused_started", paused_started.load()},
            {"timers_freed", timers_freed.load()},
            {"bridges", static_cast<long>(pyasio::detail::bridge_registry::instance().size())}};
    });
}

/// bridge_counters(): (pushes, drains, wake mode) of the running loop's bridge.
PyObject* bridge_counters(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        auto b = pyasio::detail::bridge_registry::instance().bridge_for(pyasio::get_running_loop());
        return std::tuple(
            b->pushes(), b->drains(),
            std::string(b->wake_mode() == pyasio::loop_wake::reader ? "reader" : "threadsafe"));
    });
}

using record = std::tuple<int, std::string, std::vector<int>>;
using table = std::map<std::string, int>;
#define PYASIO_TEST_ECHO(name, type)                                                               \
    { name, echo<type>, METH_O, "echo through C++" }

PyMethodDef methods[] = {
    {"noop", noop, METH_NOARGS, "completes with None on the runtime"},
    PYASIO_TEST_ECHO("echo_int", std::int64_t),
    PYASIO_TEST_ECHO("echo_bool", bool),
    PYASIO_TEST_ECHO("echo_float", double),
    PYASIO_TEST_ECHO("echo_str", std::string),
    PYASIO_TEST_ECHO("echo_bytes", std::vector<std::byte>),
    PYASIO_TEST_ECHO("echo_list", std::vector<double>),
    PYASIO_TEST_ECHO("echo_optional", std::optional<std::string>),
    PYASIO_TEST_ECHO("echo_tuple", record),
    PYASIO_TEST_ECHO("echo_dict", table),
    {"sleep_ms", sleep_ms, METH_O, "waits on an Asio timer"},
    {"sleep_ms_paused", sleep_ms_paused, METH_O, "sleep_ms on a context that waits for resume"},
    {"noop_paused", noop_paused, METH_NOARGS, "noop on the paused context"},
    {"resume_paused", resume_paused, METH_NOARGS, "starts the paused context's thread"},
    {"meet_paused", meet_paused, METH_O, "waits on the two-thread paused context for n works"},
    {"resume_paused_pair", resume_paused_pair, METH_NOARGS, "starts the two-thread paused context"},
    {"await_on_run_once_context", await_on_run_once_context, METH_O,
     "work on a user's io_context run once without a work guard, awaiting fn()"},
    {"run_once_context_returned_first", run_once_context_returned_first, METH_NOARGS,
     "whether that io_context's run() returned before the work ended"},
    {"context_destroyed_midway", context_destroyed_midway, METH_NOARGS,
     "work whose io_context is destroyed while it waits"},
    {"configure_runtime", configure_runtime, METH_O, "pyasio::configure_runtime(threads)"},
    {"bad_utf8", bad_utf8, METH_NOARGS, "work whose std::string result is not UTF-8"},
    {"batch_then_discard", batch_then_discard, METH_O,
     "a batch of n works on a context that runs one handler and is destroyed"},
    {"fail", fail, METH_O, "throws std::invalid_argument(msg) on the runtime"},
    {"refuse", refuse, METH_NOARGS, "throws std::system_error(ECONNREFUSED)"},
    {"connect_closed_port", connect_closed_port, METH_NOARGS, "an Asio connect that is refused"},
    {"raise_later", raise_later, METH_O, "throws the given Python exception from C++"},
    {"timer_wait", timer_wait, METH_O, "an Asio initiation given directly"},
    {"initiation_throws", initiation_throws, METH_NOARGS, "an initiation that throws"},
    {"greet", greet_py, METH_O, "an asio::awaitable given directly"},
    {"bad_result", bad_result, METH_NOARGS, "a result that cannot be converted"},
    {"task_locals_here", task_locals_here, METH_NOARGS, "current_task_locals() inside work"},
    {"task_locals_in_initiation", task_locals_in_initiation, METH_NOARGS,
     "current_task_locals() when an initiation is called"},
    {"has_task_locals", has_task_locals, METH_NOARGS, "current_task_locals() outside work"},
    {"capture_task_locals", capture_task_locals, METH_NOARGS, "task_locals::capture()"},
    {"stats", stats, METH_NOARGS, "counters of the C++ side"},
    {"bridge_counters", bridge_counters, METH_NOARGS, "(pushes, drains, mode) of this loop"},
    PYASIO_TEST_WAKE_PROBE_METHODS,
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT,
                      "_pyasio_async_test",
                      "pyasio's async test module",
                      -1,
                      methods,
                      nullptr,
                      nullptr,
                      nullptr,
                      nullptr};
} // namespace

PYASIO_MODULE_INIT(_pyasio_async_test) {
    return PyModule_Create(&module);
}
