// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_ERROR_HPP
#define PYASIO_ERROR_HPP

/// @file
/// Errors: python_error (a Python exception in C++), the exceptions pyasio throws, and
/// translate_exception, the one translator from C++ exceptions to Python ones.

#include <pyasio/config.hpp>

#include <pyasio/detail/object_core.hpp>

#include <asio/error.hpp>

#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

PYASIO_NAMESPACE_BEGIN

namespace detail {

/// A str from bytes that should be UTF-8, with bad bytes replaced: for messages, which must
/// never fail to convert. Null only on MemoryError. Needs the GIL.
inline object message_to_python(std::string_view text) noexcept {
    return steal(
        PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "replace"));
}

/// Takes the exception raised in this thread as one normalized exception object, its traceback
/// attached, and clears the indicator: a new reference, or null when none is raised. GIL held.
inline PyObject* take_raised() noexcept {
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *t = nullptr, *v = nullptr, *tb = nullptr;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (v != nullptr && tb != nullptr)
        PyException_SetTraceback(v, tb);
    Py_XDECREF(t);
    Py_XDECREF(tb);
    return v;
#endif
}

/// Raises the exception object `value` (a reference it steals) again, with its traceback: the
/// inverse of take_raised. GIL held.
inline void raise_again(PyObject* value) noexcept {
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(value);
#else
    PyObject* type = reinterpret_cast<PyObject*>(Py_TYPE(value));
    Py_INCREF(type);
    PyErr_Restore(type, value, PyException_GetTraceback(value));
#endif
}

/// Sets the pending Python error (if any) aside for its lifetime and restores it at its end,
/// dropping any error raised meanwhile: for code that calls Python while an exception may be
/// propagating (a dealloc, a finalizer, a message being built). Needs the GIL.
class error_kept {
public:
    error_kept() noexcept { PyErr_Fetch(&type_, &value_, &trace_); }
    ~error_kept() {
        if (!gil_held()) // NOTE: a forced unwind: CPython ended this thread, which lost the GIL
            return;
        PyErr_Clear();
        PyErr_Restore(type_, value_, trace_);
    }
    error_kept(const error_kept&) = delete;
    error_kept& operator=(const error_kept&) = delete;

private:
    PyObject* type_ = nullptr;
    PyObject* value_ = nullptr;
    PyObject* trace_ = nullptr;
};

/// str(o) as UTF-8, or fallback when that fails; the error indicator is left as it was.
/// Needs the GIL.
inline std::string str_or(handle o, std::string_view fallback) {
    error_kept kept; // NOTE: keep a pending error intact across the calls
    std::string out(fallback);
    if (object s = steal(PyObject_Str(o.ptr()))) {
        Py_ssize_t size = 0;
        if (const char* utf8 = PyUnicode_AsUTF8AndSize(s.ptr(), &size))
            out.assign(utf8, static_cast<std::size_t>(size));
    }
    return out;
}

/// The name Python's traceback printer shows for an exception type: "ValueError" for builtins,
/// "package.module.Class" otherwise. Needs the GIL.
inline std::string exception_type_name(handle type) {
    if (!PyType_Check(type.ptr()))
        return "<unknown exception type>";
    // NOTE: from __module__ and __qualname__, as the traceback printer does (a C type's are
    // taken from its tp_name, so they are right for every type, in both APIs)
    error_kept kept;
    std::string name = "<unknown exception type>";
    if (object q = steal(PyObject_GetAttrString(type.ptr(), "__qualname__")))
        if (const char* s = PyUnicode_AsUTF8AndSize(q.ptr(), nullptr))
            name = s;
    if (object m = steal(PyObject_GetAttrString(type.ptr(), "__module__")))
        if (const char* s = PyUnicode_AsUTF8AndSize(m.ptr(), nullptr))
            if (std::string_view(s) != "builtins" && std::string_view(s) != "__main__")
                name = std::string(s) + "." + name;
    return name;
}

} // namespace detail

/// A Python exception carried through C++: its type, value and traceback.
///
/// Thrown by every pyasio call that fails in Python; an entry point called by Python
/// (pyasio::entry_point) re-raises the very same exception object. Copies share one state, so a
/// python_error may be copied, moved and destroyed on any thread (without the GIL the references
/// are queued, see pyasio::object). what() reads like Python's last traceback line,
/// "ValueError: bad value"; it is built on first use and takes the GIL for that.
class python_error : public std::exception {
public:
    /// Takes the exception that is currently raised in this thread (clearing the indicator).
    /// When none is set, the result is a SystemError that says so. Needs the GIL.
    static python_error fetch() {
        object value = steal(detail::take_raised());
        if (!value) {
            PyErr_SetString(PyExc_SystemError,
                            "pyasio: a Python C API call failed without setting an exception");
            return fetch();
        }
        return python_error(std::move(value));
    }

    /// Wraps an exception instance (a BaseException); anything else throws
    /// std::invalid_argument. Needs the GIL.
    explicit python_error(object instance) : state_(std::make_shared<state>()) {
        if (!instance || !PyExceptionInstance_Check(instance.ptr()))
            throw std::invalid_argument(
                "pyasio::python_error needs an exception instance (a BaseException)");
        state_->type = borrow(reinterpret_cast<PyObject*>(Py_TYPE(instance.ptr())));
        state_->trace = steal(PyException_GetTraceback(instance.ptr()));
        state_->value = std::move(instance);
    }

    /// The exception's type.
    handle type() const noexcept { return state_->type; }
    /// The exception instance.
    handle value() const noexcept { return state_->value; }
    /// The traceback (None-less: an empty handle when there is none).
    handle traceback() const noexcept { return state_->trace; }

    /// Raises this exception (the same object, with its traceback) as the current Python error.
    /// The python_error stays usable. Needs the GIL.
    void restore() const noexcept {
        PYASIO_DETAIL_ASSERT_GIL("pyasio::python_error::restore called");
        PyObject* v = state_->value.ptr();
        if (state_->trace)
            PyException_SetTraceback(v, state_->trace.ptr());
        Py_INCREF(v);
        detail::raise_again(v);
    }

    /// True when the exception is an instance of exc_type (a class or a tuple of classes), as
    /// `except exc_type:` would decide. Needs the GIL.
    bool matches(handle exc_type) const noexcept {
        PYASIO_DETAIL_ASSERT_GIL("pyasio::python_error::matches called");
        return PyErr_GivenExceptionMatches(state_->value.ptr(), exc_type.ptr()) != 0;
    }

    /// "Type: message", as the last line of a Python traceback. Takes the GIL on first use.
    const char* what() const noexcept override {
        state& s = *state_;
        if (s.described.load(std::memory_order_acquire))
            return s.what.c_str();
        // NOTE: a thread that holds the GIL (even the finalizing one) may describe it; any
        // other thread may take the GIL only while the interpreter is alive.
        if (!detail::gil_held() && !detail::interpreter_alive())
            return "Python exception (its message is lost: the interpreter was finalized before "
                   "what() was first called)";
        PyGILState_STATE g = PyGILState_Ensure();
        if (!s.described.load(std::memory_order_relaxed)) { // the GIL orders the builders
            try {
                std::string text = detail::exception_type_name(s.type);
                std::string msg = detail::str_or(s.value, "<exception str() failed>");
                if (!msg.empty())
                    text += ": " + msg;
                s.what = std::move(text);
            } catch (...) { // bad_alloc: leave the fixed text
                detail::caught();
                s.what.clear();
            }
            s.described.store(true, std::memory_order_release);
        }
        PyGILState_Release(g);
        return s.what.empty() ? "Python exception (no memory to describe it)" : s.what.c_str();
    }

private:
    struct state {
        object type, value, trace;
        std::string what;
        std::atomic<bool> described{false};
    };
    std::shared_ptr<state> state_;
};

/// A C++ value of the wrong Python type was given where pyasio can check it without the GIL
/// (e.g. a non-awaitable given to into_future). Raised in Python as TypeError.
class type_error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// The Python task that C++ was awaiting was cancelled by Python (task.cancel(), a timeout, or
/// its loop shutting down), not by the C++ side. Raised in Python as asyncio.CancelledError.
class task_cancelled : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Ctrl-C (SIGINT) stopped pyasio::run or pyasio::block_on: the C++ work was cancelled. Raised
/// in Python as KeyboardInterrupt.
class interrupted : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// The event loop that an operation needed was closed (heard at the close itself, see
/// into_future), was collected, or could not take the operation. Raised in Python as
/// RuntimeError.
class event_loop_closed : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A translator of C++ exceptions to Python ones (register_exception_translator): it rethrows
/// the exception it is given (std::rethrow_exception) and catches the types it knows, setting
/// the Python error for each; an exception it does not catch goes on to the next translator.
using exception_translator = std::function<void(const std::exception_ptr&)>;

namespace detail {

/// The translators registered in this interpreter by this copy of pyasio (each extension module
/// that vendors pyasio has its own), in the order of registration.
struct translator_registry {
    std::mutex mutex;
    std::vector<std::shared_ptr<const exception_translator>> translators;
};

/// The registered translators, newest first, tried on `e`: true once one has set the Python
/// error. GIL held.
inline bool translate_registered(const std::exception_ptr& e) noexcept {
    std::vector<std::shared_ptr<const exception_translator>> list;
    try {
        translator_registry& registry = per_interpreter<translator_registry>();
        std::lock_guard<std::mutex> lock(registry.mutex);
        if (registry.translators.empty())
            return false;
        list = registry.translators; // NOTE: a copy: a translator may register another
    } catch (...) {
        (void)caught();
        return false; // out of memory: the built-in mapping below
    }
    // NOTE: by index, not reverse iterators: std::reverse_iterator's instances cost every
    // translation unit that includes pyasio (bench/compile_time.py)
    for (std::size_t i = list.size(); i-- > 0;) {
        try {
            (*list[i])(e);
        } catch (...) { // not one of its types (or it failed): the next one
            (void)caught();
            PyErr_Clear();
            continue;
        }
        if (!PyErr_Occurred()) {
            static constexpr const char* message =
                "pyasio: an exception translator returned without setting a Python error (it "
                "must set one for the types it catches, and let the others leave it); the C++ "
                "exception was: ";
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                PyErr_Format(PyExc_SystemError, "%s%s", message, x.what());
            } catch (...) {
                (void)caught();
                PyErr_Format(PyExc_SystemError, "%sof unknown type", message);
            }
        }
        return true;
    }
    return false;
}

/// The exception nested in e (std::throw_with_nested), or null.
inline std::exception_ptr nested_in(const std::exception_ptr& e) noexcept {
    try {
        std::rethrow_exception(e);
    } catch (const std::nested_exception& n) {
        return n.nested_ptr();
    } catch (...) {
        (void)caught();
    }
    return nullptr;
}

} // namespace detail

/// Registers a translator for this interpreter, tried before pyasio's own mapping by every path
/// that turns a C++ exception into a Python one (entry_point, future_into_py's futures, streams,
/// block_on, run). The one registered last is tried first, so a module can refine what it
/// registered before. The registry belongs to this copy of pyasio: another extension module
/// that vendors its own copy keeps its own. Any thread, GIL held.
///
///     pyasio::register_exception_translator([](const std::exception_ptr& e) {
///         try {
///             std::rethrow_exception(e);
///         } catch (const my::timeout& t) {
///             PyErr_SetString(PyExc_TimeoutError, t.what());
///         }
///     });
inline void register_exception_translator(exception_translator translator) {
    PYASIO_DETAIL_ASSERT_GIL("pyasio::register_exception_translator called");
    if (!translator)
        throw std::invalid_argument("pyasio::register_exception_translator: the translator is "
                                    "empty (give it a function)");
    auto shared = std::make_shared<const exception_translator>(std::move(translator));
    detail::translator_registry& registry = detail::per_interpreter<detail::translator_registry>();
    std::lock_guard<std::mutex> lock(registry.mutex);
    registry.translators.push_back(std::move(shared));
}

/// Makes a Python exception class `name` in `module` (its __module__ the module's name, its base
/// `base`), registers a translator that raises it, with what() as its message, for a C++
/// exception of type E (or derived from it), and returns the class. Like pybind11's
/// register_exception. Call it from the module's init function; GIL held.
///
///     pyasio::register_exception<my::parse_error>(pyasio::handle(m), "ParseError",
///     PyExc_ValueError);
template <class E>
object register_exception(handle module, const char* name, PyObject* base = PyExc_Exception) {
    PYASIO_DETAIL_ASSERT_GIL("pyasio::register_exception called");
    if (!module || !PyModule_Check(module.ptr()))
        throw std::invalid_argument("pyasio::register_exception: the first argument must be the "
                                    "module (the object PyModule_Create returned)");
    const char* module_name = PyModule_GetName(module.ptr());
    if (module_name == nullptr)
        throw python_error::fetch();
    std::string qualified = std::string(module_name) + "." + name;
    object type = steal(PyErr_NewException(qualified.c_str(), base, nullptr));
    if (!type)
        throw python_error::fetch();
    if (PyObject_SetAttrString(module.ptr(), name, type.ptr()) != 0)
        throw python_error::fetch();
    register_exception_translator([type](const std::exception_ptr& e) {
        try {
            std::rethrow_exception(e);
        } catch (const E& err) {
            if (object text = detail::message_to_python(err.what()))
                PyErr_SetObject(type.ptr(), text.ptr());
        }
    });
    return type;
}

/// register_exception with the base class as a handle.
template <class E> object register_exception(handle module, const char* name, handle base) {
    return register_exception<E>(module, name, base.ptr());
}

namespace detail {
inline void translate_one(const std::exception_ptr& e) noexcept;
} // namespace detail

/// Sets the Python error indicator from any C++ exception, with the mapping every pyasio entry
/// point uses. First the translators registered with register_exception_translator (and
/// register_exception), newest first; then python_error -> the original exception object;
/// type_error -> TypeError; task_cancelled -> asyncio.CancelledError; interrupted ->
/// KeyboardInterrupt; std::bad_alloc -> MemoryError; std::system_error -> OSError (errno kept for
/// system and generic categories); std::invalid_argument, std::domain_error -> ValueError;
/// std::out_of_range -> IndexError; std::overflow_error -> OverflowError; other std::exception ->
/// RuntimeError(what()); anything else -> SystemError. An exception thrown with
/// std::throw_with_nested gets the translation of the exception nested in it as its __cause__.
/// Needs the GIL.
inline void translate_exception(const std::exception_ptr& e) noexcept {
    detail::translate_one(e);
    std::exception_ptr inner = e ? detail::nested_in(e) : nullptr;
    if (!inner || !PyErr_Occurred())
        return;
    // NOTE: the cause is translated with the outer exception set aside, then attached to it
    PyObject* value = detail::take_raised();
    translate_exception(inner);
    PyObject* cause = detail::take_raised();
    // NOTE: a python_error nested in its own handler (std::throw_with_nested while handling it)
    // would be made its own cause
    if (value != nullptr && cause != nullptr && cause != value)
        PyException_SetCause(value, cause); // steals the reference
    else
        Py_XDECREF(cause);
    if (value != nullptr)
        detail::raise_again(value);
}

namespace detail {

/// translate_exception without the nested cause.
inline void translate_one(const std::exception_ptr& e) noexcept {
    auto set = [](PyObject* type, const char* message) {
        object text = detail::message_to_python(message);
        if (text)
            PyErr_SetObject(type, text.ptr());
    };
    if (!e) { // NOTE: rethrowing an empty exception_ptr is undefined (it crashed)
        PyErr_SetString(PyExc_SystemError,
                        "pyasio: an error was to be raised, but none was given (an empty "
                        "std::exception_ptr)");
        return;
    }
    if (translate_registered(e))
        return;
    try {
        std::rethrow_exception(e);
    } catch (const python_error& err) {
        err.restore();
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
    } catch (const std::system_error& err) {
        const std::error_category& cat = err.code().category();
        // (Asio's socket and timer errors are errno values too, in a category of its own)
        if (cat == std::system_category() || cat == std::generic_category() ||
            cat == asio::error::get_system_category()) {
            // NOTE: OSError(errno, text) picks the matching subclass (ConnectionRefusedError,
            // TimeoutError, ...) and keeps errno. It is instantiated here and raised with its own
            // type: before 3.12, PyErr_SetObject(PyExc_OSError, args) would leave the raised
            // type as OSError, and `except FileNotFoundError` would not catch it.
            object text = detail::message_to_python(err.what());
            object exc = text ? steal(PyObject_CallFunction(PyExc_OSError, "iO", err.code().value(),
                                                            text.ptr()))
                              : object();
            if (exc)
                PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
        } else {
            set(PyExc_OSError, err.what());
        }
    } catch (const type_error& err) {
        set(PyExc_TypeError, err.what());
    } catch (const interrupted& err) {
        set(PyExc_KeyboardInterrupt, err.what());
    } catch (const task_cancelled& err) {
        object asyncio = steal(PyImport_ImportModule("asyncio"));
        object cancelled =
            asyncio ? steal(PyObject_GetAttrString(asyncio.ptr(), "CancelledError")) : object();
        if (cancelled)
            set(cancelled.ptr(), err.what());
    } catch (const std::invalid_argument& err) {
        set(PyExc_ValueError, err.what());
    } catch (const std::domain_error& err) {
        set(PyExc_ValueError, err.what());
    } catch (const std::out_of_range& err) {
        set(PyExc_IndexError, err.what());
    } catch (const std::overflow_error& err) {
        set(PyExc_OverflowError, err.what());
    } catch (const std::exception& err) {
        set(PyExc_RuntimeError, err.what());
    } catch (...) {
        detail::caught();
        PyErr_SetString(PyExc_SystemError,
                        "pyasio: a C++ exception of unknown type (not derived from "
                        "std::exception) reached Python");
    }
}

} // namespace detail

namespace detail {

/// Throws the current Python exception as python_error. Needs the GIL.
[[noreturn]] inline void throw_error_already_set() {
    throw python_error::fetch();
}

/// Raises type(message) and throws it as python_error. Needs the GIL.
[[noreturn]] inline void throw_error(PyObject* type, std::string_view message) {
    if (object text = message_to_python(message))
        PyErr_SetObject(type, text.ptr());
    throw_error_already_set();
}

/// Raises type(message) caused by `cause` (its __cause__, so that its traceback is kept) and
/// throws it as python_error. Needs the GIL.
[[noreturn]] inline void throw_error_from(PyObject* type, std::string_view message,
                                          const python_error& cause) {
    try {
        throw_error(type, message);
    } catch (const python_error& e) {
        Py_INCREF(cause.value().ptr());
        PyException_SetCause(e.value().ptr(), cause.value().ptr()); // steals the reference
        throw;
    }
}

/// steal(p), or throws the current Python exception when p is null. Needs the GIL.
inline object checked(PyObject* p) {
    if (p == nullptr)
        throw_error_already_set();
    return steal(p);
}

} // namespace detail

PYASIO_NAMESPACE_END

#endif // PYASIO_ERROR_HPP
