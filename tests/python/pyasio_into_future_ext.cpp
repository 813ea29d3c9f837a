// SPDX-License-Identifier: BSL-1.0
// C++ awaits Python: pyasio::into_future, driven from Python through future_into_py (the C++
// work awaits the Python awaitable it was given); used by test_into_future.py.
#include <pyasio.hpp>

#include "wake_probe.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_future.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <variant>

namespace {
using pyasio::handle;
using pyasio::object;

/// await_py(aw): C++ awaits aw (co_await with use_awaitable) and returns its result.
PyObject* await_py(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        return pyasio::future_into_py(
            [aw = pyasio::borrow(arg)]() mutable -> asio::awaitable<object> {
                co_return co_await pyasio::into_future(std::move(aw));
            });
    });
}

/// await_py_int(aw): the result converted to std::int64_t on the loop thread.
PyObject* await_py_int(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        return pyasio::future_into_py(
            [aw = pyasio::borrow(arg)]() mutable -> asio::awaitable<std::int64_t> {
                co_return co_await pyasio::into_future<std::int64_t>(std::move(aw));
            });
    });
}

/// await_py_void(aw): into_future<void>: the result is dropped; completes with "done".
PyObject* await_py_void(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        return pyasio::future_into_py(
            [aw = pyasio::borrow(arg)]() mutable -> asio::awaitable<std::string> {
                co_await pyasio::into_future<void>(std::move(aw));
                co_return "done";
            });
    });
}

/// await_py_tokens(aw1, aw2, aw3): the same wait through a callback, use_future and deferred.
PyObject* await_py_tokens(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [a, b, c] = pyasio::from_python<std::tuple<object, object, object>>(handle(args));
        return pyasio::future_into_py(
            [a = std::move(a), b = std::move(b), c = std::move(c)](auto&& token) mutable {
                // a callback completes the whole operation from inside a use_future and a deferred
                // wait, each on a runtime thread
                return asio::async_initiate<decltype(token), void(std::exception_ptr, std::string)>(
                    [](auto handler, object a, object b, object c) {
                        auto locals = *pyasio::current_task_locals();
                        pyasio::into_future<std::string>(
                            std::move(a), locals,
                            [handler = std::move(handler), b = std::move(b), c = std::move(c),
                             locals](std::exception_ptr e, const std::string& first) mutable {
                                if (e)
                                    return std::move(handler)(e, std::string());
                                std::future<std::string> second = pyasio::into_future<std::string>(
                                    std::move(b), locals, asio::use_future);
                                std::string text = first + " " + second.get();
                                auto third = pyasio::into_future<std::string>(
                                    std::move(c), locals, asio::experimental::deferred);
                                std::move(third)(
                                    [handler = std::move(handler),
                                     text](std::exception_ptr e, const std::string& s) mutable {
                                        std::move(handler)(e, text + " " + s);
                                    });
                            });
                    },
                    token, std::move(a), std::move(b), std::move(c));
            });
    });
}

/// await_py_twice(aw): awaits the same awaitable twice; returns both outcomes as text.
PyObject* await_py_twice(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        return pyasio::future_into_py([aw = pyasio::borrow(arg)]() -> asio::awaitable<std::string> {
            std::string out;
            for (int i = 0; i < 2; ++i) {
                object copy;
                {
                    pyasio::gil_acquire gil;
                    copy = aw;
                }
                try {
                    object r = co_await pyasio::into_future(std::move(copy));
                    out += "ok;";
                } catch (const pyasio::python_error& e) {
                    out += std::string(e.what()) + ";";
                }
            }
            co_return out;
        });
    });
}

/// await_py_each(fn, n): calls the async function fn once per use, n times; sums the results.
PyObject* await_py_each(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [fn, n] = pyasio::from_python<std::tuple<object, int>>(handle(args));
        return pyasio::future_into_py(
            [fn = std::move(fn), n = n]() -> asio::awaitable<std::int64_t> {
                std::int64_t sum = 0;
                for (int i = 0; i < n; ++i) {
                    object coro;
                    {
                        pyasio::gil_acquire gil;
                        coro = pyasio::call(fn, i);
                    }
                    sum += co_await pyasio::into_future<std::int64_t>(std::move(coro));
                }
                co_return sum;
            });
    });
}

/// await_call(fn, i, s): C++ work awaits fn(i, s), called on the loop thread through
/// pyasio::async_function (the C++ side passes C++ values and never takes the GIL).
PyObject* await_call(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [f, i, text] =
            pyasio::from_python<std::tuple<object, std::int64_t, std::string>>(handle(args));
        pyasio::async_function fn(std::move(f));
        return pyasio::future_into_py(
            [fn, i = i, text = std::move(text)]() -> asio::awaitable<object> {
                co_return co_await pyasio::into_future(fn(i, text));
            });
    });
}

/// await_call_with(fn, g): C++ work awaits fn(async_function(g)); the argument arrives in
/// Python as g itself.
PyObject* await_call_with(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [f, g] = pyasio::from_python<std::tuple<object, object>>(handle(args));
        pyasio::async_function fn(std::move(f));
        pyasio::async_function arg(std::move(g));
        return pyasio::future_into_py([fn, arg]() -> asio::awaitable<object> {
            co_return co_await pyasio::into_future(fn(arg));
        });
    });
}

/// async_function_of(x): pyasio::async_function(x); TypeError unless x is callable.
PyObject* async_function_of(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] { pyasio::async_function fn(pyasio::borrow(arg)); });
}

/// await_py_timeout(aw, ms): "result" or "timeout", whichever comes first; the C++ side
/// cancels the other (the Python task, when the timer wins).
PyObject* await_py_timeout(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [aw, ms] = pyasio::from_python<std::tuple<object, long>>(handle(args));
        return pyasio::future_into_py(
            [aw = std::move(aw), ms = ms]() mutable -> asio::awaitable<std::string> {
                using namespace asio::experimental::awaitable_operators;
                asio::steady_timer timer(co_await asio::this_coro::executor,
                                         std::chrono::milliseconds(ms));
                std::variant<object, std::monostate> r = co_await (
                    pyasio::into_future(std::move(aw)) || timer.async_wait(asio::use_awaitable));
                co_return r.index() == 0 ? "result" : "timeout";
            });
    });
}

/// An into_future outcome as text: "result", "cancelled by python", "aborted" (cancelled by
/// C++), "loop closed: <what>", "python_error: <what>".
std::string describe(const std::exception_ptr& e) {
    if (!e)
        return "result";
    try {
        std::rethrow_exception(e);
    } catch (const pyasio::task_cancelled&) {
        return "cancelled by python";
    } catch (const pyasio::event_loop_closed& x) {
        return std::string("loop closed: ") + x.what();
    } catch (const pyasio::python_error& x) {
        return std::string("python_error: ") + x.what();
    } catch (const std::system_error& x) {
        if (x.code() == asio::error::operation_aborted)
            return "aborted";
        throw;
    }
}

/// await_py_report(aw): what C++ caught (see describe()).
PyObject* await_py_report(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        return pyasio::future_into_py(
            [aw = pyasio::borrow(arg)]() mutable -> asio::awaitable<std::string> {
                try {
                    co_await pyasio::into_future<void>(std::move(aw));
                    co_return describe(nullptr);
                } catch (...) {
                    co_return describe(std::current_exception());
                }
            });
    });
}

/// The cancellation signals of the race() calls in flight, by key, with the executor each
/// must be emitted on (Asio signals are not thread-safe).
struct race_signals {
    std::mutex mutex;
    std::map<long, std::pair<asio::any_io_executor, std::shared_ptr<asio::cancellation_signal>>>
        by_key;
};
race_signals races;

/// race(aw, key): C++ awaits aw with a cancellation_signal bound to the into_future, which
/// cancel_from_cpp(key) emits; returns what C++ caught (see describe()).
PyObject* race(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [aw, key] = pyasio::from_python<std::tuple<object, long>>(handle(args));
        return pyasio::future_into_py(
            [aw = std::move(aw), key = key]() mutable -> asio::awaitable<std::string> {
                auto signal = std::make_shared<asio::cancellation_signal>();
                {
                    std::lock_guard<std::mutex> lock(races.mutex);
                    races.by_key[key] = {co_await asio::this_coro::executor, signal};
                }
                std::exception_ptr error;
                try {
                    co_await pyasio::into_future<void>(
                        std::move(aw),
                        asio::bind_cancellation_slot(signal->slot(), asio::use_awaitable));
                } catch (...) {
                    error = std::current_exception();
                }
                {
                    std::lock_guard<std::mutex> lock(races.mutex);
                    races.by_key.erase(key);
                }
                co_return describe(error);
            });
    });
}

/// cancel_from_cpp(key[, total[, wait]]): emits race(_, key)'s signal on its executor: a terminal
/// cancellation, or a total one. wait: returns once the signal was emitted.
PyObject* cancel_from_cpp(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        long key = 0;
        int total = 0;
        int wait = 0;
        if (!PyArg_ParseTuple(args, "l|pp", &key, &total, &wait))
            throw pyasio::python_error::fetch();
        auto type = total != 0 ? asio::cancellation_type::total : asio::cancellation_type::terminal;
        auto emitted = std::make_shared<std::promise<void>>();
        std::future<void> done = emitted->get_future();
        {
            std::lock_guard<std::mutex> lock(races.mutex);
            auto it = races.by_key.find(key);
            if (it == races.by_key.end())
                return false;
            asio::post(it->second.first, [signal = it->second.second, type, emitted] {
                signal->emit(type);
                emitted->set_value();
            });
        }
        if (wait != 0) {
            pyasio::gil_release nogil;
            done.wait();
        }
        return true;
    });
}

/// The outcome of the last start_await_recorded(), for recorded_outcome().
struct recorder {
    std::mutex mutex;
    std::condition_variable changed;
    std::optional<std::string> text;
};
recorder recorded;

/// start_await_recorded(aw): C++ awaits aw on the running loop with a plain callback (on the
/// runtime); the outcome is kept for recorded_outcome(). Returns at once.
PyObject* start_await_recorded(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        {
            std::lock_guard<std::mutex> lock(recorded.mutex);
            recorded.text.reset();
        }
        pyasio::into_future<void>(pyasio::borrow(arg), pyasio::task_locals::capture(),
                                  [](const std::exception_ptr& e) {
                                      std::lock_guard<std::mutex> lock(recorded.mutex);
                                      recorded.text = describe(e);
                                      recorded.changed.notify_all();
                                  });
    });
}

/// recorded_outcome(ms): the outcome of start_await_recorded's operation, waiting up to ms
/// milliseconds (GIL released); "still waiting" if it has not completed.
PyObject* recorded_outcome(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        auto ms = std::chrono::milliseconds(pyasio::from_python<long>(handle(arg)));
        std::string text = "still waiting";
        {
            pyasio::gil_release nogil;
            std::unique_lock<std::mutex> lock(recorded.mutex);
            if (recorded.changed.wait_for(lock, ms, [] { return recorded.text.has_value(); }))
                text = *recorded.text;
        }
        return text;
    });
}

/// A runtime of its own with 4 threads, for await_from_threads.
pyasio::runtime& four_threads() {
    static pyasio::runtime rt(4);
    return rt;
}

/// await_from_threads(fn, threads, per_thread): C++ work starts `threads` jobs at once on a
/// 4-thread runtime; each calls fn(i) per_thread times and awaits every coroutine at once
/// (into_future with a callback on the work's executor). Returns (sum of the results, number of
/// distinct threads that called into_future).
PyObject* await_from_threads(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [f, threads, per_thread] =
            pyasio::from_python<std::tuple<object, int, int>>(handle(args));
        if (threads > 4)
            throw std::invalid_argument("await_from_threads: at most 4 threads");
        auto fn = std::make_shared<const object>(std::move(f));
        return pyasio::future_into_py([fn, threads = threads, per_thread = per_thread]()
                                          -> asio::awaitable<std::tuple<std::int64_t, int>> {
            auto ex = co_await asio::this_coro::executor;
            pyasio::task_locals locals = *pyasio::current_task_locals();
            struct tally {
                tally(const asio::any_io_executor& ex, long n) : left(n), done(ex) {}
                std::int64_t sum = 0;
                long left;
                std::exception_ptr error;
                asio::steady_timer done;
                std::mutex mutex; // for ids
                std::set<std::thread::id> ids;
            };
            auto t = std::make_shared<tally>(ex, long(threads) * per_thread);
            t->done.expires_at(asio::steady_timer::time_point::max());
            auto all_started = std::make_shared<std::latch>(threads);
            for (int k = 0; k < threads; ++k)
                asio::post(four_threads().get_executor(), [=] {
                    all_started->arrive_and_wait(); // every job on its own thread
                    {
                        std::lock_guard<std::mutex> lock(t->mutex);
                        t->ids.insert(std::this_thread::get_id());
                    }
                    for (int i = 0; i < per_thread; ++i) {
                        object coro;
                        {
                            pyasio::gil_acquire gil;
                            coro = pyasio::call(*fn, k * per_thread + i);
                        }
                        pyasio::into_future<std::int64_t>(
                            std::move(coro), locals,
                            asio::bind_executor(ex,
                                                [t](const std::exception_ptr& e, std::int64_t v) {
                                                    if (e && !t->error)
                                                        t->error = e;
                                                    t->sum += v;
                                                    if (--t->left == 0)
                                                        t->done.cancel();
                                                }));
                    }
                });
            std::error_code ignored; // cancelled by the last completion
            co_await t->done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
            if (t->error)
                std::rethrow_exception(t->error);
            std::lock_guard<std::mutex> lock(t->mutex);
            co_return std::tuple<std::int64_t, int>(t->sum, int(t->ids.size()));
        });
    });
}

/// into_future_here(aw): into_future called outside C++ work, with no task locals.
PyObject* into_future_here(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        pyasio::into_future(pyasio::borrow(arg), [](const std::exception_ptr&, const object&) {});
    });
}

static_assert(asio::execution::is_executor<pyasio::loop_executor>::value,
              "loop_executor is an Asio executor");

/// on_loop(fn): a C++ coroutine on the loop executor calls fn directly (it holds the GIL there).
PyObject* on_loop(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        return pyasio::future_into_py(
            [fn = pyasio::borrow(arg)]() -> asio::awaitable<object> {
                co_return pyasio::call(fn, pyasio::gil::held());
            },
            pyasio::loop_executor::current());
    });
}

/// on_loop_after_timer(fn, ms): the same after an Asio timer: the timer runs on the runtime,
/// the coroutine resumes on the loop.
PyObject* on_loop_after_timer(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [fn, ms] = pyasio::from_python<std::tuple<object, long>>(handle(args));
        return pyasio::future_into_py(
            [fn = std::move(fn), ms = ms]() -> asio::awaitable<object> {
                asio::steady_timer timer(co_await asio::this_coro::executor,
                                         std::chrono::milliseconds(ms));
                co_await timer.async_wait(asio::use_awaitable);
                co_return pyasio::call(fn, pyasio::gil::held());
            },
            pyasio::loop_executor::current());
    });
}

/// on_loop_await(aw): a coroutine on the loop executor awaits a Python awaitable.
PyObject* on_loop_await(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        return pyasio::future_into_py(
            [aw = pyasio::borrow(arg)]() mutable -> asio::awaitable<object> {
                object result = co_await pyasio::into_future(std::move(aw));
                co_return result;
            },
            pyasio::loop_executor::current());
    });
}

/// on_loop_await_each(fn, n): a coroutine on the loop executor awaits fn(i) for i < n, one
/// after the other (each resumes it inside the previous task's done callback); sums the results.
PyObject* on_loop_await_each(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [fn, n] = pyasio::from_python<std::tuple<object, int>>(handle(args));
        return pyasio::future_into_py(
            [fn = std::move(fn), n = n]() -> asio::awaitable<std::int64_t> {
                std::int64_t sum = 0;
                for (int i = 0; i < n; ++i) // the GIL is held here: call fn directly
                    sum += co_await pyasio::into_future<std::int64_t>(pyasio::call(fn, i));
                co_return sum;
            },
            pyasio::loop_executor::current());
    });
}

/// loop_awaits_cpp(ms): a coroutine on the loop executor makes a future_into_py future (a
/// timer on the runtime) that only C++ refers to, and awaits it with into_future; returns ms.
PyObject* loop_awaits_cpp(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        long ms = pyasio::from_python<long>(handle(arg));
        return pyasio::future_into_py(
            [ms]() -> asio::awaitable<long> {
                object future = pyasio::future_into_py([ms]() -> asio::awaitable<long> {
                    asio::steady_timer timer(co_await asio::this_coro::executor,
                                             std::chrono::milliseconds(ms));
                    co_await timer.async_wait(asio::use_awaitable);
                    co_return ms;
                });
                co_return co_await pyasio::into_future<long>(std::move(future));
            },
            pyasio::loop_executor::current());
    });
}

/// completes_inside_the_call(aw): into_future on the loop thread, with a handler on the loop
/// executor; True if the handler ran before into_future returned (Asio forbids that).
PyObject* completes_inside_the_call(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        auto done = std::make_shared<bool>(false);
        pyasio::into_future<void>(
            pyasio::borrow(arg), pyasio::task_locals::capture(),
            asio::bind_executor(pyasio::loop_executor::current(),
                                [done](const std::exception_ptr&) { *done = true; }));
        return *done;
    });
}

/// post_to_loop(fn, n): from C++ work on the runtime, posts n handlers to the loop executor
/// (and through a strand of it); each calls fn(i) on the loop thread. Completes when all ran.
PyObject* post_to_loop(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [f, n] = pyasio::from_python<std::tuple<object, int>>(handle(args));
        // NOTE: shared, so that handlers copied on runtime threads copy no Python object
        auto fn = std::make_shared<const object>(std::move(f));
        pyasio::loop_executor loop = pyasio::loop_executor::current();
        return pyasio::future_into_py([fn, n = n, loop]() -> asio::awaitable<int> {
            auto strand = asio::make_strand(loop);
            for (int i = 0; i < n; ++i)
                asio::post(i % 2 == 0 ? asio::any_io_executor(loop) : asio::any_io_executor(strand),
                           [fn, i] { pyasio::call(*fn, i); });
            // a last one, awaited: it runs on the loop after the others
            co_await asio::post(loop, asio::use_awaitable);
            co_return n;
        });
    });
}

/// The task locals remember_task_locals() captured, for await_with_remembered().
std::optional<pyasio::task_locals> remembered;

PyObject* remember_task_locals(PyObject*, PyObject*) {
    return pyasio::entry_point([] { remembered = pyasio::task_locals::capture(); });
}

/// await_with_remembered(aw): C++ work awaits aw on the remembered loop (which may be gone by
/// now); returns what C++ caught (see describe()).
PyObject* await_with_remembered(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        return pyasio::future_into_py(
            [aw = pyasio::borrow(arg), locals = *std::exchange(remembered, std::nullopt)]() mutable
            -> asio::awaitable<std::string> {
                try {
                    co_await pyasio::into_future<void>(std::move(aw), locals);
                    co_return describe(nullptr);
                } catch (...) {
                    co_return describe(std::current_exception());
                }
            });
    });
}

/// post_throwing(): posts a handler that throws to the loop executor.
PyObject* post_throwing(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        asio::post(pyasio::loop_executor::current(),
                   [] { throw std::runtime_error("a loop_executor handler failed"); });
    });
}

/// into_future_throwing_handler(aw, on_loop): into_future of aw with a callback that throws;
/// the callback runs on the loop executor (on_loop) or, with no executor of its own, on a
/// runtime thread.
PyObject* into_future_throwing_handler(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [aw, on_loop] = pyasio::from_python<std::tuple<object, bool>>(handle(args));
        auto handler = [](const std::exception_ptr&) {
            throw std::runtime_error("a completion handler failed");
        };
        pyasio::task_locals locals = pyasio::task_locals::capture();
        if (on_loop)
            pyasio::into_future<void>(
                std::move(aw), locals,
                asio::bind_executor(pyasio::loop_executor::current(), handler));
        else
            pyasio::into_future<void>(std::move(aw), locals, handler);
    });
}

/// bridge_pushes(): jobs pushed so far to the running loop's bridge (this module's).
PyObject* bridge_pushes(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        return pyasio::detail::bridge_registry::instance()
            .bridge_for(pyasio::get_running_loop())
            ->pushes();
    });
}

PyMethodDef methods[] = {
    {"await_py", await_py, METH_O, "C++ awaits the awaitable; returns its result"},
    {"await_py_int", await_py_int, METH_O, "into_future<std::int64_t>"},
    {"await_py_void", await_py_void, METH_O, "into_future<void>"},
    {"await_py_tokens", await_py_tokens, METH_VARARGS, "callback, use_future, deferred"},
    {"await_py_twice", await_py_twice, METH_O, "awaits one awaitable twice"},
    {"await_py_each", await_py_each, METH_VARARGS, "calls the async function for each use"},
    {"await_call", await_call, METH_VARARGS, "into_future(async_function(fn)(i, s))"},
    {"await_call_with", await_call_with, METH_VARARGS, "into_future(fn(async_function(g)))"},
    {"async_function_of", async_function_of, METH_O, "pyasio::async_function(x)"},
    {"await_py_timeout", await_py_timeout, METH_VARARGS, "into_future || timer"},
    {"await_py_report", await_py_report, METH_O, "what C++ caught"},
    {"race", race, METH_VARARGS, "into_future with a cancellation signal"},
    {"cancel_from_cpp", cancel_from_cpp, METH_VARARGS, "emits race()'s signal"},
    {"start_await_recorded", start_await_recorded, METH_O, "into_future with a callback, kept"},
    {"recorded_outcome", recorded_outcome, METH_O, "the kept outcome, waited for"},
    {"await_from_threads", await_from_threads, METH_VARARGS, "into_future from 4 threads"},
    {"into_future_here", into_future_here, METH_O, "into_future without task locals"},
    {"on_loop", on_loop, METH_O, "a coroutine on the loop executor calls fn"},
    {"on_loop_after_timer", on_loop_after_timer, METH_VARARGS, "the same after a timer"},
    {"on_loop_await", on_loop_await, METH_O, "a coroutine on the loop executor awaits aw"},
    {"on_loop_await_each", on_loop_await_each, METH_VARARGS, "awaits in a row on the loop"},
    {"loop_awaits_cpp", loop_awaits_cpp, METH_O, "into_future of a future only C++ holds"},
    {"completes_inside_the_call", completes_inside_the_call, METH_O, "handler run inside?"},
    {"post_to_loop", post_to_loop, METH_VARARGS, "handlers posted to the loop executor"},
    {"remember_task_locals", remember_task_locals, METH_NOARGS, "task_locals::capture(), kept"},
    {"await_with_remembered", await_with_remembered, METH_O, "into_future on the kept locals"},
    {"post_throwing", post_throwing, METH_NOARGS, "a throwing handler on the loop executor"},
    {"into_future_throwing_handler", into_future_throwing_handler, METH_VARARGS,
     "into_future with a completion handler that throws"},
    {"bridge_pushes", bridge_pushes, METH_NOARGS, "jobs pushed to this loop's bridge"},
    PYASIO_TEST_WAKE_PROBE_METHODS,
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT,
                      "_pyasio_into_future_test",
                      "pyasio's into_future test module",
                      -1,
                      methods,
                      nullptr,
                      nullptr,
                      nullptr,
                      nullptr};
} // namespace

PYASIO_MODULE_INIT(_pyasio_into_future_test) {
    return PyModule_Create(&module);
}
