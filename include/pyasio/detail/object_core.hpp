// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_DETAIL_OBJECT_CORE_HPP
#define PYASIO_DETAIL_OBJECT_CORE_HPP

#include <pyasio/config.hpp>

#include <pyasio/detail/capi.hpp>
#include <pyasio/detail/intrusive_stack.hpp>

#include <atomic>
#include <cstddef>
#include <new>
#include <string>
#include <utility>
#include <vector>

PYASIO_NAMESPACE_BEGIN

/// The conversion customization point (defined in convert.hpp); declared here so that the call
/// helpers can name it.
template <class T, class Enable = void> struct converter;

namespace detail {

/// Objects dropped on a thread that does not hold the GIL wait here until the library next holds
/// it. Any thread pushes; the GIL holder takes the whole list at once.
class release_queue {
    struct node {
        PyObject* object;
        node* next = nullptr;
    };

public:
    /// Queues p for a later Py_DECREF. Needs no GIL.
    void push(PyObject* p) noexcept {
        // NOTE: after the interpreter is finalized the pointer is dangling and must never be
        // touched again, not even by a later Py_Initialize: drop it.
        if (!Py_IsInitialized())
            return;
        node* n = new (std::nothrow) node{p};
        if (n == nullptr)
            return; // out of memory in a destructor: leaking one reference is the only safe move
        nodes_.push(n);
    }

    /// True when something waits; a cheap check for the GIL holder's fast path.
    bool pending() const noexcept { return nodes_.pending(); }

    /// Releases everything queued so far. Needs the GIL.
    void drain() noexcept {
        nodes_.consume([](node* n) {
            PyObject* p = n->object;
            delete n;
            Py_DECREF(p); // may run __del__, which may queue more: a later drain takes those
        });
    }

    /// Forgets everything queued without touching it (the interpreter is gone), and starts a
    /// new interpreter generation.
    void discard() noexcept {
        nodes_.consume([](node* n) { delete n; });
        generation_.fetch_add(1, std::memory_order_release);
        exit_hook_.store(false, std::memory_order_relaxed);
    }

    /// Counts finalized interpreters: a cache of Python objects tagged with an older value
    /// belongs to an interpreter that is gone, and its pointers must be forgotten, not released.
    unsigned generation() const noexcept { return generation_.load(std::memory_order_acquire); }

    static release_queue& instance() noexcept {
        static release_queue q; // trivially destructible state: safe at process exit
        return q;
    }

    /// Makes sure the queue is discarded when this interpreter is finalized. Needs the GIL.
    // NOTE: Py_AtExit functions run after finalization and are forgotten once run, so the hook
    // is installed again for each interpreter lifetime; it must be installed with the GIL held
    // (Py_AtExit is not thread-safe), so every GIL-holding release_pending() checks it.
    void ensure_exit_hook() noexcept {
        if (exit_hook_.load(std::memory_order_relaxed))
            return;
        exit_hook_.store(true, std::memory_order_relaxed);
        Py_AtExit([] { instance().discard(); });
    }

private:
    intrusive_stack<node, &node::next> nodes_;
    std::atomic<bool> exit_hook_{false};
    std::atomic<unsigned> generation_{0};
};

/// The current interpreter generation (see release_queue::generation).
inline unsigned interpreter_generation() noexcept {
    return release_queue::instance().generation();
}

/// Keeps `value`, a per_interpreter value of a finalized interpreter, reachable for ever: it is
/// abandoned on purpose (see per_interpreter), and leak checkers (LeakSanitizer) then see that
/// it is kept, not lost. Call with the GIL.
// NOTE: one list for every T, not one per T: each std::vector<T*> is a set of template
// instances that every translation unit including pyasio would compile (bench/compile_time.py)
inline void keep_abandoned(void* value) {
    static std::vector<void*>* abandoned = new std::vector<void*>();
    abandoned->push_back(value);
}

/// One T per interpreter lifetime, default-constructed on first use. Call with the GIL. A T made
/// for an interpreter that was finalized is abandoned, never destroyed: its Python references
/// point into a dead interpreter and must not be released. Holds caches (types, functions,
/// interned names) that would otherwise be looked up on every call.
template <class T> T& per_interpreter() {
    static T* value = nullptr;
    static unsigned generation = 0;
    unsigned now = interpreter_generation();
    if (value == nullptr || generation != now) {
        // NOTE: the exit hook moves the generation on; without it a value made now would be
        // taken for the next interpreter's (a translator registered in this one, say, would
        // still translate in the next)
        release_queue::instance().ensure_exit_hook();
        if (value != nullptr)
            keep_abandoned(value); // NOTE: abandoned on purpose (see above)
        value = new T();
        generation = now;
    }
    return *value;
}

/// Releases objects that were dropped without the GIL. Call only with the GIL held.
inline void release_pending() noexcept {
    release_queue& q = release_queue::instance();
    q.ensure_exit_hook();
    if (q.pending())
        q.drain();
}

/// Py_DECREF when this thread holds the GIL; otherwise queue it for the next GIL holder.
inline void decref(PyObject* p) noexcept {
    if (gil_held()) {
        Py_DECREF(p);
        release_pending();
    } else {
        release_queue::instance().push(p);
    }
}

} // namespace detail

class object;

/// A borrowed reference: does not own the PyObject it points to and never changes its
/// reference count. Trivially copyable; valid only while some owner keeps the object alive.
/// @headerfile object.hpp <pyasio/object.hpp>
class handle {
public:
    handle() noexcept = default;
    /// Views p without taking a reference.
    explicit handle(PyObject* p) noexcept : ptr_(p) {}

    /// The pointer (null for an empty handle).
    PyObject* ptr() const noexcept { return ptr_; }
    /// True when it points to an object.
    explicit operator bool() const noexcept { return ptr_ != nullptr; }
    /// Python's `is`: the same object (pointer comparison; no GIL needed).
    bool is(handle other) const noexcept { return ptr_ == other.ptr_; }
    /// True when it points to None.
    bool is_none() const noexcept { return ptr_ == Py_None; }
    /// The name of its Python type, or "NULL" for an empty handle: the type's `tp_name` (which
    /// names the module of a C type: "_asyncio.Task"), or in the limited API its `__name__`
    /// ("Task"). For messages; needs the GIL in the limited API.
    std::string type_name() const {
        if (ptr_ == nullptr)
            return "NULL";
#if PYASIO_DETAIL_LIMITED
        std::string out = "?";
        PyObject* name = PyType_GetName(Py_TYPE(ptr_));
        Py_ssize_t size = 0;
        const char* utf8 = name != nullptr ? PyUnicode_AsUTF8AndSize(name, &size) : nullptr;
        if (utf8 != nullptr)
            out.assign(utf8, static_cast<std::size_t>(size));
        else
            PyErr_Clear(); // NOTE: for a message only: this error must not replace the one told
        Py_XDECREF(name);
        return out;
#else
        return Py_TYPE(ptr_)->tp_name;
#endif
    }

    /// Python's `is`, not `==`: the same object.
    friend bool operator==(handle a, handle b) noexcept {
        return a.ptr_ == b.ptr_;
    }

protected:
    /// The object pointed to, or null; an object owns one reference to it.
    PyObject* ptr_ = nullptr;
};

/// An owned (strong) reference. Copy increfs, move steals, the destructor decrefs.
///
/// Dropping an object on a thread that does not hold the GIL is allowed: the reference is queued
/// and released the next time pyasio holds the GIL on any thread (an entry point called by
/// Python, a gil_acquire, another object dropped with the GIL, or pyasio::release_pending()).
/// Copying one without the GIL is not allowed (debug builds abort with a message).
/// @headerfile object.hpp <pyasio/object.hpp>
class object : public handle {
public:
    object() noexcept = default;
    /// A second reference to `o`'s object (Py_INCREF). Needs the GIL unless `o` is empty.
    object(const object& o) noexcept : handle(o.ptr_) {
        if (ptr_ != nullptr) {
            PYASIO_DETAIL_ASSERT_GIL("pyasio::object copied");
            Py_INCREF(ptr_);
        }
    }
    /// Takes `o`'s reference, leaving `o` empty. No GIL needed.
    object(object&& o) noexcept : handle(std::exchange(o.ptr_, nullptr)) {}
    ~object() { reset(); }

    /// Takes a second reference to `o`'s object, then drops the old one. Needs the GIL unless
    /// `o` is empty.
    object& operator=(const object& o) noexcept {
        object(o).swap(*this); // the new pointer is installed before the old one is dropped
        return *this;
    }
    /// Takes `o`'s reference (leaving `o` empty), then drops the old one.
    object& operator=(object&& o) noexcept {
        object(std::move(o)).swap(*this);
        return *this;
    }

    /// Gives up ownership and returns the pointer (a new reference for the caller).
    [[nodiscard]] PyObject* release() noexcept { return std::exchange(ptr_, nullptr); }
    /// Drops the reference (see the class note for threads without the GIL).
    void reset() noexcept {
        if (PyObject* p = std::exchange(ptr_, nullptr))
            detail::decref(p);
    }
    /// Exchanges the references; no reference count changes, no GIL needed.
    void swap(object& o) noexcept { std::swap(ptr_, o.ptr_); }

private:
    friend object steal(PyObject* p) noexcept;
    struct adopt_tag {};
    object(PyObject* p, adopt_tag) noexcept : handle(p) {}
};

/// Takes ownership of a new reference (e.g. the result of a C API call that returns one).
[[nodiscard]] inline object steal(PyObject* p) noexcept {
    return object(p, object::adopt_tag{});
}

/// Takes a new reference to a borrowed pointer. Needs the GIL.
[[nodiscard]] inline object borrow(PyObject* p) noexcept {
    if (p != nullptr) {
        PYASIO_DETAIL_ASSERT_GIL("pyasio::borrow called");
        Py_INCREF(p);
    }
    return steal(p);
}

/// Takes a new reference to what h points to. Needs the GIL.
[[nodiscard]] inline object borrow(handle h) noexcept {
    return borrow(h.ptr());
}

/// Releases the references that were dropped on threads without the GIL. pyasio calls this
/// itself whenever it holds the GIL; call it only with the GIL held.
inline void release_pending() noexcept {
    detail::release_pending();
}

PYASIO_NAMESPACE_END

#endif // PYASIO_DETAIL_OBJECT_CORE_HPP
