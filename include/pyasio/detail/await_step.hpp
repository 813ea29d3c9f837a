// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_DETAIL_AWAIT_STEP_HPP
#define PYASIO_DETAIL_AWAIT_STEP_HPP

/// @file
/// Stepping an await from C: what pyasio's awaitable types (the streams, pyasio.TrioFuture)
/// share to drive an inner await and to end their own.

#include <pyasio/config.hpp>

#include <pyasio/detail/capi.hpp>
#include <pyasio/error.hpp>
#include <pyasio/object.hpp>

#include <string>

PYASIO_NAMESPACE_BEGIN

namespace detail {

/// The names an await step calls, interned once per interpreter.
struct step_names {
    object send = interned("send");
    object throw_ = interned("throw");
    object value = interned("value");
};

/// The exception instance that coroutine.throw(type[, value[, tb]]) or throw(instance) names.
inline object thrown_exception(PyObject* args) {
    PyObject *type = nullptr, *value = nullptr, *tb = nullptr;
    if (!PyArg_UnpackTuple(args, "throw", 1, 3, &type, &value, &tb))
        throw_error_already_set();
    if (PyExceptionInstance_Check(type))
        return borrow(type);
    if (!PyExceptionClass_Check(type))
        throw_error(PyExc_TypeError, "throw() takes an exception class or instance");
    PyErr_SetObject(type, value == nullptr ? Py_None : value);
    python_error e = python_error::fetch();
    return borrow(e.value());
}

/// am_await of an object that is its own iterator (a coroutine-like object).
inline PyObject* self_await(PyObject* o) {
    Py_INCREF(o);
    return o;
}

/// __name__ and __qualname__ of pyasio's coroutine-like objects, as a coroutine has them: trio
/// names the function in its error for a call passed where the function belongs
/// (nursery.start_soon(mod.f(x))).
inline PyObject* coroutine_name(PyObject*, void*) {
    return PyUnicode_FromString("<C++ function>");
}

/// The getset of __name__ and __qualname__ (Py_tp_getset).
inline PyGetSetDef coroutine_names[] = {{"__name__", coroutine_name, nullptr, nullptr, nullptr},
                                        {"__qualname__", coroutine_name, nullptr, nullptr, nullptr},
                                        {nullptr, nullptr, nullptr, nullptr, nullptr}};

/// How one step of an await went.
enum class resumed { yielded, returned, raised };

/// One step of the iterator `it` of an await: send(sent) (null: None), or throw(thrown). `out`
/// gets what it yielded (to pass up to the task) or returned (its result); when it raised, the
/// Python error is set. GIL held.
// NOTE: what the task sends is passed on: asyncio sends None, trio the outcome of what the
// await yielded (wait_task_rescheduled unwraps it).
inline resumed resume(handle it, PyObject* sent, PyObject* thrown, object& out) {
    PyObject* r = nullptr;
    if (sent == nullptr)
        sent = Py_None;
    if (thrown != nullptr) {
        r = PyObject_CallMethodObjArgs(it.ptr(), per_interpreter<step_names>().throw_.ptr(), thrown,
                                       nullptr);
    } else {
#if PY_VERSION_HEX >= 0x030A0000
        PyObject* result = nullptr;
        PySendResult s = PyIter_Send(it.ptr(), sent, &result);
        out = steal(result);
        return s == PYGEN_NEXT ? resumed::yielded
                               : (s == PYGEN_RETURN ? resumed::returned : resumed::raised);
#else
        iternextfunc next = sent == Py_None ? slot_iternext(it.ptr()) : nullptr;
        r = next != nullptr
                ? next(it.ptr())
                : PyObject_CallMethodObjArgs(it.ptr(), per_interpreter<step_names>().send.ptr(),
                                             sent, nullptr);
#endif
    }
    if (r != nullptr) {
        out = steal(r);
        return resumed::yielded;
    }
    if (PyErr_Occurred() == nullptr) {
        out = borrow(Py_None);
        return resumed::returned;
    }
    if (!PyErr_ExceptionMatches(PyExc_StopIteration))
        return resumed::raised;
    python_error stop = python_error::fetch();
    out = getattr(stop.value(), per_interpreter<step_names>().value);
    return resumed::returned;
}

/// The iterator of `await awaitable` (its __await__). GIL held.
inline object await_iter(handle awaitable, const char* what) {
    auto await = slot_await(awaitable.ptr());
    if (await == nullptr)
        throw type_error(std::string(what) + " returned a " + awaitable.type_name() +
                         ", not an awaitable");
    return checked(await(awaitable.ptr()));
}

/// Ends a C function that returns a value from an await: StopIteration(value). GIL held.
inline PyObject* return_value(handle value) {
    PyObject* stop = PyObject_CallFunctionObjArgs(PyExc_StopIteration, value.ptr(), nullptr);
    if (stop != nullptr) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
    return nullptr;
}

} // namespace detail
PYASIO_NAMESPACE_END

#endif // PYASIO_DETAIL_AWAIT_STEP_HPP
