// SPDX-License-Identifier: BSL-1.0
// pybind11_peer: the benchmark interface of pyasio_bench (noop, echo, sleep_ms, fail, await_seq,
// await_concurrent) written the way C++ teams hand-roll it today with pybind11, without pyasio:
// - a fixed pool of worker threads (an asio::io_context run by max(cores, 2) std::threads, as
//   many as pyasio's default runtime, or configure_pool(n)'s count) does the C++ work;
// - Python awaits C++: the function creates loop.create_future() on the loop thread and posts
//   the work to the pool; on completion the worker takes the GIL and calls
//   loop.call_soon_threadsafe(_set_result, fut, value) (or _set_exception), one call per
//   completion; _set_result / _set_exception skip a future that is already done (cancelled);
// - C++ awaits Python: a worker takes the GIL, calls fn() and hands the coroutine to
//   asyncio.run_coroutine_threadsafe(coro, loop), then waits on the concurrent.futures.Future
//   (its result() and concurrent.futures.wait block on a lock, which releases the GIL).
// Only Asio's headers are used (through the pyasio target's include directories); nothing of
// pyasio's bridge. It exists to be measured beside pyasio_bench.
#include "burn_cpu.hpp"

#include <pybind11/pybind11.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace py = pybind11;

namespace {

/// The worker pool: an io_context run by a fixed number of threads.
struct pool {
    asio::io_context context;
    asio::executor_work_guard<asio::io_context::executor_type> guard{context.get_executor()};
    std::vector<std::thread> threads;

    explicit pool(unsigned n) {
        for (unsigned i = 0; i < n; ++i)
            threads.emplace_back([this] { context.run(); });
    }
};

pool* the_pool = nullptr; // created at first use, stopped and destroyed at interpreter exit
unsigned pool_threads = std::max<unsigned>(std::thread::hardware_concurrency(), 2);

/// The pool, started at first use (GIL held: no race).
asio::io_context& pool_context() {
    if (!the_pool)
        the_pool = new pool(pool_threads);
    return the_pool->context;
}

/// configure_pool(n): the pool's thread count, before its first use.
void configure_pool(unsigned n) {
    if (the_pool)
        throw std::logic_error("configure_pool: the pool already runs; call it before the first "
                               "operation");
    if (n == 0)
        throw std::invalid_argument("configure_pool: the pool needs at least one thread");
    pool_threads = n;
}

// Python objects used on every call, looked up once at import. Leaked on purpose: they must not
// be released after the interpreter is finalized.
py::object* get_running_loop = nullptr;
py::object* run_coroutine_threadsafe = nullptr;
py::object* futures_wait = nullptr;
py::object* set_result_fn = nullptr;
py::object* set_exception_fn = nullptr;

/// A Python reference carried by C++ work on the pool, which runs without the GIL: only taken
/// or dropped with the GIL held.
class carried {
public:
    explicit carried(py::object o) : p_(o.release().ptr()) {}
    carried(carried&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    carried& operator=(carried&&) = delete;
    ~carried() {
        if (p_) {
            PyGILState_STATE gil = PyGILState_Ensure(); // (the C API: it does not throw)
            Py_DECREF(p_);
            PyGILState_Release(gil);
        }
    }
    /// Needs the GIL.
    py::object take() { return py::reinterpret_steal<py::object>(std::exchange(p_, nullptr)); }

private:
    PyObject* p_;
};

/// One operation Python awaits: its loop and its asyncio future.
struct pending {
    carried loop;
    carried fut;

    /// On the loop thread (GIL held): a new future on the running loop.
    static pending create(py::object& out_future) {
        py::object loop = (*get_running_loop)();
        out_future = loop.attr("create_future")();
        return pending{carried(std::move(loop)), carried(out_future)};
    }

    /// On a worker thread, without the GIL: completes the future through the loop, one
    /// call_soon_threadsafe per completion. make() builds the value (GIL held); if it raises a
    /// Python exception, the future gets that exception.
    template <class Make> void complete(Make&& make) {
        py::gil_scoped_acquire gil;
        py::object value;
        try {
            value = make();
        } catch (py::error_already_set& e) {
            return deliver(*set_exception_fn, e.value());
        } catch (const std::exception& e) {
            return deliver(*set_exception_fn,
                           py::reinterpret_borrow<py::object>(PyExc_RuntimeError)(e.what()));
        }
        deliver(*set_result_fn, value);
    }

    /// On a worker thread, without the GIL: fails the future with exception_type(message).
    void fail(PyObject* exception_type, const std::string& message) {
        py::gil_scoped_acquire gil;
        deliver(*set_exception_fn, py::reinterpret_borrow<py::object>(exception_type)(message));
    }

private:
    /// GIL held: loop.call_soon_threadsafe(setter, fut, arg).
    void deliver(const py::object& setter, const py::object& arg) {
        py::object l = loop.take();
        py::object f = fut.take();
        try {
            l.attr("call_soon_threadsafe")(setter, f, arg);
        } catch (py::error_already_set&) {
            // The loop is closed: nobody awaits the future any more.
        }
    }
};

/// Runs work() on the pool; work gets the pending operation and completes it.
template <class Work> py::object start(Work&& work) {
    py::object future;
    auto op = std::make_shared<pending>(pending::create(future));
    asio::post(pool_context(), [op, work = std::forward<Work>(work)]() mutable { work(*op); });
    return future;
}

/// noop(): completes with None on the pool.
py::object noop() {
    return start([](pending& op) { op.complete([] { return py::none(); }); });
}

/// echo(x): completes with x on the pool.
py::object echo(py::object x) {
    return start([x = std::make_shared<carried>(std::move(x))](pending& op) {
        op.complete([&] { return x->take(); });
    });
}

/// sleep_ms(ms): waits ms milliseconds on an Asio steady_timer on the pool.
py::object sleep_ms(long ms) {
    py::object future;
    auto op = std::make_shared<pending>(pending::create(future));
    auto timer =
        std::make_shared<asio::steady_timer>(pool_context(), std::chrono::milliseconds(ms));
    timer->async_wait([op, timer](const std::error_code& ec) {
        if (ec)
            op->fail(PyExc_OSError, ec.message());
        else
            op->complete([] { return py::none(); });
    });
    return future;
}

/// spin(us): keeps a pool thread busy for us microseconds of CPU time, then completes with None.
py::object spin(long us) {
    return start([us](pending& op) {
        bench::burn_cpu(us);
        op.complete([] { return py::none(); });
    });
}

/// fail(msg): throws std::invalid_argument(msg) on the pool; Python sees ValueError(msg).
py::object fail(std::string msg) {
    return start([msg = std::move(msg)](pending& op) {
        try {
            throw std::invalid_argument(msg);
        } catch (const std::invalid_argument& e) {
            op.fail(PyExc_ValueError, e.what());
        } catch (const std::exception& e) {
            op.fail(PyExc_RuntimeError, e.what());
        }
    });
}

/// await_seq(fn, n): a worker awaits fn() n times in a row (fn is a Python async function),
/// each through run_coroutine_threadsafe(...).result(); completes with n.
py::object await_seq(py::object fn, long n) {
    py::object loop = (*get_running_loop)();
    return start([fn = std::make_shared<carried>(std::move(fn)),
                  loop = std::make_shared<carried>(std::move(loop)), n](pending& op) {
        op.complete([&]() -> py::object {
            py::object f = fn->take();
            py::object l = loop->take();
            for (long i = 0; i < n; ++i) // result() blocks on a lock: the GIL is released
                (*run_coroutine_threadsafe)(f(), l).attr("result")();
            return py::int_(n);
        });
    });
}

/// await_concurrent(fn, n): a worker submits n fn() at once with run_coroutine_threadsafe, then
/// waits for them all (concurrent.futures.wait); completes with n, or the first exception.
py::object await_concurrent(py::object fn, long n) {
    py::object loop = (*get_running_loop)();
    return start([fn = std::make_shared<carried>(std::move(fn)),
                  loop = std::make_shared<carried>(std::move(loop)), n](pending& op) {
        op.complete([&]() -> py::object {
            py::object f = fn->take();
            py::object l = loop->take();
            py::list futures;
            for (long i = 0; i < n; ++i)
                futures.append((*run_coroutine_threadsafe)(f(), l));
            (*futures_wait)(futures); // blocks on a lock: the GIL is released
            for (py::handle cf : futures)
                cf.attr("result")(); // raises the first exception, if any
            return py::int_(n);
        });
    });
}

/// At interpreter exit: stops the pool, joins its threads (GIL released: a worker may be
/// waiting for it), then drops the operations still queued (GIL held).
void shutdown_pool() {
    if (!the_pool)
        return;
    {
        py::gil_scoped_release nogil;
        the_pool->guard.reset();
        the_pool->context.stop();
        for (auto& t : the_pool->threads)
            t.join();
    }
    delete std::exchange(the_pool, nullptr);
}

} // namespace

PYBIND11_MODULE(pybind11_peer, m) {
    m.doc() = "pyasio_bench's interface, hand-rolled with pybind11 and a thread pool (a peer to "
              "measure pyasio against)";
    py::module_ asyncio = py::module_::import("asyncio");
    get_running_loop = new py::object(asyncio.attr("get_running_loop"));
    run_coroutine_threadsafe = new py::object(asyncio.attr("run_coroutine_threadsafe"));
    futures_wait = new py::object(py::module_::import("concurrent.futures").attr("wait"));

    m.def("_set_result", [](const py::object& fut, const py::object& value) {
        if (!fut.attr("done")().cast<bool>()) // a cancelled future must not raise
            fut.attr("set_result")(value);
    });
    m.def("_set_exception", [](const py::object& fut, const py::object& exc) {
        if (!fut.attr("done")().cast<bool>())
            fut.attr("set_exception")(exc);
    });
    set_result_fn = new py::object(m.attr("_set_result"));
    set_exception_fn = new py::object(m.attr("_set_exception"));

    m.def("noop", &noop, "noop(): completes with None on the pool.");
    m.def("echo", &echo, "echo(x): completes with x on the pool.");
    m.def("sleep_ms", &sleep_ms, "sleep_ms(ms): waits on an Asio steady_timer on the pool.");
    m.def("spin", &spin, "spin(us): keeps a pool thread busy for us microseconds.");
    m.def("configure_pool", &configure_pool,
          "configure_pool(threads): the pool's thread count, before its first use.");
    m.def("fail", &fail, "fail(msg): raises ValueError(msg) from C++ on the pool.");
    m.def("await_seq", &await_seq, "await_seq(fn, n): a pool thread awaits fn() n times in a row.");
    m.def("await_concurrent", &await_concurrent,
          "await_concurrent(fn, n): a pool thread awaits n fn() started at once.");

    py::module_::import("atexit").attr("register")(py::cpp_function(&shutdown_pool));
}
