// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_OBJECT_HPP
#define PYASIO_OBJECT_HPP

/// @file
/// Python objects from C++: handle and object (borrowed and owned PyObject*), steal and
/// borrow, attributes, call and call_method with keyword arguments, and entry_point for the C
/// functions Python calls. getattr, hasattr, setattr, import, str, repr, call and call_method
/// need the GIL and throw python_error when Python fails.

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

/// A keyword argument for call and call_method: `pyasio::call(f, 1, pyasio::kwarg("sep", ","))`.
/// Keyword arguments come after the positional ones (a compile error says so otherwise).
template <class T> struct kwarg_t {
    /// The keyword (UTF-8).
    const char* name;
    /// The value (from kwarg(): a reference to the caller's), converted when the call is made.
    T value;
};

/// Names a keyword argument; the value is converted with to_python when the call is made.
template <class T> kwarg_t<T&&> kwarg(const char* name, T&& value) {
    return {name, std::forward<T>(value)};
}

namespace detail {
/// An interned str, for method names used on hot paths (cache it, e.g. in per_interpreter).
inline object interned(const char* name) {
    return checked(PyUnicode_InternFromString(name));
}
} // namespace detail

namespace detail {

template <class T> inline constexpr bool is_kwarg_v = false;
template <class T> inline constexpr bool is_kwarg_v<kwarg_t<T>> = true;

template <class... Args> constexpr bool keywords_last() {
    constexpr bool kw[] = {false, is_kwarg_v<std::decay_t<Args>>...};
    for (std::size_t i = 1; i + 1 < sizeof...(Args) + 1; ++i)
        if (kw[i] && !kw[i + 1])
            return false;
    return true;
}

template <class A> object argument_to_python(A&& a) {
    if constexpr (is_kwarg_v<std::decay_t<A>>)
        return to_python(std::forward<decltype(a.value)>(a.value));
    else
        return to_python(std::forward<A>(a));
}

/// Converts args and lays them out for vectorcall after one free slot (slot 0) that the callee
/// may borrow (PY_VECTORCALL_ARGUMENTS_OFFSET), and after Prefix more (for a method's self).
/// Keyword values follow the positional ones; their names go in a tuple.
template <std::size_t Prefix, class... Args> struct call_args {
    static_assert(keywords_last<Args...>(),
                  "pyasio::call: keyword arguments (pyasio::kwarg) must come after the "
                  "positional ones");
    static constexpr std::size_t keywords = (std::size_t(is_kwarg_v<std::decay_t<Args>>) + ... + 0);
    static constexpr std::size_t positional = sizeof...(Args) - keywords;

    explicit call_args(Args&&... args) : owned{argument_to_python(std::forward<Args>(args))...} {
        for (std::size_t i = 0; i < sizeof...(Args); ++i)
            argv[1 + Prefix + i] = owned[i].ptr();
        if constexpr (keywords > 0) {
            names = checked(PyTuple_New(keywords));
            std::size_t k = 0;
            (add_name(args, k), ...);
        }
    }

    /// The nargsf argument of vectorcall: positional count (with Prefix) and the offset flag.
    static constexpr std::size_t nargsf() {
        return (Prefix + positional) | PY_VECTORCALL_ARGUMENTS_OFFSET;
    }

    std::array<object, sizeof...(Args)> owned;
    std::array<PyObject*, 1 + Prefix + sizeof...(Args)> argv{};
    object names; // the keyword names, or empty

private:
    template <class A> void add_name(const A& a, std::size_t& k) {
        if constexpr (is_kwarg_v<A>) {
            PyObject* name = PyUnicode_InternFromString(a.name);
            if (name == nullptr)
                throw_error_already_set();
            tuple_init(names.ptr(), static_cast<Py_ssize_t>(k++), name);
        }
    }
};

inline PyObject* vectorcall(PyObject* callable, PyObject* const* args, std::size_t nargsf,
                            PyObject* kwnames) {
#if PY_VERSION_HEX >= 0x03090000
    return PyObject_Vectorcall(callable, args, nargsf, kwnames);
#else
    return _PyObject_Vectorcall(callable, args, nargsf, kwnames);
#endif
}

/// The namespace (a dict) that Python source `code` fills when run in a namespace of its own,
/// with the builtins, as module "pyasio"; `filename` names it in tracebacks. `globals`: a dict
/// of names the code finds set (a new one when empty).
inline object python_namespace(const char* code, const char* filename = "<pyasio>",
                               object globals = object()) {
    if (!globals)
        globals = checked(PyDict_New());
    object module_name = checked(PyUnicode_FromString("pyasio"));
    if (PyDict_SetItemString(globals.ptr(), "__builtins__", PyEval_GetBuiltins()) < 0 ||
        PyDict_SetItemString(globals.ptr(), "__name__", module_name.ptr()) < 0)
        throw_error_already_set();
    object compiled = checked(Py_CompileString(code, filename, Py_file_input));
    (void)checked(PyEval_EvalCode(compiled.ptr(), globals.ptr(), globals.ptr()));
    return globals;
}

/// The function `name` that Python source `code` defines (see python_namespace). For the few
/// helpers that must be Python functions.
inline object python_function(const char* code, const char* name) {
    return checked(PyMapping_GetItemString(python_namespace(code).ptr(), name));
}

/// What a weak reference points to, or an empty object once it died. Needs the GIL.
inline object weak_target(handle weakref) {
#if PYASIO_DETAIL_API_VERSION >= 0x030D0000
    PyObject* target = nullptr;
    if (PyWeakref_GetRef(weakref.ptr(), &target) < 0)
        throw_error_already_set();
    return steal(target);
#else
    // NOTE: deprecated from 3.13 on, which an abi3 build for 3.12 may see in its headers; it stays
    // in the stable ABI
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
    PyObject* target = PyWeakref_GetObject(weakref.ptr()); // borrowed
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic pop
#endif
    if (target == nullptr)
        throw_error_already_set();
    return target == Py_None ? object() : borrow(target);
#endif
}

/// tp_new of the types whose instances only pyasio makes (Python code gets them from pyasio).
inline PyObject* refuse_new(PyTypeObject* type, PyObject*, PyObject*) {
    PyErr_Format(PyExc_TypeError, "cannot create %S instances: pyasio makes them",
                 reinterpret_cast<PyObject*>(type));
    return nullptr;
}

/// A new heap type from `spec`, deriving from `base` (or object). Every Python type of pyasio is
/// made by this one call, in the full and the limited API.
inline PyTypeObject* make_type(PyType_Spec& spec, handle base = handle()) {
    PyObject* type = base ? PyType_FromSpecWithBases(&spec, base.ptr()) : PyType_FromSpec(&spec);
    if (type == nullptr)
        throw_error_already_set();
    return reinterpret_cast<PyTypeObject*>(type);
}

} // namespace detail

/// callable(*args, **kwargs): each argument is converted with to_python; pyasio::kwarg names a
/// keyword argument. The call uses vectorcall (the interpreter's fast path: no argument tuple or
/// dict is built).
template <class... Args> object call(handle callable, Args&&... args) {
    PYASIO_DETAIL_ASSERT_GIL("pyasio::call called");
    detail::call_args<0, Args...> a(std::forward<Args>(args)...);
    return detail::checked(
        detail::vectorcall(callable.ptr(), a.argv.data() + 1, a.nargsf(), a.names.ptr()));
}

/// o.name(*args, **kwargs) with `name` an interned str (cache it on hot paths), called without
/// creating a bound method where the interpreter allows it (PyObject_VectorcallMethod, 3.9+).
template <class... Args> object call_method(handle o, handle name, Args&&... args) {
    PYASIO_DETAIL_ASSERT_GIL("pyasio::call_method called");
#if PY_VERSION_HEX >= 0x03090000
    detail::call_args<1, Args...> a(std::forward<Args>(args)...);
    a.argv[1] = o.ptr();
    return detail::checked(
        PyObject_VectorcallMethod(name.ptr(), a.argv.data() + 1, a.nargsf(), a.names.ptr()));
#else
    return call(getattr(o, name), std::forward<Args>(args)...);
#endif
}

/// o.name(*args, **kwargs).
template <class... Args> object call_method(handle o, const char* name, Args&&... args) {
    object method_name = detail::checked(PyUnicode_InternFromString(name));
    return call_method(o, handle(method_name), std::forward<Args>(args)...);
}

/// Runs f for a C function that Python calls (a PyCFunction, a slot, a callback) and turns its
/// outcome into what the C API expects: f's result converted with to_python (None for void) as a
/// new reference, or nullptr with the Python exception set from whatever f threw (the one
/// translator, pyasio::translate_exception). No C++ exception ever crosses into Python; only a
/// forced unwind passes through (it is not an error: the thread is being ended, by pthread_exit,
/// pthread_cancel, or CPython at interpreter exit), so entry_point is not noexcept.
///
///     static PyObject* add(PyObject*, PyObject* args) {
///         return pyasio::entry_point([&] { return parse_and_add(args); });
///     }
template <class F> PyObject* entry_point(F&& f) {
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
        translate_exception(detail::caught());
        return nullptr;
    }
}

PYASIO_NAMESPACE_END

#endif // PYASIO_OBJECT_HPP
