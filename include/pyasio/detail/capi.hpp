// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_DETAIL_CAPI_HPP
#define PYASIO_DETAIL_CAPI_HPP

/// @file
/// The few CPython calls that differ between the full C API and the limited API (Py_LIMITED_API,
/// abi3): every other header calls these, never the struct fields or macros they stand for.

#include <pyasio/config.hpp>

PYASIO_NAMESPACE_BEGIN
namespace detail {

#if PYASIO_DETAIL_LIMITED
/// A slot of o's type as F, or null (PyType_GetSlot; it reads static types too from 3.10 on,
/// and the limited build needs 3.12). The full API reads the fields: PyType_GetSlot refuses
/// static types before 3.10.
template <class F> F limited_slot(PyObject* o, int slot) noexcept {
    return reinterpret_cast<F>(PyType_GetSlot(Py_TYPE(o), slot));
}
#endif

/// An async slot of o's type, or null: Py_am_await (__await__), Py_am_aiter (__aiter__) or
/// Py_am_anext (__anext__).
template <int Slot> unaryfunc async_slot(PyObject* o) noexcept {
    static_assert(Slot == Py_am_await || Slot == Py_am_aiter || Slot == Py_am_anext);
#if PYASIO_DETAIL_LIMITED
    return limited_slot<unaryfunc>(o, Slot);
#else
    const PyAsyncMethods* async = Py_TYPE(o)->tp_as_async;
    if (async == nullptr)
        return nullptr;
    if constexpr (Slot == Py_am_await)
        return async->am_await;
    else if constexpr (Slot == Py_am_aiter)
        return async->am_aiter;
    else
        return async->am_anext;
#endif
}

/// __await__ of o's type, or null.
inline unaryfunc slot_await(PyObject* o) noexcept {
    return async_slot<Py_am_await>(o);
}
/// __aiter__ of o's type, or null.
inline unaryfunc slot_aiter(PyObject* o) noexcept {
    return async_slot<Py_am_aiter>(o);
}
/// __anext__ of o's type, or null.
inline unaryfunc slot_anext(PyObject* o) noexcept {
    return async_slot<Py_am_anext>(o);
}

/// __next__ of o's type (tp_iternext), or null.
inline iternextfunc slot_iternext(PyObject* o) noexcept {
#if PYASIO_DETAIL_LIMITED
    return limited_slot<iternextfunc>(o, Py_tp_iternext);
#else
    return Py_TYPE(o)->tp_iternext;
#endif
}

/// __call__ of o's type (tp_call), or null.
inline ternaryfunc slot_call(PyObject* o) noexcept {
#if PYASIO_DETAIL_LIMITED
    return limited_slot<ternaryfunc>(o, Py_tp_call);
#else
    return Py_TYPE(o)->tp_call;
#endif
}

/// __set__ of descriptor o's type (tp_descr_set), or null.
inline descrsetfunc slot_descr_set(PyObject* o) noexcept {
#if PYASIO_DETAIL_LIMITED
    return limited_slot<descrsetfunc>(o, Py_tp_descr_set);
#else
    return Py_TYPE(o)->tp_descr_set;
#endif
}

/// The deallocator's last step for an instance of one of pyasio's heap types: frees the memory
/// and drops the reference every instance holds to its type.
inline void free_instance(PyObject* self) noexcept {
    PyTypeObject* type = Py_TYPE(self);
#if PYASIO_DETAIL_LIMITED
    limited_slot<freefunc>(self, Py_tp_free)(self);
#else
    type->tp_free(self);
#endif
    Py_DECREF(type);
}

/// tp_traverse's visit of the reference an instance of one of pyasio's heap types holds to its
/// type (from 3.9 on a heap type's traverse must visit it; 3.8's subtype_traverse does).
inline int visit_instance_type(PyObject* self, visitproc visit, void* arg) {
#if PY_VERSION_HEX >= 0x03090000
    Py_VISIT(Py_TYPE(self));
#else
    (void)self;
    (void)visit;
    (void)arg;
#endif
    return 0;
}

// --- tuples and lists: the macros of the full API, functions in the limited API ---------------

/// The size of a tuple.
inline Py_ssize_t tuple_size(PyObject* t) noexcept {
#if PYASIO_DETAIL_LIMITED
    return PyTuple_Size(t);
#else
    return PyTuple_GET_SIZE(t);
#endif
}

/// Item i of a tuple (borrowed); i in range.
inline PyObject* tuple_item(PyObject* t, Py_ssize_t i) noexcept {
#if PYASIO_DETAIL_LIMITED
    return PyTuple_GetItem(t, i);
#else
    return PyTuple_GET_ITEM(t, i);
#endif
}

/// Sets item i of a new tuple, stealing `item`; i in range.
inline void tuple_init(PyObject* t, Py_ssize_t i, PyObject* item) noexcept {
#if PYASIO_DETAIL_LIMITED
    (void)PyTuple_SetItem(t, i, item); // NOTE: cannot fail on a new tuple and an index in range
#else
    PyTuple_SET_ITEM(t, i, item);
#endif
}

/// The size of a list.
inline Py_ssize_t list_size(PyObject* l) noexcept {
#if PYASIO_DETAIL_LIMITED
    return PyList_Size(l);
#else
    return PyList_GET_SIZE(l);
#endif
}

/// Item i of a list (borrowed); i in range.
inline PyObject* list_item(PyObject* l, Py_ssize_t i) noexcept {
#if PYASIO_DETAIL_LIMITED
    return PyList_GetItem(l, i);
#else
    return PyList_GET_ITEM(l, i);
#endif
}

/// Sets item i of a new list, stealing `item`; i in range.
inline void list_init(PyObject* l, Py_ssize_t i, PyObject* item) noexcept {
#if PYASIO_DETAIL_LIMITED
    (void)PyList_SetItem(l, i, item); // NOTE: cannot fail on a new list and an index in range
#else
    PyList_SET_ITEM(l, i, item);
#endif
}

} // namespace detail
PYASIO_NAMESPACE_END

#endif // PYASIO_DETAIL_CAPI_HPP
