// SPDX-License-Identifier: BSL-1.0
// An extension module as a user would write one with pyasio: every function goes through
// pyasio::entry_point, so C++ exceptions become Python exceptions. Used by test_foundation.py.
#include <pyasio.hpp>

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

PYASIO_MODULE_INIT(_pyasio_test) {
    return PyModule_Create(&module);
}
