// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_DETAIL_DONE_CALLBACK_HPP
#define PYASIO_DETAIL_DONE_CALLBACK_HPP

#include <pyasio/config.hpp>

#include <pyasio/detail/object_core.hpp>
#include <pyasio/error.hpp>
#include <pyasio/object.hpp>

#include <utility>

PYASIO_NAMESPACE_BEGIN
namespace detail {

/// What a pyasio._DoneCallback reports to: the C++ side of one future. Both calls come on the
/// loop thread with the GIL held.
struct done_callback_target {
    /// The future called its done callbacks (it completed, failed or was cancelled).
    virtual void on_done() = 0;
    /// The callback object is being destroyed (its future dropped it, or died).
    virtual void on_gone() noexcept = 0;

protected:
    ~done_callback_target() = default;
};

/// pyasio._DoneCallback: the object pyasio registers with future.add_done_callback. It holds
/// its target by a plain pointer: the C++ side learns both when the future is done and when the
/// future lets go of it (so a future that is collected is noticed too).
struct done_callback_object {
    PyObject_HEAD done_callback_target* target;
};

inline void done_callback_dealloc(PyObject* self) {
    auto* cb = reinterpret_cast<done_callback_object*>(self);
    if (cb->target != nullptr)
        std::exchange(cb->target, nullptr)->on_gone();
    free_instance(self);
}

inline PyObject* done_callback_call(PyObject* self, PyObject*, PyObject*) {
    auto* cb = reinterpret_cast<done_callback_object*>(self);
    if (cb->target != nullptr)
        cb->target->on_done();
    Py_RETURN_NONE;
}

/// The type and the names add_done_callback uses, made once per interpreter.
struct done_callback_type {
    PyTypeObject* type = make();
    object add_done_callback = interned("add_done_callback");

private:
    static PyTypeObject* make() {
        static PyType_Slot slots[] = {
            {Py_tp_dealloc, reinterpret_cast<void*>(done_callback_dealloc)},
            {Py_tp_call, reinterpret_cast<void*>(done_callback_call)},
            {Py_tp_doc, const_cast<char*>("Tells pyasio's C++ side that a future is done.")},
            {0, nullptr}};
        static PyType_Spec spec = {"pyasio._DoneCallback", sizeof(done_callback_object), 0,
                                   Py_TPFLAGS_DEFAULT, slots};
        return make_type(spec);
    }
};

/// A new done callback reporting to `target`. GIL held.
inline object make_done_callback(done_callback_target* target) {
    object cb = steal(PyType_GenericAlloc(per_interpreter<done_callback_type>().type, 0));
    if (!cb)
        throw_error_already_set();
    reinterpret_cast<done_callback_object*>(cb.ptr())->target = target;
    return cb;
}

/// future.add_done_callback(callback): the loop runs it in a copy of the current context. NOTE:
/// not in a context of the caller's own (context=): the callback runs C++ only, and the C++ it
/// resumes enters the contexts it needs; entering one that such a callback holds entered fails
/// (RuntimeError, formatted, then caught: ~4k instructions per operation). GIL held.
inline void add_done_callback(handle future, handle callback) {
    call_method(future, per_interpreter<done_callback_type>().add_done_callback, callback);
}
} // namespace detail
PYASIO_NAMESPACE_END

#endif // PYASIO_DETAIL_DONE_CALLBACK_HPP
