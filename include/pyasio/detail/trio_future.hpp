// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_DETAIL_TRIO_FUTURE_HPP
#define PYASIO_DETAIL_TRIO_FUTURE_HPP

/// @file
/// pyasio.TrioFuture: what Python awaits for C++ work under trio (the trio side of the seam,
/// detail/loop_family.hpp), in C: no Python frame of its own on the path of an operation.

#include <pyasio/config.hpp>

#include <pyasio/detail/await_step.hpp>
#include <pyasio/detail/capi.hpp>
#include <pyasio/error.hpp>
#include <pyasio/object.hpp>

#include <cstddef>
#include <tuple>
#include <utility>

#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h> // T_PYSSIZET, READONLY (Python.h has Py_T_PYSSIZET from 3.12 on)
#endif

PYASIO_NAMESPACE_BEGIN

namespace detail {

/// What a TrioFuture calls, per interpreter (made once trio is used).
struct trio_future_names {
    object lowlevel = import("trio.lowlevel");
    object current_task = getattr(lowlevel, "current_task");
    object wait_task_rescheduled = getattr(lowlevel, "wait_task_rescheduled");
    // NOTE: what wait_task_rescheduled yields to trio's scheduler, yielded directly (two objects
    // and two frames fewer per await): trio's internal WaitTaskRescheduled and outcome.Value,
    // when they are there (trio 0.22 to today); else (null) through wait_task_rescheduled
    object wait_message = internal("trio._core._traps", "WaitTaskRescheduled");
    object value_outcome = internal("outcome", "Value");
    object reschedule = getattr(lowlevel, "reschedule");
    object succeeded = getattr(getattr(lowlevel, "Abort"), "SUCCEEDED");
    object cancelled_error = getattr(import("asyncio"), "CancelledError");
    object invalid_state = getattr(import("asyncio"), "InvalidStateError");
    object copy_context = getattr(import("contextvars"), "copy_context");
    object call_soon = interned("call_soon");
    object cancel = interned("cancel");
    object closed = interned("_closed");
    object unwrap = interned("unwrap");

private:
    static object internal(const char* module, const char* name) {
        object m = steal(PyImport_ImportModule(module));
        object found = m ? steal(PyObject_GetAttrString(m.ptr(), name)) : object();
        if (!found || PyType_Check(found.ptr()) == 0) {
            PyErr_Clear();
            return object();
        }
        return found;
    }
};

enum trio_future_state : int { trio_pending, trio_result, trio_exception, trio_cancelled };

/// pyasio.TrioFuture. It parks each awaiting trio task with wait_task_rescheduled (one
/// pyasio._TrioAwait per await, which is also the abort function), reschedules them when it
/// completes, and hands done callbacks to the loop's call_soon, as asyncio.Future does.
struct trio_future_object {
    PyObject_HEAD PyObject* loop;
    PyObject* outcome;      // the result, the exception, or the cancel message; null: none
    PyObject* traceback;    // the exception's, as set (result() raises it with this one)
    PyObject* waiter;       // the first _TrioAwait parked here, or null
    PyObject* more_waiters; // a list of the others, or null
    PyObject* callback;     // the first done callback, or null
    PyObject* context;      // its context
    PyObject* callbacks;    // [(fn, context)] of the others, or null
    PyObject* steps;        // the _TrioAwait of the future stepped as a coroutine, or null
    PyObject* weakrefs;     // the weak references to it (tp_weaklistoffset)
    unsigned long thread;   // the thread of the trio run that made it
    int state;              // trio_future_state
};

/// pyasio._TrioAwait: one `await` of a TrioFuture (its __await__ iterator), and the abort
/// function trio calls when a cancel scope cancels the parked task.
struct trio_await_object {
    PyObject_HEAD PyObject* future;
    PyObject* task; // the trio task parked here, or null
    PyObject* wait; // the wait_task_rescheduled coroutine while parked (when its message is not
                    // yielded directly), or null
    int stage;      // 0 not started, 1 parked, 2 ended
};

inline trio_future_object* as_trio_future(PyObject* o) noexcept {
    return reinterpret_cast<trio_future_object*>(o);
}
inline trio_await_object* as_trio_await(PyObject* o) noexcept {
    return reinterpret_cast<trio_await_object*>(o);
}

/// The types, per interpreter.
struct trio_future_types {
    // NOTE: first: the names exist whenever a future does (its methods look them up, which
    // then cannot fail)
    const trio_future_names& names = per_interpreter<trio_future_names>();
    PyTypeObject* future = make_future();
    PyTypeObject* await_ = make_await();

private:
    static PyTypeObject* make_future();
    static PyTypeObject* make_await();
};

/// The future's loop; a TrioFuture made without one (TrioFuture.__new__ alone) or cleared by
/// the garbage collector has none: RuntimeError.
inline handle trio_future_loop(trio_future_object* self) {
    if (self->loop == nullptr)
        throw_error(PyExc_RuntimeError, "pyasio.TrioFuture: this future has no loop (made "
                                        "without TrioFuture(loop), or being collected)");
    return handle(self->loop);
}

// --- completing ----------------------------------------------------------------------------

/// Raises what a done future ended with, or returns its result (a new reference).
inline PyObject* trio_future_outcome(trio_future_object* self) {
    const trio_future_names& n = per_interpreter<trio_future_names>();
    switch (self->state) {
    case trio_result:
        Py_INCREF(self->outcome);
        return self->outcome;
    case trio_exception:
        PyException_SetTraceback(self->outcome, self->traceback ? self->traceback : Py_None);
        PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(self->outcome)), self->outcome);
        return nullptr;
    case trio_cancelled: {
        PyObject* e = PyObject_CallFunctionObjArgs(n.cancelled_error.ptr(), self->outcome, nullptr);
        if (e != nullptr) {
            PyErr_SetObject(n.cancelled_error.ptr(), e);
            Py_DECREF(e);
        }
        return nullptr;
    }
    default:
        PyErr_SetString(n.invalid_state.ptr(), "Result is not set.");
        return nullptr;
    }
}

inline bool trio_future_has_waiters(trio_future_object* self) noexcept {
    return self->waiter != nullptr ||
           (self->more_waiters != nullptr && list_size(self->more_waiters) > 0);
}

/// Parks `a` on its future (a strong reference).
inline void trio_future_link(trio_future_object* self, PyObject* a) {
    if (self->waiter == nullptr) {
        Py_INCREF(a);
        self->waiter = a;
        return;
    }
    if (self->more_waiters == nullptr)
        self->more_waiters = checked(PyList_New(0)).release();
    if (PyList_Append(self->more_waiters, a) < 0)
        throw_error_already_set();
}

/// `a` no longer waits on its future (finished elsewhere, aborted, thrown into or closed).
inline void trio_future_unlink(trio_future_object* self, PyObject* a) {
    if (self->waiter == a) {
        Py_CLEAR(self->waiter);
        return;
    }
    if (self->more_waiters == nullptr)
        return;
    for (Py_ssize_t i = list_size(self->more_waiters); i-- > 0;)
        if (list_item(self->more_waiters, i) == a &&
            PyList_SetSlice(self->more_waiters, i, i + 1, nullptr) < 0)
            throw_error_already_set();
}

/// Completes the future: its parked tasks are rescheduled, its callbacks go to the loop.
inline void trio_future_finish(trio_future_object* self, int state, object outcome,
                               object traceback = object()) {
    const trio_future_names& n = per_interpreter<trio_future_names>();
    if (self->state != trio_pending)
        throw_error(n.invalid_state.ptr(), "invalid state");
    self->state = state;
    object old_outcome = steal(std::exchange(self->outcome, outcome.release()));
    object old_traceback = steal(std::exchange(self->traceback, traceback.release()));
    object first = steal(std::exchange(self->waiter, nullptr));
    object more = steal(std::exchange(self->more_waiters, nullptr));
    object callbacks = steal(std::exchange(self->callbacks, nullptr));
    // NOTE: one task that cannot be rescheduled (not parked: a bug) must not strand the others
    auto wake = [&](PyObject* a) {
        PyObject* task = as_trio_await(a)->task;
        PyObject* done =
            task ? PyObject_CallFunctionObjArgs(n.reschedule.ptr(), task, nullptr) : nullptr;
        if (done == nullptr && task != nullptr)
            PyErr_WriteUnraisable(n.reschedule.ptr());
        Py_XDECREF(done);
    };
    if (first)
        wake(first.ptr());
    for (Py_ssize_t i = 0; more && i < list_size(more.ptr()); ++i)
        wake(list_item(more.ptr(), i));
    object callback = steal(std::exchange(self->callback, nullptr));
    object context = steal(std::exchange(self->context, nullptr));
    handle me(reinterpret_cast<PyObject*>(self));
    if (callback)
        call_method(trio_future_loop(self), n.call_soon, callback, me, kwarg("context", context));
    for (Py_ssize_t i = 0; callbacks && i < list_size(callbacks.ptr()); ++i) {
        PyObject* pair = list_item(callbacks.ptr(), i);
        call_method(trio_future_loop(self), n.call_soon, handle(tuple_item(pair, 0)), me,
                    kwarg("context", handle(tuple_item(pair, 1))));
    }
}

// --- one await -------------------------------------------------------------------------------

/// Ends an await with the future's outcome: returned (out: its result), or raised.
inline resumed trio_await_outcome(trio_await_object* a, object& out) {
    out = steal(trio_future_outcome(as_trio_future(a->future)));
    return out ? resumed::returned : resumed::raised;
}

/// The await is over: unparked, its wait dropped.
inline void trio_await_end(trio_await_object* a) {
    a->stage = 2;
    trio_future_unlink(as_trio_future(a->future), reinterpret_cast<PyObject*>(a));
    Py_CLEAR(a->wait);
    Py_CLEAR(a->task);
}

/// No one awaits the future any more: it is cancelled (and so its C++ work), as when the task
/// awaiting it is cancelled.
inline void trio_await_abandon(trio_await_object* a) {
    auto* fut = as_trio_future(a->future);
    if (fut->state == trio_pending && !trio_future_has_waiters(fut))
        (void)call_method(handle(a->future), per_interpreter<trio_future_names>().cancel);
}

/// Parks the current trio task on the future: wait_task_rescheduled(a), stepped to its yield.
inline resumed trio_await_park(trio_await_object* a, object& out) {
    const trio_future_names& n = per_interpreter<trio_future_names>();
    auto* fut = as_trio_future(a->future);
    object task = steal(PyObject_CallFunctionObjArgs(n.current_task.ptr(), nullptr));
    if (!task) {
        if (!PyErr_ExceptionMatches(PyExc_RuntimeError))
            throw_error_already_set();
        PyErr_Clear();
        throw_error(PyExc_RuntimeError,
                    "pyasio: this future was made under trio.run (future_into_py called in a trio "
                    "task); await it in a task of that trio run, not under asyncio or outside any "
                    "event loop");
    }
    // NOTE: a thread runs one trio run at a time: the one that made the future, unless that
    // one has finished (its loop is closed)
    handle loop = trio_future_loop(fut);
    if (fut->thread != PyThread_get_thread_ident())
        throw_error(PyExc_RuntimeError, "pyasio: this future belongs to another trio run; await "
                                        "it in the run that made it");
    if (getattr(loop, n.closed).ptr() != Py_False)
        throw_error(PyExc_RuntimeError,
                    "pyasio: this future belongs to another trio run, one that has finished (or is "
                    "finishing: its system tasks were cancelled); await it in the run that made "
                    "it, while that run runs");
    handle abort(reinterpret_cast<PyObject*>(a));
    if (n.wait_message) {
        out = call(n.wait_message, abort);
        trio_future_link(fut, abort.ptr());
        a->task = task.release();
        a->stage = 1;
        return resumed::yielded;
    }
    object wait = call(n.wait_task_rescheduled, abort);
    trio_future_link(fut, abort.ptr());
    a->task = task.release();
    a->wait = wait.release();
    a->stage = 1;
    resumed r = resume(handle(a->wait), nullptr, nullptr, out);
    if (r == resumed::yielded)
        return r;
    {
        error_kept kept; // NOTE: it raised (or, impossibly, returned): the await ends with it
        trio_await_end(a);
    }
    return r == resumed::raised ? r : trio_await_outcome(a, out);
}

/// One step of the await: the first parks the task (or ends at once, the future being done);
/// the next (trio's outcome) ends it with the future's outcome. `out`: what to yield up, or the
/// result; raised: the Python error is set. May throw.
/// The await's future; none once the garbage collector cleared it: RuntimeError.
inline void trio_await_check(trio_await_object* a) {
    if (a->future == nullptr)
        throw_error(PyExc_RuntimeError, "pyasio._TrioAwait: this await has no future (it is "
                                        "being collected)");
}

inline resumed trio_await_step(PyObject* o, PyObject* arg, object& out) {
    auto* a = as_trio_await(o);
    trio_await_check(a);
    if (a->stage == 2)
        throw_error(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
    if (a->stage == 0) {
        if (arg != Py_None)
            throw_error(PyExc_TypeError, "can't send non-None value to a just-started coroutine");
        if (as_trio_future(a->future)->state != trio_pending) {
            a->stage = 2;
            return trio_await_outcome(a, out);
        }
        return trio_await_park(a, out);
    }
    resumed r = resumed::returned;
    if (a->wait != nullptr) {
        r = resume(handle(a->wait), arg, nullptr, out);
        if (r == resumed::yielded)
            return r;
    } else if (Py_TYPE(arg) != reinterpret_cast<PyTypeObject*>(
                                   per_interpreter<trio_future_names>().value_outcome.ptr())) {
        // trio's outcome of the wait: an Error (Cancelled, after the abort) raises here
        object unwrapped = steal(PyObject_CallMethodObjArgs(
            arg, per_interpreter<trio_future_names>().unwrap.ptr(), nullptr));
        r = unwrapped ? resumed::returned : resumed::raised;
    }
    {
        error_kept kept;
        trio_await_end(a);
    }
    return r == resumed::raised ? r : trio_await_outcome(a, out);
}

/// trio_await_step for a C slot: what it yielded (new reference), or null with the Python error
/// set; `returned` gets the result (null: it did not return).
inline PyObject* trio_await_slot(PyObject* o, PyObject* arg, object& returned) {
    object out;
    resumed r = resumed::raised;
    try {
        r = trio_await_step(o, arg, out);
    } catch (...) {
        translate_exception(detail::caught());
        return nullptr;
    }
    if (r == resumed::yielded)
        return out.release();
    if (r == resumed::returned)
        returned = std::move(out);
    return nullptr;
}

inline PyObject* trio_await_send(PyObject* o, PyObject* arg) {
    object returned;
    PyObject* yielded = trio_await_slot(o, arg, returned);
    return returned ? return_value(returned) : yielded;
}

inline PyObject* trio_await_next(PyObject* o) {
    object returned;
    PyObject* yielded = trio_await_slot(o, Py_None, returned);
    // NOTE: a null return without an error is StopIteration(None) to tp_iternext's callers
    return returned && !returned.is_none() ? return_value(returned) : yielded;
}

#if PY_VERSION_HEX >= 0x030A0000
/// am_send: the await step without a StopIteration per result (the interpreter's await path).
inline PySendResult trio_await_am_send(PyObject* o, PyObject* arg, PyObject** result) {
    object returned;
    *result = trio_await_slot(o, arg, returned);
    if (returned) {
        *result = returned.release();
        return PYGEN_RETURN;
    }
    return *result != nullptr ? PYGEN_NEXT : PYGEN_ERROR;
}
#endif

/// throw(): the await ends with the exception; nobody left awaiting, the future is cancelled.
inline PyObject* trio_await_throw(PyObject* o, PyObject* args) {
    auto* a = as_trio_await(o);
    return entry_point([&]() -> object {
        trio_await_check(a);
        object e = thrown_exception(args);
        object wait = borrow(a->wait);
        trio_await_end(a);
        trio_await_abandon(a);
        // NOTE: a parked wait raises it from where it waits (its traceback shows the await)
        object out;
        if (!wait || resume(wait, nullptr, e.ptr(), out) != resumed::raised)
            PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(e.ptr())), e.ptr());
        throw_error_already_set();
    });
}

/// close(): the await ends; nobody left awaiting, the future is cancelled.
inline PyObject* trio_await_close(PyObject* o, PyObject*) {
    auto* a = as_trio_await(o);
    return entry_point([&] {
        trio_await_check(a);
        object wait = borrow(a->wait);
        trio_await_end(a);
        trio_await_abandon(a);
        if (wait)
            (void)call_method(wait, "close");
    });
}

/// The abort function of the parked task (trio calls it when a cancel scope cancels the task):
/// the await ends with trio's Cancelled; nobody left awaiting, the future is cancelled.
inline PyObject* trio_await_abort(PyObject* o, PyObject*, PyObject*) {
    auto* a = as_trio_await(o);
    return entry_point([&]() -> object {
        trio_await_check(a);
        trio_future_unlink(as_trio_future(a->future), o);
        trio_await_abandon(a);
        return per_interpreter<trio_future_names>().succeeded;
    });
}

inline int trio_await_traverse(PyObject* o, visitproc visit, void* arg) {
    auto* a = as_trio_await(o);
    Py_VISIT(a->future);
    Py_VISIT(a->task);
    Py_VISIT(a->wait);
    return visit_instance_type(o, visit, arg);
}

inline int trio_await_clear(PyObject* o) {
    auto* a = as_trio_await(o);
    Py_CLEAR(a->future);
    Py_CLEAR(a->task);
    Py_CLEAR(a->wait);
    return 0;
}

inline void trio_await_dealloc(PyObject* o) {
    PyObject_GC_UnTrack(o);
    trio_await_clear(o);
    free_instance(o);
}

/// A new _TrioAwait of `future`.
inline object new_trio_await(PyObject* future) {
    object a = checked(PyType_GenericAlloc(per_interpreter<trio_future_types>().await_, 0));
    Py_INCREF(future);
    as_trio_await(a.ptr())->future = future; // NOTE: the rest is zeroed: no task, stage 0
    return a;
}

inline PyTypeObject* trio_future_types::make_await() {
    static PyMethodDef methods[] = {
        {"send", trio_await_send, METH_O, "One step of the await."},
        {"throw", trio_await_throw, METH_VARARGS, "Ends the await with an exception."},
        {"close", trio_await_close, METH_NOARGS, "Ends the await."},
        {nullptr, nullptr, 0, nullptr}};
    static PyType_Slot slots[] = {
        {Py_tp_dealloc, reinterpret_cast<void*>(trio_await_dealloc)},
        {Py_tp_traverse, reinterpret_cast<void*>(trio_await_traverse)},
        {Py_tp_clear, reinterpret_cast<void*>(trio_await_clear)},
        {Py_tp_iternext, reinterpret_cast<void*>(trio_await_next)},
        {Py_tp_iter, reinterpret_cast<void*>(self_await)},
#if PY_VERSION_HEX >= 0x030A0000
        {Py_am_send, reinterpret_cast<void*>(trio_await_am_send)},
#endif
        {Py_tp_call, reinterpret_cast<void*>(trio_await_abort)},
        {Py_tp_new, reinterpret_cast<void*>(refuse_new)},
        {Py_tp_methods, methods},
        {Py_tp_doc, const_cast<char*>("One await of a pyasio.TrioFuture.")},
        {0, nullptr}
    };
    static PyType_Spec spec = {"pyasio._TrioAwait", sizeof(trio_await_object), 0,
                               Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, slots};
    return make_type(spec);
}

// --- the future ------------------------------------------------------------------------------

inline int trio_future_init(PyObject* o, PyObject* args, PyObject* kwargs) {
    PyObject* loop = nullptr;
    static const char* keywords[] = {"loop", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:TrioFuture", const_cast<char**>(keywords),
                                     &loop))
        return -1;
    // NOTE: the loop of a trio run (any copy's TrioLoop): its futures need its run and thread
    object seam =
        steal(PyObject_GetAttrString(reinterpret_cast<PyObject*>(Py_TYPE(loop)), "_pyasio_seam"));
    if (!seam || PyLong_Check(seam.ptr()) == 0 || PyLong_AsLong(seam.ptr()) != 1) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError,
                     "pyasio.TrioFuture(loop): loop must be the pyasio.TrioLoop of a trio run "
                     "(fut.get_loop() of a future of that run), not %R",
                     reinterpret_cast<PyObject*>(Py_TYPE(loop)));
        return -1;
    }
    auto* self = as_trio_future(o);
    Py_INCREF(loop);
    Py_XDECREF(std::exchange(self->loop, loop));
    self->thread = PyThread_get_thread_ident();
    return 0;
}

inline PyObject* trio_future_get_loop(PyObject* o, PyObject*) {
    PyObject* loop = as_trio_future(o)->loop;
    loop = loop != nullptr ? loop : Py_None;
    Py_INCREF(loop);
    return loop;
}

inline PyObject* trio_future_done(PyObject* o, PyObject*) {
    return PyBool_FromLong(as_trio_future(o)->state != trio_pending);
}

inline PyObject* trio_future_cancelled(PyObject* o, PyObject*) {
    return PyBool_FromLong(as_trio_future(o)->state == trio_cancelled);
}

inline PyObject* trio_future_result(PyObject* o, PyObject*) {
    return trio_future_outcome(as_trio_future(o));
}

inline PyObject* trio_future_exception(PyObject* o, PyObject*) {
    auto* self = as_trio_future(o);
    if (self->state == trio_pending) {
        PyErr_SetString(per_interpreter<trio_future_names>().invalid_state.ptr(),
                        "Exception is not set.");
        return nullptr;
    }
    if (self->state == trio_exception) {
        Py_INCREF(self->outcome);
        return self->outcome;
    }
    if (self->state == trio_cancelled)
        return trio_future_outcome(self);
    Py_RETURN_NONE;
}

inline PyObject* trio_future_add_done_callback(PyObject* o, PyObject* args, PyObject* kwargs) {
    auto* self = as_trio_future(o);
    return entry_point([&] {
        static const char* keywords[] = {"", "context", nullptr};
        PyObject *fn = nullptr, *context = Py_None;
        if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$O:add_done_callback",
                                         const_cast<char**>(keywords), &fn, &context))
            throw_error_already_set();
        const trio_future_names& n = per_interpreter<trio_future_names>();
        object ctx = context == Py_None ? call(n.copy_context) : borrow(context);
        if (self->state != trio_pending) {
            call_method(trio_future_loop(self), n.call_soon, handle(fn), handle(o),
                        kwarg("context", ctx));
            return;
        }
        // NOTE: the first in a slot of its own (no list, no tuple): pyasio's own is the one a
        // future usually has
        if (self->callback == nullptr && self->callbacks == nullptr) {
            Py_INCREF(fn);
            self->callback = fn;
            self->context = ctx.release();
            return;
        }
        if (self->callbacks == nullptr)
            self->callbacks = checked(PyList_New(0)).release();
        object pair = to_python(std::tuple<handle, handle>(handle(fn), ctx));
        if (PyList_Append(self->callbacks, pair.ptr()) < 0)
            throw_error_already_set();
    });
}

// NOTE: a comparison runs Python (__eq__), which may complete the future or change its
// callbacks: each is compared through references of our own, and the list kept is swapped in
// only if the future still has the list compared.
inline PyObject* trio_future_remove_done_callback(PyObject* o, PyObject* fn) {
    auto* self = as_trio_future(o);
    return entry_point([&] {
        Py_ssize_t removed = 0;
        if (object first = borrow(self->callback)) {
            int same = PyObject_RichCompareBool(first.ptr(), fn, Py_EQ);
            if (same < 0)
                throw_error_already_set();
            if (same > 0 && self->callback == first.ptr()) {
                Py_CLEAR(self->callback);
                Py_CLEAR(self->context);
                removed = 1;
            }
        }
        object compared = borrow(self->callbacks);
        if (!compared)
            return removed;
        object kept = checked(PyList_New(0));
        for (Py_ssize_t i = 0; i < list_size(compared.ptr()); ++i) {
            object pair = borrow(list_item(compared.ptr(), i));
            int same = PyObject_RichCompareBool(tuple_item(pair.ptr(), 0), fn, Py_EQ);
            if (same < 0 || (same == 0 && PyList_Append(kept.ptr(), pair.ptr()) < 0))
                throw_error_already_set();
            removed += same;
        }
        if (self->callbacks == compared.ptr())
            Py_DECREF(std::exchange(self->callbacks, kept.release()));
        return removed;
    });
}

inline PyObject* trio_future_set_result(PyObject* o, PyObject* value) {
    return entry_point([&] { trio_future_finish(as_trio_future(o), trio_result, borrow(value)); });
}

inline PyObject* trio_future_set_exception(PyObject* o, PyObject* exception) {
    return entry_point([&] {
        object e = borrow(exception);
        if (PyType_Check(exception) != 0)
            e = call(e);
        if (PyExceptionInstance_Check(e.ptr()) == 0)
            throw_error(PyExc_TypeError, "invalid exception object");
        // NOTE: as asyncio.Future: the await that ends with it would return instead of raising
        if (PyErr_GivenExceptionMatches(e.ptr(), PyExc_StopIteration) != 0)
            throw_error(PyExc_TypeError, "StopIteration interacts badly with generators and "
                                         "cannot be raised into a Future");
        object tb = steal(PyException_GetTraceback(e.ptr()));
        trio_future_finish(as_trio_future(o), trio_exception, std::move(e), std::move(tb));
    });
}

inline PyObject* trio_future_cancel(PyObject* o, PyObject* args, PyObject* kwargs) {
    auto* self = as_trio_future(o);
    return entry_point([&] {
        static const char* keywords[] = {"msg", nullptr};
        PyObject* msg = Py_None;
        if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:cancel", const_cast<char**>(keywords),
                                         &msg))
            throw_error_already_set();
        if (self->state != trio_pending)
            return false;
        trio_future_finish(self, trio_cancelled, msg == Py_None ? object() : borrow(msg));
        return true;
    });
}

/// __await__: a new await (each awaiting task parks on its own _TrioAwait).
inline PyObject* trio_future_await(PyObject* o) {
    return entry_point([&] { return new_trio_await(o); });
}

// The coroutine methods (so that nursery.start_soon(mod.f) and trio.run(mod.f) take it): one
// await of the future, stepped by whoever runs it.

inline PyObject* trio_future_send(PyObject* o, PyObject* arg) {
    auto* self = as_trio_future(o);
    if (self->steps == nullptr) {
        self->steps = trio_future_await(o);
        if (self->steps == nullptr)
            return nullptr;
    }
    return trio_await_send(self->steps, arg);
}

/// throw(): thrown in before the first step, it is raised here and the work is cancelled.
inline PyObject* trio_future_throw(PyObject* o, PyObject* args) {
    auto* self = as_trio_future(o);
    if (self->steps == nullptr) {
        self->steps = trio_future_await(o);
        if (self->steps == nullptr)
            return nullptr;
    }
    return trio_await_throw(self->steps, args);
}

inline PyObject* trio_future_close(PyObject* o, PyObject*) {
    auto* self = as_trio_future(o);
    if (self->steps != nullptr)
        return trio_await_close(self->steps, nullptr);
    return entry_point(
        [&] { (void)call_method(handle(o), per_interpreter<trio_future_names>().cancel); });
}

inline PyObject* trio_future_repr(PyObject* o) {
    static const char* const states[] = {"pending", "finished", "finished", "cancelled"};
    return PyUnicode_FromFormat("<pyasio.TrioFuture %s>", states[as_trio_future(o)->state]);
}

inline int trio_future_traverse(PyObject* o, visitproc visit, void* arg) {
    auto* self = as_trio_future(o);
    Py_VISIT(self->loop);
    Py_VISIT(self->outcome);
    Py_VISIT(self->traceback);
    Py_VISIT(self->waiter);
    Py_VISIT(self->more_waiters);
    Py_VISIT(self->callback);
    Py_VISIT(self->context);
    Py_VISIT(self->callbacks);
    Py_VISIT(self->steps);
    return visit_instance_type(o, visit, arg);
}

inline int trio_future_clear(PyObject* o) {
    auto* self = as_trio_future(o);
    Py_CLEAR(self->loop);
    Py_CLEAR(self->outcome);
    Py_CLEAR(self->traceback);
    Py_CLEAR(self->waiter);
    Py_CLEAR(self->more_waiters);
    Py_CLEAR(self->callback);
    Py_CLEAR(self->context);
    Py_CLEAR(self->callbacks);
    Py_CLEAR(self->steps);
    return 0;
}

inline void trio_future_dealloc(PyObject* o) {
    PyObject_GC_UnTrack(o);
    if (as_trio_future(o)->weakrefs != nullptr)
        PyObject_ClearWeakRefs(o);
    trio_future_clear(o);
    free_instance(o);
}

inline PyTypeObject* trio_future_types::make_future() {
    static PyMethodDef methods[] = {
        {"get_loop", trio_future_get_loop, METH_NOARGS, "The pyasio.TrioLoop of the run."},
        {"done", trio_future_done, METH_NOARGS, "Whether it is done (or cancelled)."},
        {"cancelled", trio_future_cancelled, METH_NOARGS, "Whether it was cancelled."},
        {"result", trio_future_result, METH_NOARGS, "Its result, once done."},
        {"exception", trio_future_exception, METH_NOARGS, "Its exception, once done."},
        {"add_done_callback",
         reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(trio_future_add_done_callback)),
         METH_VARARGS | METH_KEYWORDS, "Calls fn(future) on the loop once it is done."},
        {"remove_done_callback", trio_future_remove_done_callback, METH_O,
         "Removes fn from the done callbacks; returns how many were removed."},
        {"set_result", trio_future_set_result, METH_O, "Completes it with a result."},
        {"set_exception", trio_future_set_exception, METH_O, "Completes it with an exception."},
        {"cancel", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(trio_future_cancel)),
         METH_VARARGS | METH_KEYWORDS, "Cancels it (and so the C++ work)."},
        {"send", trio_future_send, METH_O, "One step of awaiting it (as a coroutine)."},
        {"throw", trio_future_throw, METH_VARARGS,
         "Raises the exception and cancels it (as a coroutine)."},
        {"close", trio_future_close, METH_NOARGS, "Cancels it (as a coroutine)."},
        {nullptr, nullptr, 0, nullptr}};
#if PY_VERSION_HEX >= 0x030C0000
    static PyMemberDef members[] = {{"__weaklistoffset__", Py_T_PYSSIZET,
                                     offsetof(trio_future_object, weakrefs), Py_READONLY, nullptr},
                                    {nullptr, 0, 0, 0, nullptr}};
#elif PY_VERSION_HEX >= 0x03090000
    static PyMemberDef members[] = {{"__weaklistoffset__", T_PYSSIZET,
                                     offsetof(trio_future_object, weakrefs), READONLY, nullptr},
                                    {nullptr, 0, 0, 0, nullptr}};
#endif
    static PyType_Slot slots[] = {
        {Py_tp_getset, coroutine_names},
#if PY_VERSION_HEX >= 0x03090000
        {Py_tp_members, members},
#endif
        {Py_tp_init, reinterpret_cast<void*>(trio_future_init)},
        {Py_tp_new, reinterpret_cast<void*>(PyType_GenericNew)},
        {Py_tp_dealloc, reinterpret_cast<void*>(trio_future_dealloc)},
        {Py_tp_traverse, reinterpret_cast<void*>(trio_future_traverse)},
        {Py_tp_clear, reinterpret_cast<void*>(trio_future_clear)},
        {Py_tp_repr, reinterpret_cast<void*>(trio_future_repr)},
        {Py_am_await, reinterpret_cast<void*>(trio_future_await)},
        {Py_tp_methods, methods},
        {Py_tp_doc, const_cast<char*>(
                        "What Python awaits for C++ work under trio (pyasio::future_into_py in a "
                        "trio run): the methods of an asyncio.Future, and those of a coroutine. "
                        "A cancel scope that cancels the awaiting task cancels it, and so the C++ "
                        "work.")},
        {0, nullptr}
    };
    static PyType_Spec spec = {"pyasio.TrioFuture", sizeof(trio_future_object), 0,
                               Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
                               slots};
    PyTypeObject* type = make_type(spec);
#if PY_VERSION_HEX < 0x03090000
    // NOTE: 3.8's PyType_FromSpec does not read __weaklistoffset__ (and 3.8 has no abi3 build)
    type->tp_weaklistoffset = offsetof(trio_future_object, weakrefs);
#endif
    return type;
}

/// A new TrioFuture of `loop` (a TrioLoop of this copy). GIL held.
inline object new_trio_future(handle loop) {
    return call(handle(reinterpret_cast<PyObject*>(per_interpreter<trio_future_types>().future)),
                loop);
}

} // namespace detail
PYASIO_NAMESPACE_END

#endif // PYASIO_DETAIL_TRIO_FUTURE_HPP
