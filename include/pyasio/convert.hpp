// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_CONVERT_HPP
#define PYASIO_CONVERT_HPP

/// @file
/// Conversions between C++ values and Python objects: to_python, from_python, and the
/// converter customization point with its specializations for the standard types.

#include <pyasio/config.hpp>

#include <pyasio/detail/object_core.hpp>
#include <pyasio/error.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

PYASIO_NAMESPACE_BEGIN

namespace detail {

template <class> inline constexpr bool always_false = false;

/// Raises TypeError("expected <expected>, got <actual type>") as python_error.
[[noreturn]] inline void throw_type_error(std::string_view expected, handle actual) {
    std::string msg = "expected ";
    msg += expected;
    msg += ", got ";
    msg += actual.type_name();
    throw_error(PyExc_TypeError, msg);
}

template <class T> constexpr const char* integer_name() noexcept {
    if constexpr (std::is_same_v<T, signed char>)
        return "signed char";
    else if constexpr (std::is_same_v<T, unsigned char>)
        return "unsigned char";
    else if constexpr (std::is_same_v<T, short>)
        return "short";
    else if constexpr (std::is_same_v<T, unsigned short>)
        return "unsigned short";
    else if constexpr (std::is_same_v<T, int>)
        return "int";
    else if constexpr (std::is_same_v<T, unsigned int>)
        return "unsigned int";
    else if constexpr (std::is_same_v<T, long>)
        return "long";
    else if constexpr (std::is_same_v<T, unsigned long>)
        return "unsigned long";
    else if constexpr (std::is_same_v<T, long long>)
        return "long long";
    else
        return "unsigned long long";
}

template <class T>
inline constexpr bool is_character_v =
    std::is_same_v<T, char> || std::is_same_v<T, wchar_t> || std::is_same_v<T, char8_t> ||
    std::is_same_v<T, char16_t> || std::is_same_v<T, char32_t>;

template <class T>
inline constexpr bool is_integer_v =
    std::is_integral_v<T> && !std::is_same_v<T, bool> && !is_character_v<T>;

[[noreturn]] inline void throw_out_of_range(handle value, const char* cpp_type, long long min,
                                            unsigned long long max) {
    std::string msg = "Python int " + str_or(value, "?") + " is out of range for C++ " + cpp_type +
                      " [" + std::to_string(min) + ", " + std::to_string(max) +
                      "]; convert to a wider C++ type, or to pyasio::object to take any int";
    throw_error(PyExc_OverflowError, msg);
}

/// A conversion to Python gave an empty object: the Python error it set, or what happened.
[[noreturn]] inline void empty_to_python() {
    if (PyErr_Occurred())
        throw_error_already_set(); // a converter that returned null on a Python error
    throw std::invalid_argument(
        "pyasio::to_python: an empty pyasio::object (default-constructed, moved from or released) "
        "or a null handle cannot cross into Python; for None use std::nullopt, nullptr or "
        "pyasio::borrow(Py_None)");
}

} // namespace detail

/// The conversion customization point. For a type of your own, specialize it in namespace pyasio:
///
///     template <> struct pyasio::converter<point> {
///         static pyasio::object to_python(const point& p);   // new reference or throw
///         static point from_python(pyasio::handle h);        // value or throw
///     };
///
/// Either function may be left out when only one direction is needed. Both are called with the
/// GIL held, and report bad input by throwing (pyasio::python_error, or any C++ exception, which
/// the translator maps). The optional second parameter takes std::enable_if_t conditions for
/// partial specializations over a family of types.
template <class T, class Enable> struct converter {
    static_assert(detail::always_false<T>,
                  "pyasio: no conversion for this type. Specialize pyasio::converter<T> with "
                  "static object to_python(const T&) and/or static T from_python(handle) "
                  "(see docs/foundation.md, Conversions).");
};

/// Converts a C++ value into a new Python object. Throws python_error on failure. Needs the GIL.
///
/// Never returns an empty object: an empty pyasio::object (default-constructed, moved from,
/// released) or a null handle has no Python value, and would reach Python as NULL (a crash, or
/// SystemError); it throws std::invalid_argument (ValueError in Python) saying so. For None, use
/// std::nullopt (std::optional<object>), nullptr, or pyasio::borrow(Py_None).
template <class T> object to_python(T&& value) {
    object o = converter<std::decay_t<T>>::to_python(std::forward<T>(value));
    if (!o) [[unlikely]]
        detail::empty_to_python();
    return o;
}

/// Converts a Python object into a T. A wrong type throws python_error holding
/// TypeError("expected <T's Python type>, got <type>"); an integer out of range, OverflowError.
/// Needs the GIL.
template <class T> T from_python(handle h) {
    static_assert(!std::is_reference_v<T>, "pyasio::from_python<T>: T must be a value type");
    if (!h)
        throw std::invalid_argument("pyasio::from_python: the handle is empty (a null PyObject*)");
    return converter<T>::from_python(h);
}

// --- None -------------------------------------------------------------------------------------

/// std::nullptr_t <-> None.
template <> struct converter<std::nullptr_t> {
    /// None.
    static object to_python(std::nullptr_t) { return borrow(Py_None); }
    /// nullptr for None; anything else is a TypeError.
    static std::nullptr_t from_python(handle h) {
        if (!h.is_none())
            detail::throw_type_error("None", h);
        return nullptr;
    }
};

// --- bool -------------------------------------------------------------------------------------

/// bool <-> bool.
template <> struct converter<bool> {
    /// True or False.
    static object to_python(bool v) { return borrow(v ? Py_True : Py_False); }
    /// Accepts True and False only: any other object (0, 1, None) is a TypeError.
    static bool from_python(handle h) {
        // NOTE: strict on purpose: truthiness (1, "x", [0]) is not a bool.
        if (!PyBool_Check(h.ptr()))
            detail::throw_type_error("bool", h);
        return h.ptr() == Py_True;
    }
};

// --- integers ---------------------------------------------------------------------------------

/// Integer types (not bool or the character types) <-> int. A Python int outside T's range is
/// an OverflowError that names the range.
template <class T> struct converter<T, std::enable_if_t<detail::is_integer_v<T>>> {
    /// An int of the same value.
    static object to_python(T v) {
        if constexpr (std::is_signed_v<T>)
            // NOLINTNEXTLINE(bugprone-signed-char-misuse): signed char is a number here
            return detail::checked(PyLong_FromLongLong(static_cast<long long>(v)));
        else
            return detail::checked(PyLong_FromUnsignedLongLong(static_cast<unsigned long long>(v)));
    }

    /// Accepts int (and bool, an int subclass) and objects with __index__; not float or str.
    static T from_python(handle h) {
        object index;
        if (!PyLong_Check(h.ptr())) {
            if (PyFloat_Check(h.ptr()) || !PyIndex_Check(h.ptr()))
                detail::throw_type_error("int", h);
            index = detail::checked(PyNumber_Index(h.ptr()));
            h = index;
        }
        // NOLINTNEXTLINE(bugprone-signed-char-misuse): signed char is a number here
        constexpr long long min = static_cast<long long>(std::numeric_limits<T>::min());
        constexpr auto max = static_cast<unsigned long long>(std::numeric_limits<T>::max());
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(h.ptr(), &overflow);
        if (v == -1 && PyErr_Occurred())
            detail::throw_error_already_set();
        if (overflow < 0 || (overflow == 0 && v < min))
            detail::throw_out_of_range(h, detail::integer_name<T>(), min, max);
        if (overflow == 0) {
            if (v >= 0 && static_cast<unsigned long long>(v) > max)
                detail::throw_out_of_range(h, detail::integer_name<T>(), min, max);
            return static_cast<T>(v);
        }
        // Above LLONG_MAX: only the widest unsigned types can hold it.
        if constexpr (std::is_unsigned_v<T> && sizeof(T) == sizeof(unsigned long long)) {
            unsigned long long u = PyLong_AsUnsignedLongLong(h.ptr());
            if (u == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
                PyErr_Clear();
                detail::throw_out_of_range(h, detail::integer_name<T>(), min, max);
            }
            return static_cast<T>(u);
        } else {
            detail::throw_out_of_range(h, detail::integer_name<T>(), min, max);
        }
    }
};

// --- floating point ---------------------------------------------------------------------------

/// float, double, long double <-> float (a C double).
template <class T> struct converter<T, std::enable_if_t<std::is_floating_point_v<T>>> {
    /// A float of v converted to double.
    static object to_python(T v) { return detail::checked(PyFloat_FromDouble(double(v))); }
    /// Accepts float and int (as Python's float() would); not str or None.
    static T from_python(handle h) {
        if (PyFloat_Check(h.ptr()))
            return narrow(h, PyFloat_AsDouble(h.ptr()));
        if (!PyLong_Check(h.ptr()))
            detail::throw_type_error("float", h);
        double v = PyLong_AsDouble(h.ptr());
        if (v == -1.0 && PyErr_Occurred())
            detail::throw_error_already_set();
        return narrow(h, v);
    }

private:
    /// v as T: a finite double that would round beyond a float's range is an OverflowError (the
    /// cast would be undefined); one that rounds to the largest float passes, and so do
    /// infinities and NaN.
    static T narrow(handle h, double v) {
        if constexpr (sizeof(T) < sizeof(double)) {
            // NOTE: from the largest float plus half its ulp, a double rounds to infinity
            const double limit = double(std::numeric_limits<T>::max()) +
                                 std::ldexp(1.0, std::numeric_limits<T>::max_exponent -
                                                     std::numeric_limits<T>::digits - 1);
            if (std::isfinite(v) && std::fabs(v) >= limit)
                detail::throw_error(PyExc_OverflowError,
                                    "Python number " + detail::str_or(h, "?") +
                                        " is out of range for C++ float (its largest magnitude "
                                        "is about 3.4e38); convert to double");
        }
        return static_cast<T>(v);
    }
};

// --- text -------------------------------------------------------------------------------------

namespace detail {
/// A str from UTF-8; invalid UTF-8 raises UnicodeDecodeError (as python_error), whose reason
/// says what to do.
inline object utf8_to_python(std::string_view s) {
    PyObject* text = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "strict");
    if (text == nullptr && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError) != 0) {
        python_error e = python_error::fetch();
        object reason = steal(PyObject_GetAttrString(e.value().ptr(), "reason"));
        object hint = steal(
            PyUnicode_FromFormat("%S (a C++ string sent to Python must hold UTF-8; send bytes, as "
                                 "std::vector<std::byte>, for other data)",
                                 reason ? reason.ptr() : Py_None));
        if (hint)
            PyObject_SetAttrString(e.value().ptr(), "reason", hint.ptr());
        PyErr_Clear();
        throw e;
    }
    return checked(text);
}
} // namespace detail

/// std::string <-> str, as UTF-8. Invalid UTF-8 raises UnicodeDecodeError; a str with lone
/// surrogates raises UnicodeEncodeError; bytes is not a str (TypeError).
template <> struct converter<std::string> {
    /// A str decoded from `s` as UTF-8.
    static object to_python(std::string_view s) { return detail::utf8_to_python(s); }
    /// The str's text as UTF-8.
    static std::string from_python(handle h) {
        if (!PyUnicode_Check(h.ptr()))
            detail::throw_type_error("str", h);
        Py_ssize_t size = 0;
        const char* data = PyUnicode_AsUTF8AndSize(h.ptr(), &size);
        if (data == nullptr)
            detail::throw_error_already_set();
        return std::string(data, static_cast<std::size_t>(size));
    }
};

/// std::string_view -> str. There is no str -> std::string_view: the view would dangle once the
/// str is gone; convert to std::string instead.
template <> struct converter<std::string_view> {
    /// A str decoded from `s` as UTF-8.
    static object to_python(std::string_view s) { return detail::utf8_to_python(s); }
    /// Not available: using it is a compile error that names std::string instead.
    template <class U = void> static std::string_view from_python(handle) {
        static_assert(detail::always_false<U>,
                      "pyasio: from_python<std::string_view> would return a view into a Python "
                      "object that may be freed; use from_python<std::string>.");
        return {};
    }
};

/// A C string -> str; a null pointer gives None.
template <> struct converter<const char*> {
    /// A str decoded from the NUL-terminated `s` as UTF-8, or None when `s` is null.
    static object to_python(const char* s) {
        return s ? detail::utf8_to_python(s) : borrow(Py_None);
    }
};
/// char* -> str, as const char*.
template <> struct converter<char*> : converter<const char*> {};

// --- bytes ------------------------------------------------------------------------------------

/// std::vector<std::byte> <-> bytes (from bytes or bytearray). A std::span<const std::byte>
/// converts to bytes too.
template <> struct converter<std::vector<std::byte>> {
    /// A bytes object with a copy of `b`.
    static object to_python(std::span<const std::byte> b) {
        return detail::checked(PyBytes_FromStringAndSize(reinterpret_cast<const char*>(b.data()),
                                                         static_cast<Py_ssize_t>(b.size())));
    }
    /// A copy of the contents of a bytes or bytearray; anything else (memoryview included) is a
    /// TypeError.
    static std::vector<std::byte> from_python(handle h) {
        const char* data = nullptr;
        Py_ssize_t size = 0;
        if (PyBytes_Check(h.ptr())) {
            data = PyBytes_AsString(h.ptr());
            size = PyBytes_Size(h.ptr());
        } else if (PyByteArray_Check(h.ptr())) {
            data = PyByteArray_AsString(h.ptr());
            size = PyByteArray_Size(h.ptr());
        } else {
            detail::throw_type_error("bytes or bytearray", h);
        }
        auto* first = reinterpret_cast<const std::byte*>(data);
        return std::vector<std::byte>(first, first + size);
    }
};
/// std::span<const std::byte> -> bytes (a copy). There is no conversion from Python to a span:
/// convert to std::vector<std::byte>.
template <std::size_t N> struct converter<std::span<const std::byte, N>> {
    /// A bytes object with a copy of `b`.
    static object to_python(std::span<const std::byte> b) {
        return converter<std::vector<std::byte>>::to_python(b);
    }
    /// Not available: using it is a compile error that names std::vector<std::byte> instead.
    template <class U = void> static std::span<const std::byte, N> from_python(handle) {
        static_assert(detail::always_false<U>,
                      "pyasio: from_python<std::span<...std::byte>> would return a view into "
                      "memory that is freed at once; use from_python<std::vector<std::byte>>.");
        return {};
    }
};
/// std::span<std::byte> -> bytes (a copy), as std::span<const std::byte>.
template <std::size_t N>
struct converter<std::span<std::byte, N>> : converter<std::span<const std::byte, N>> {};

// --- Python objects ---------------------------------------------------------------------------

/// pyasio::object <-> any Python object, unchanged.
template <> struct converter<object> {
    /// A new reference to `o`.
    static object to_python(const object& o) { return o; }
    /// `o`'s reference, moved out (no reference count change).
    static object to_python(object&& o) { return std::move(o); }
    /// A new reference to `h`.
    static object from_python(handle h) { return borrow(h); }
};
/// pyasio::handle <-> any Python object, unchanged.
template <> struct converter<handle> {
    /// A new reference to `h`.
    static object to_python(handle h) { return borrow(h); }
    /// `h` itself: borrowed, valid while the object it came from lives.
    static handle from_python(handle h) { return h; }
};

// --- containers -------------------------------------------------------------------------------

/// std::optional<T>: std::nullopt <-> None.
template <class T> struct converter<std::optional<T>> {
    /// None for std::nullopt, else the value converted.
    static object to_python(const std::optional<T>& v) {
        return v ? pyasio::to_python(*v) : borrow(Py_None);
    }
    /// std::nullopt for None, else from_python<T>.
    static std::optional<T> from_python(handle h) {
        if (h.is_none())
            return std::nullopt;
        return pyasio::from_python<T>(h);
    }
};

namespace detail {
/// The size of a list or tuple, or TypeError naming what was expected.
inline Py_ssize_t sequence_size(handle h, std::string_view expected) {
    if (PyList_Check(h.ptr()))
        return list_size(h.ptr());
    if (PyTuple_Check(h.ptr()))
        return tuple_size(h.ptr());
    throw_type_error(expected, h);
}

/// Item i of a list or tuple (borrowed); i in range.
inline handle sequence_item(handle h, Py_ssize_t i) noexcept {
    return handle(PyList_Check(h.ptr()) ? list_item(h.ptr(), i) : tuple_item(h.ptr(), i));
}
} // namespace detail

/// std::vector<T> -> list; list or tuple -> std::vector<T> (a str is not a list of characters).
template <class T> struct converter<std::vector<T>> {
    /// A new list of the items converted.
    static object to_python(const std::vector<T>& v) {
        object list = detail::checked(PyList_New(static_cast<Py_ssize_t>(v.size())));
        for (std::size_t i = 0; i < v.size(); ++i) {
            // NOTE: vector<bool> hands out proxies; the cast gives the element type either way.
            object item = pyasio::to_python(static_cast<const T&>(v[i]));
            detail::list_init(list.ptr(), static_cast<Py_ssize_t>(i), item.release());
        }
        return list;
    }
    /// The items of a list or tuple, each with from_python<T>; anything else is a TypeError.
    static std::vector<T> from_python(handle h) {
        Py_ssize_t size = detail::sequence_size(h, "list or tuple");
        std::vector<T> out;
        out.reserve(static_cast<std::size_t>(size));
        // NOTE: converting an item may run Python code that resizes a list: re-read the size on
        // every step, and hold the item while it converts.
        for (Py_ssize_t i = 0; i < size; ++i) {
            size = detail::sequence_size(h, "list or tuple");
            if (i >= size)
                break;
            object item = borrow(detail::sequence_item(h, i));
            out.push_back(pyasio::from_python<T>(item));
        }
        return out;
    }
};

namespace detail {
template <class Map> struct map_converter {
    static object to_python(const Map& m) {
        object dict = checked(PyDict_New());
        for (const auto& [key, value] : m) {
            object k = pyasio::to_python(key);
            object v = pyasio::to_python(value);
            if (PyDict_SetItem(dict.ptr(), k.ptr(), v.ptr()) != 0)
                throw_error_already_set();
        }
        return dict;
    }
    static Map from_python(handle h) {
        if (!PyDict_Check(h.ptr()))
            throw_type_error("dict", h);
        // NOTE: converting a key or value may run Python code that changes the dict, and
        // PyDict_Next must not see a dict change under it: convert from a list of its items.
        object items = checked(PyDict_Items(h.ptr()));
        Map out;
        for (Py_ssize_t i = 0; i < list_size(items.ptr()); ++i) {
            PyObject* pair = list_item(items.ptr(), i);
            out.emplace(
                pyasio::from_python<typename Map::key_type>(handle(tuple_item(pair, 0))),
                pyasio::from_python<typename Map::mapped_type>(handle(tuple_item(pair, 1))));
        }
        return out;
    }
};
} // namespace detail

/// std::map <-> dict. Keys and values convert with their own converters.
template <class K, class V, class C, class A>
struct converter<std::map<K, V, C, A>> : detail::map_converter<std::map<K, V, C, A>> {};

/// std::unordered_map <-> dict.
template <class K, class V, class H, class E, class A>
struct converter<std::unordered_map<K, V, H, E, A>>
    : detail::map_converter<std::unordered_map<K, V, H, E, A>> {};

namespace detail {
template <class Tuple, std::size_t... I>
object tuple_to_python(const Tuple& t, std::index_sequence<I...>) {
    object tuple = checked(PyTuple_New(sizeof...(I)));
    (tuple_init(tuple.ptr(), I, pyasio::to_python(std::get<I>(t)).release()), ...);
    return tuple;
}

template <class Tuple, std::size_t... I>
Tuple tuple_from_python(handle h, std::index_sequence<I...>) {
    auto items = [](Py_ssize_t n) { return std::to_string(n) + (n == 1 ? " item" : " items"); };
    std::string expected = "tuple of " + items(sizeof...(I));
    Py_ssize_t size = sequence_size(h, expected);
    if (size != static_cast<Py_ssize_t>(sizeof...(I)))
        throw_error(PyExc_TypeError,
                    "expected " + expected + ", got " + h.type_name() + " of " + items(size));
    // NOTE: converting an item may run Python code that changes a list; convert from a tuple
    // copy, whose items cannot change.
    object frozen = PyList_Check(h.ptr()) ? checked(PyList_AsTuple(h.ptr())) : borrow(h);
    // NOTE: braced initialization converts the items left to right.
    return Tuple{pyasio::from_python<std::tuple_element_t<I, Tuple>>(
        handle(tuple_item(frozen.ptr(), static_cast<Py_ssize_t>(I))))...};
}
} // namespace detail

/// std::tuple <-> tuple (a list of the right length is accepted too).
template <class... T> struct converter<std::tuple<T...>> {
    /// A tuple of the items converted.
    static object to_python(const std::tuple<T...>& t) {
        return detail::tuple_to_python(t, std::index_sequence_for<T...>{});
    }
    /// From a tuple or list of exactly sizeof...(T) items (TypeError otherwise), converted left
    /// to right.
    static std::tuple<T...> from_python(handle h) {
        return detail::tuple_from_python<std::tuple<T...>>(h, std::index_sequence_for<T...>{});
    }
};

/// std::pair <-> tuple of two items.
template <class A, class B> struct converter<std::pair<A, B>> {
    /// The tuple (first, second).
    static object to_python(const std::pair<A, B>& p) {
        return detail::tuple_to_python(p, std::index_sequence<0, 1>{});
    }
    /// From a tuple or list of two items (TypeError otherwise).
    static std::pair<A, B> from_python(handle h) {
        return detail::tuple_from_python<std::pair<A, B>>(h, std::index_sequence<0, 1>{});
    }
};

PYASIO_NAMESPACE_END

#endif // PYASIO_CONVERT_HPP
