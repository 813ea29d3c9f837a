// SPDX-License-Identifier: BSL-1.0
// An extension module as a user would write one with pyasio: every function goes through
// pyasio::entry_point, so C++ exceptions become Python exceptions. Used by test_foundation.py and
// test_robustness.py.
#include <pyasio.hpp>

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

namespace {
using pyasio::handle;
using pyasio::object;

// --- threads ended as CPython ends them at exit -----------------------------------------------

std::atomic<int> threads_ended{0};

/// Counts, at its thread's exit, a thread that end_this_thread() ended: its thread_local
/// destructors run only after the forced unwind crossed every frame above it.
struct end_sentinel {
    bool armed = false;
    ~end_sentinel() {
        if (armed)
            threads_ended.fetch_add(1);
    }
};
thread_local end_sentinel sentinel;

/// Ends the calling thread as CPython ends a thread that wants the GIL once finalization has
/// begun: without the GIL, by pthread_exit, whose forced unwind crosses every frame above.
[[noreturn]] void end_this_thread() {
    sentinel.armed = true;
    (void)PyEval_SaveThread();
    pthread_exit(nullptr);
}

/// Converting it, either way, ends the converting thread (end_this_thread).
struct thread_ender {};
} // namespace

template <> struct pyasio::converter<thread_ender> {
    static object to_python(const thread_ender&) { end_this_thread(); }
    static thread_ender from_python(handle) { end_this_thread(); }
};

namespace {

template <class T> PyObject* echo(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] { return pyasio::from_python<T>(handle(arg)); });
}

PyObject* raise_cpp(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        auto kind = pyasio::from_python<std::string>(handle(arg));
        if (kind == "value")
            throw std::invalid_argument("invalid argument from C++");
        if (kind == "index")
            throw std::out_of_range("out of range from C++");
        if (kind == "os")
            throw std::system_error(ENOENT, std::system_category(), "open");
        if (kind == "runtime")
            throw std::runtime_error("runtime error from C++");
        throw std::logic_error("unknown kind: " + kind);
    });
}

/// call_through(f, *args): calls f from C++ and returns its result.
PyObject* call_through(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    return pyasio::entry_point([&] {
        if (nargs < 1)
            throw std::invalid_argument("call_through(f, *args) needs f");
        object list = pyasio::steal(PyList_New(0));
        for (Py_ssize_t i = 1; i < nargs; ++i)
            pyasio::call_method(list, "append", handle(args[i]));
        return pyasio::steal(
            PyObject_CallObject(args[0], pyasio::steal(PyList_AsTuple(list.ptr())).ptr()));
    });
}

/// drop_in_thread(list): takes references to the items, then drops them on a std::thread that
/// does not hold the GIL. Returns how many were dropped.
PyObject* drop_in_thread(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        auto items = pyasio::from_python<std::vector<object>>(handle(arg));
        std::size_t n = items.size();
        pyasio::gil_release nogil;
        std::thread([&] { items.clear(); }).join();
        return n;
    });
}

/// end_thread(): ends the calling thread from inside pyasio::entry_point.
PyObject* end_thread(PyObject*, PyObject*) {
    return pyasio::entry_point([]() -> object { end_this_thread(); });
}

/// threads_ended(): how many threads end_this_thread() ended so far.
PyObject* ended(PyObject*, PyObject*) {
    return pyasio::entry_point([] { return threads_ended.load(); });
}

/// result_ending_thread(): C++ work whose result, converted on the loop thread when the loop
/// bridge completes its future, ends that thread.
PyObject* result_ending_thread(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        return pyasio::future_into_py(
            []() -> asio::awaitable<thread_ender> { co_return thread_ender{}; });
    });
}

/// await_in_cpp(awaitable, end): C++ awaits `awaitable` (into_future); with `end`, its result,
/// converted to C++ on the loop thread when the task is done, ends that thread. Returns the
/// result (without `end`).
PyObject* await_in_cpp(PyObject*, PyObject* args) {
    return pyasio::entry_point([&] {
        PyObject* awaitable = nullptr;
        int end = 0;
        if (!PyArg_ParseTuple(args, "Op", &awaitable, &end))
            pyasio::detail::throw_error_already_set();
        object aw = pyasio::borrow(awaitable);
        if (end != 0)
            return pyasio::future_into_py(
                [aw = std::move(aw)]() mutable -> asio::awaitable<object> {
                    (void)co_await pyasio::into_future<thread_ender>(std::move(aw));
                    co_return object(); // never: converting the result ended the loop's thread
                });
        return pyasio::future_into_py([aw = std::move(aw)]() mutable -> asio::awaitable<object> {
            co_return co_await pyasio::into_future(std::move(aw));
        });
    });
}

/// stream_ending_thread(): a C++ producer whose first item, converted in __anext__, ends the
/// reading thread.
PyObject* stream_ending_thread(PyObject*, PyObject*) {
    return pyasio::entry_point([] {
        return pyasio::stream_into_py<thread_ender>(
            [](pyasio::stream_writer<thread_ender> out) -> asio::awaitable<void> {
                co_await out.write(thread_ender{});
            });
    });
}

/// read_in_cpp(async_iterable): C++ reads every item (into_stream); the number of items.
PyObject* read_in_cpp(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        return pyasio::future_into_py(
            [s = pyasio::into_stream(pyasio::borrow(arg))]() mutable -> asio::awaitable<long> {
                long n = 0;
                while (co_await s.next())
                    ++n;
                co_return n;
            });
    });
}

/// empty_object(shape): an empty pyasio::object where Python would receive it: "return" from
/// entry_point, "tuple" inside a converted tuple, "result" as C++ work's result.
PyObject* empty_object(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&]() -> object {
        auto shape = pyasio::from_python<std::string>(handle(arg));
        if (shape == "return")
            return object();
        if (shape == "tuple")
            return pyasio::to_python(std::make_tuple(1, object()));
        if (shape == "result")
            return pyasio::future_into_py([]() -> asio::awaitable<object> { co_return object(); });
        throw std::invalid_argument("unknown shape: " + shape);
    });
}

PyMethodDef methods[] = {
    {"echo_int64", echo<std::int64_t>, METH_O, "int -> int64_t -> int"},
    {"echo_uint8", echo<std::uint8_t>, METH_O, "int -> uint8_t -> int"},
    {"echo_double", echo<double>, METH_O, "float -> double -> float"},
    {"echo_str", echo<std::string>, METH_O, "str -> std::string -> str"},
    {"echo_bytes", echo<std::vector<std::byte>>, METH_O, "bytes -> vector<byte> -> bytes"},
    {"echo_record", echo<std::tuple<int, std::string, std::optional<std::vector<double>>>>, METH_O,
     "(int, str, list[float] | None) round trip"},
    {"raise_cpp", raise_cpp, METH_O, "throws the named C++ exception"},
    {"call_through", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(call_through)),
     METH_FASTCALL, "calls f(*args) from C++"},
    {"drop_in_thread", drop_in_thread, METH_O, "drops references on a thread without the GIL"},
    {"end_thread", end_thread, METH_NOARGS, "ends this thread inside entry_point"},
    {"threads_ended", ended, METH_NOARGS, "how many threads end_thread and co. ended"},
    {"result_ending_thread", result_ending_thread, METH_NOARGS, "a result that ends the loop"},
    {"await_in_cpp", await_in_cpp, METH_VARARGS, "C++ awaits an awaitable"},
    {"stream_ending_thread", stream_ending_thread, METH_NOARGS, "an item that ends the reader"},
    {"read_in_cpp", read_in_cpp, METH_O, "C++ reads an async iterable"},
    {"empty_object", empty_object, METH_O, "an empty pyasio::object crossing into Python"},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT,
                      "_pyasio_test",
                      "pyasio's test extension",
                      -1,
                      methods,
                      nullptr,
                      nullptr,
                      nullptr,
                      nullptr};
} // namespace

// The name through a macro, as a build that names its module once would write it.
#define PYASIO_TEST_MODULE _pyasio_test
PYASIO_MODULE_INIT(PYASIO_TEST_MODULE) {
    return PyModule_Create(&module);
}
