// SPDX-License-Identifier: BSL-1.0
// One extension module that vendors pyasio, built several times under different names, by
// different compilers, with different flags and pyasio versions (tests/copies/run.py): every
// copy is imported into one process and used at once on one event loop. Each copy must keep to
// its own code and state: run.py checks that no symbol of one binds to another, and the
// identity() of each copy names state that must differ between copies.
#include <pyasio.hpp>

#include <asio/co_spawn.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>

#ifndef COPY_NAME
#error "build with -DCOPY_NAME=<module name>"
#endif
#define COPY_STR2(x) #x
#define COPY_STR(x) COPY_STR2(x)

namespace {

// This copy's own C++ exception type: each module registers its own Python class for it.
struct copy_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Throws what `kind` names: "own" (copy_error), "nested" (copy_error with a std::out_of_range
// nested in it), "range" (std::range_error: only the copies whose name has "gcc" in it register
// a translator for it, as ArithmeticError; the others' registries do not have it).
[[noreturn]] void throw_kind(const std::string& kind) {
    if (kind == "own")
        throw copy_error("own failure in " COPY_STR(COPY_NAME));
    if (kind == "nested") {
        try {
            throw std::out_of_range("the inner cause");
        } catch (...) {
            std::throw_with_nested(copy_error("outer failure in " COPY_STR(COPY_NAME)));
        }
    }
    throw std::range_error("out of range in " COPY_STR(COPY_NAME));
}

// fail(where, kind): raises what throw_kind throws, "now" (in the call), "later" (in the C++
// work Python awaits) or "stream" (in a C++ producer, after its first item).
PyObject* fail(PyObject*, PyObject* args) {
    return pyasio::entry_point([&]() -> pyasio::object {
        auto [where, kind] =
            pyasio::from_python<std::tuple<std::string, std::string>>(pyasio::handle(args));
        if (where == "now")
            throw_kind(kind);
        if (where == "later")
            return pyasio::future_into_py([kind = kind]() -> asio::awaitable<long> {
                asio::steady_timer timer(co_await asio::this_coro::executor,
                                         std::chrono::milliseconds(1));
                co_await timer.async_wait(asio::use_awaitable);
                throw_kind(kind);
            });
        return pyasio::stream_into_py<long>(
            [kind = kind](pyasio::stream_writer<long> out) -> asio::awaitable<void> {
                co_await out.write(1);
                throw_kind(kind);
            });
    });
}

// sleep_value(ms, value): Python awaits C++ (future_into_py): an Asio timer, then value.
PyObject* sleep_value(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        auto [ms, value] = pyasio::from_python<std::tuple<long, std::string>>(pyasio::handle(args));
        return pyasio::future_into_py([ms = ms, value = value]() -> asio::awaitable<std::string> {
            asio::steady_timer timer(co_await asio::this_coro::executor,
                                     std::chrono::milliseconds(ms));
            co_await timer.async_wait(asio::use_awaitable);
            co_return value;
        });
    });
}

// await_py(aw): C++ awaits Python (into_future) inside C++ work that Python awaits.
PyObject* await_py(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        return pyasio::future_into_py(
            [aw = pyasio::borrow(arg)]() mutable -> asio::awaitable<std::int64_t> {
                co_return co_await pyasio::into_future<std::int64_t>(std::move(aw));
            });
    });
}

// on_loop(fn): C++ work on the runtime runs a coroutine on the loop executor, which calls fn()
// there with the GIL; its int result comes back to the runtime's coroutine.
PyObject* on_loop(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        pyasio::loop_executor loop = pyasio::loop_executor::current();
        return pyasio::future_into_py([fn = pyasio::borrow(arg),
                                       loop]() mutable -> asio::awaitable<std::int64_t> {
            // NOTE: named before the co_await, not a temporary of it: g++ 12 leaves a closure
            // temporary of a co_await full-expression holding its captures after they were
            // moved out (docs/peers.md), and destroys it at the end of the statement, on a
            // runtime thread. Its copy of fn, queued for release there, released fn once too
            // often: fn (the Python callable) was freed while the release queue still named
            // it, and the release of the queue's entry freed whatever reused that memory.
            auto on_the_loop = [fn = std::move(fn)]() mutable -> asio::awaitable<std::int64_t> {
                // On the loop's thread, with the GIL: the loop executor's rule.
                std::int64_t r = pyasio::from_python<std::int64_t>(pyasio::call(fn));
                fn.reset();
                co_return r;
            };
            co_return co_await asio::co_spawn(loop, std::move(on_the_loop), asio::use_awaitable);
        });
    });
}

// produce(n): Python reads a C++ producer (stream_into_py): 0, 1, ..., n - 1.
PyObject* produce(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        long n = pyasio::from_python<long>(pyasio::handle(arg));
        return pyasio::stream_into_py<long>(
            [n](pyasio::stream_writer<long> out) -> asio::awaitable<void> {
                for (long i = 0; i < n; ++i)
                    co_await out.write(i);
            },
            4);
    });
}

// consume(aiterable): C++ reads a Python async iterable (into_stream) and returns its sum.
PyObject* consume(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        auto s = pyasio::into_stream<long>(pyasio::borrow(arg), 4);
        return pyasio::future_into_py([s = std::move(s)]() mutable -> asio::awaitable<long> {
            long sum = 0;
            while (std::optional<long> x = co_await s.next())
                sum += *x;
            co_return sum;
        });
    });
}

// identity(): (module name, pyasio version, address of this copy's object release queue,
// address of this copy's runtime's execution context). Two copies that share code or state
// would give the same addresses.
PyObject* identity(PyObject*, PyObject*) {
    return pyasio::entry_point([&] {
        std::string version = std::to_string(PYASIO_VERSION_MAJOR) + "." +
                              std::to_string(PYASIO_VERSION_MINOR) + "." +
                              std::to_string(PYASIO_VERSION_PATCH);
        auto queue = reinterpret_cast<std::uintptr_t>(&pyasio::detail::release_queue::instance());
        auto context = reinterpret_cast<std::uintptr_t>(&pyasio::default_executor().context());
        return std::make_tuple(std::string(COPY_STR(COPY_NAME)), version,
                               static_cast<std::uint64_t>(queue),
                               static_cast<std::uint64_t>(context));
    });
}

PyMethodDef methods[] = {
    {"sleep_value", sleep_value, METH_VARARGS, "sleep_value(ms, value): future_into_py"},
    {"await_py", await_py, METH_O, "await_py(aw): into_future<int>"},
    {"on_loop", on_loop, METH_O, "on_loop(fn): fn() on the loop executor"},
    {"produce", produce, METH_O, "produce(n): stream_into_py"},
    {"consume", consume, METH_O, "consume(aiterable): into_stream, summed"},
    {"identity", identity, METH_NOARGS, "identity(): this copy's name, version, state"},
    {"fail", fail, METH_VARARGS, "fail(where, kind): a C++ exception, translated"},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT,
                      COPY_STR(COPY_NAME),
                      "one vendored copy of pyasio",
                      -1,
                      methods,
                      nullptr,
                      nullptr,
                      nullptr,
                      nullptr};

} // namespace

PYASIO_MODULE_INIT(COPY_NAME) {
    PyObject* m = PyModule_Create(&module);
    if (m == nullptr)
        return nullptr;
    try {
        pyasio::register_exception<copy_error>(pyasio::handle(m), "Error");
        if (std::string_view(COPY_STR(COPY_NAME)).find("gcc") != std::string_view::npos)
            pyasio::register_exception_translator([](const std::exception_ptr& e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::range_error& r) {
                    PyErr_SetString(PyExc_ArithmeticError, r.what());
                }
            });
    } catch (...) {
        Py_DECREF(m);
        pyasio::translate_exception(std::current_exception());
        return nullptr;
    }
    return m;
}
