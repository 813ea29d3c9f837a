// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_OBJECT_HPP
#define PYASIO_OBJECT_HPP

#include <pyasio/config.hpp>

#include <pyasio/convert.hpp>
#include <pyasio/detail/object_core.hpp>
#include <pyasio/error.hpp>

#include <array>
#include <cstddef>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>

PYASIO_NAMESPACE_BEGIN

// Every function below needs the GIL and reports a Python failure by throwing python_error.

/// getattr(o, name).
inline object getattr(handle o, const char* name) {
    PYASIO_DETAIL_ASSERT_GIL("pyasio::getattr called");
    return detail::checked(PyObject_GetAttrString(o.ptr(), name));
}

/// getattr(o, name) with a str name object.
inline object getattr(handle o, handle name) {
    PYASIO_DETAIL_ASSERT_GIL("pyasio::getattr called");
    return detail::checked(PyObject_GetAttr(o.ptr(), name.ptr()));
}

/// hasattr(o, name). An exception other than AttributeError raised by the lookup propagates.
inline bool hasattr(handle o, const char* name) {
    PYASIO_DETAIL_ASSERT_GIL("pyasio::hasattr called");
    if (object v = steal(PyObject_GetAttrString(o.ptr(), name)))
        return true;
    if (!PyErr_ExceptionMatches(PyExc_AttributeError))
        detail::throw_error_already_set();
    PyErr_Clear();
    return false;
}

/// setattr(o, name, value); value is converted with to_python.
template <class T> void setattr(handle o, const char* name, T&& value) {
    PYASIO_DETAIL_ASSERT_GIL("pyasio::setattr called");
    object v = to_python(std::forward<T>(value));
    if (PyObject_SetAttrString(o.ptr(), name, v.ptr()) != 0)
        detail::throw_error_already_set();
}

/// import name (a dotted module name); returns the module.
inline object import(const char* name) {
    PYASIO_DETAIL_ASSERT_GIL("pyasio::import called");
    return detail::checked(PyImport_ImportModule(name));
}

/// str(o) as a UTF-8 std::string.
inline std::string str(handle o) {
    return from_python<std::string>(detail::checked(PyObject_Str(o.ptr())));
}

/// repr(o) as a UTF-8 std::string.
inline std::string repr(handle o) {
    return from_python<std::string>(detail::checked(PyObject_Repr(o.ptr())));
}

namespace detail {

inline PyObject* vectorcall(PyObject* callable, PyObject* const* args, std::size_t nargsf) {
#if PY_VERSION_HEX >= 0x03090000
    return PyObject_Vectorcall(callable, args, nargsf, nullptr);
#else
    return _PyObject_Vectorcall(callable, args, nargsf, nullptr);
#endif
}

/// Converts args and lays them out for vectorcall after one free slot (slot 0) that the callee
/// may borrow (PY_VECTORCALL_ARGUMENTS_OFFSET), and after `prefix` (for a method's self).
template <std::size_t Prefix, class... Args> struct call_args {
    explicit call_args(Args&&... args) : owned{to_python(std::forward<Args>(args))...} {
        for (std::size_t i = 0; i < sizeof...(Args); ++i)
            argv[1 + Prefix + i] = owned[i].ptr();
    }
    std::array<object, sizeof...(Args)> owned;
    std::array<PyObject*, 1 + Prefix + sizeof...(Args)> argv{};
};

} // namespace detail

/// callable(*args): each argument is converted with to_python; the call uses vectorcall (the
/// interpreter's fast path: no argument tuple is built).
template <class... Args> object call(handle callable, Args&&... args) {
    PYASIO_DETAIL_ASSERT_GIL("pyasio::call called");
    detail::call_args<0, Args...> a(std::forward<Args>(args)...);
    return detail::checked(detail::vectorcall(callable.ptr(), a.argv.data() + 1,
                                              sizeof...(Args) | PY_VECTORCALL_ARGUMENTS_OFFSET));
}

/// o.name(*args), looked up and called without creating a bound method where the interpreter
/// allows it (PyObject_VectorcallMethod, 3.9+).
template <class... Args> object call_method(handle o, const char* name, Args&&... args) {
    PYASIO_DETAIL_ASSERT_GIL("pyasio::call_method called");
#if PY_VERSION_HEX >= 0x03090000
    object method_name = detail::checked(PyUnicode_InternFromString(name));
    detail::call_args<1, Args...> a(std::forward<Args>(args)...);
    a.argv[1] = o.ptr();
    return detail::checked(
        PyObject_VectorcallMethod(method_name.ptr(), a.argv.data() + 1,
                                  (1 + sizeof...(Args)) | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr));
#else
    return call(getattr(o, name), std::forward<Args>(args)...);
#endif
}

/// Runs f for a C function that Python calls (a PyCFunction, a slot, a callback) and turns its
/// outcome into what the C API expects: f's result converted with to_python (None for void) as a
/// new reference, or nullptr with the Python exception set from whatever f threw (the one
/// translator, pyasio::translate_exception). No C++ exception ever crosses into Python.
///
///     static PyObject* add(PyObject*, PyObject* args) {
///         return pyasio::entry_point([&] { return parse_and_add(args); });
///     }
template <class F> PyObject* entry_point(F&& f) noexcept {
    PYASIO_DETAIL_ASSERT_GIL("pyasio::entry_point called");
    detail::release_pending();
    try {
        if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
            f();
            return borrow(Py_None).release();
        } else {
            return to_python(f()).release();
        }
    } catch (...) {
        translate_exception(std::current_exception());
        return nullptr;
    }
}

PYASIO_NAMESPACE_END

#endif // PYASIO_OBJECT_HPP
