// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_STREAM_HPP
#define PYASIO_STREAM_HPP

/// @file
/// Streams both ways: into_stream (C++ reads a Python async iterator), stream_into_py and
/// channel_into_py (Python reads a C++ producer or an Asio channel).

#include <pyasio/config.hpp>

#include <pyasio/convert.hpp>
#include <pyasio/detail/done_callback.hpp>
#include <pyasio/detail/ref_counted.hpp>
#include <pyasio/error.hpp>
#include <pyasio/future_into_py.hpp>
#include <pyasio/into_future.hpp>
#include <pyasio/loop.hpp>
#include <pyasio/loop_executor.hpp>
#include <pyasio/object.hpp>
#include <pyasio/runtime.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/error.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/channel.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

PYASIO_NAMESPACE_BEGIN

namespace detail {

/// The names the streams call, interned once per interpreter.
struct stream_names {
    object create_future = interned("create_future");
    object create_task = interned("create_task");
    object set_result = interned("set_result");
    object done = interned("done");
    object cancel = interned("cancel");
    object cancelled = interned("cancelled");
    object exception = interned("exception");
    object result = interned("result");
    object throw_ = interned("throw");
    object send = interned("send");
    object close = interned("close");
    object aclose = interned("aclose");
    object value = interned("value");
    object cancelled_error = getattr(import("asyncio"), "CancelledError");
};

inline std::exception_ptr operation_aborted() {
    return std::make_exception_ptr(std::system_error(asio::error::operation_aborted));
}

/// How one step of an await went.
enum class resumed { yielded, returned, raised };

/// One step of the iterator `it` of an await: send(None), or throw(thrown). `out` gets what it
/// yielded (to pass up to the task) or returned (its result); when it raised, the Python error
/// is set. GIL held.
inline resumed resume(handle it, PyObject* thrown, object& out) {
    PyObject* r = nullptr;
    if (thrown != nullptr) {
        r = PyObject_CallMethodObjArgs(it.ptr(), per_interpreter<stream_names>().throw_.ptr(),
                                       thrown, nullptr);
    } else {
#if PY_VERSION_HEX >= 0x030A0000
        PyObject* result = nullptr;
        PySendResult s = PyIter_Send(it.ptr(), Py_None, &result);
        out = steal(result);
        return s == PYGEN_NEXT ? resumed::yielded
                               : (s == PYGEN_RETURN ? resumed::returned : resumed::raised);
#else
        iternextfunc next = slot_iternext(it.ptr());
        r = next != nullptr
                ? next(it.ptr())
                : PyObject_CallMethodObjArgs(it.ptr(), per_interpreter<stream_names>().send.ptr(),
                                             Py_None, nullptr);
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
    out = getattr(stop.value(), per_interpreter<stream_names>().value);
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

/// One pending wait of a stream (a next() of the C++ consumer, or a write() of the C++
/// producer waiting for room): completes once, on its handler's executor, always posted.
///
/// Completing is two steps, so that an owner can set the outcome under its lock and post it
/// after: set(), then deliver(). Between deliver() and the handler's run, the handler's
/// cancellation slot stays connected: a cancellation then reaches the owner's cancel_pending,
/// which may take the outcome back (take_back()) and let the handler see operation_aborted.
template <class... V> struct pending {
    /// The outcome the handler will get. Once, before deliver(); the values must be
    /// nothrow-default-constructible (take_back() leaves default values).
    virtual void set(std::exception_ptr error, V... values) noexcept = 0;
    /// Posts the handler with the outcome set. The pending may be gone once this returns.
    virtual void deliver() noexcept = 0;
    /// A cancellation arrived after set() and before the handler ran: when the outcome is a
    /// success, moves its values to `values` and makes the outcome operation_aborted; true if
    /// so. Only where the handler's cancellation is emitted, under the owner's lock (the lock
    /// set() was called under).
    virtual bool take_back(V&... values) noexcept = 0;

    void complete(std::exception_ptr error, V... values) noexcept {
        set(std::move(error), std::move(values)...);
        deliver();
    }

protected:
    ~pending() = default;
};

/// A pending wait for the handler `Handler`. Owner must have cancel_pending(pending<V...>*),
/// called where the C++ side emits a cancellation. Holds the owner while it lives.
template <class Owner, class Handler, class... V> class pending_for final : public pending<V...> {
public:
    pending_for(Handler handler, Owner* owner)
        : handler_(std::move(handler)), work_(handler_work(handler_)),
          owner_(counted_ref<Owner>::share(owner)) {}

    /// Starts listening for the handler's cancellation. Call before anyone else can see it.
    void listen() {
        auto slot = asio::get_associated_cancellation_slot(handler_);
        if (slot.is_connected())
            slot.template emplace<canceller>(owner_.get(), this);
    }

    void set(std::exception_ptr error, V... values) noexcept override {
        outcome_.emplace(std::move(error), std::move(values)...);
    }

    void deliver() noexcept override {
        try {
            asio::post(work_, [self = std::unique_ptr<pending_for>(this)]() mutable {
                // NOTE: the slot is cleared before anything else: after this, no cancellation
                // reaches the owner for this wait (Asio emits on the handler's executor, which
                // runs this)
                asio::get_associated_cancellation_slot(self->handler_).clear();
                Handler handler = std::move(self->handler_);
                std::tuple<std::exception_ptr, V...> outcome = std::move(*self->outcome_);
                self.reset();
                std::apply(
                    [&](std::exception_ptr& error, V&... values) {
                        std::move(handler)(std::move(error), std::move(values)...);
                    },
                    outcome);
            });
        } catch (...) { // std::bad_alloc: the handler never runs
            detail::caught();
        }
    }

    bool take_back(V&... values) noexcept override {
        if (!outcome_ || std::get<0>(*outcome_))
            return false;
        std::apply([&](std::exception_ptr&, V&... held) { ((values = std::move(held)), ...); },
                   *outcome_);
        outcome_.emplace(operation_aborted(), V()...);
        return true;
    }

private:
    struct canceller {
        Owner* owner;
        pending<V...>* p;
        canceller(Owner* o, pending<V...>* w) noexcept : owner(o), p(w) {}
        void operator()(asio::cancellation_type type) const {
            if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                         asio::cancellation_type::total)) != asio::cancellation_type::none)
                owner->cancel_pending(p);
        }
    };

    Handler handler_;
    handler_work_t<Handler> work_;
    counted_ref<Owner> owner_;
    std::optional<std::tuple<std::exception_ptr, V...>> outcome_;
};

/// Starts a pending wait: makes it, listens for cancellation, and hands it to `owner.wait(p)`.
template <class Owner, class... V> struct initiate_pending {
    Owner* owner;
    template <class Handler> void operator()(Handler&& handler) const {
        auto p = std::make_unique<pending_for<Owner, std::decay_t<Handler>, V...>>(
            std::forward<Handler>(handler), owner);
        p->listen();
        owner->wait(p.release());
    }
};

// --- Python -> C++: into_stream ------------------------------------------------------------

/// What the pump of an into_stream runs in its task: one step, a close, and letting go.
struct pump_target {
    /// Runs until the pump must wait (a new reference to what the task awaits) or is finished
    /// (nullptr with StopIteration set). `thrown`: an exception thrown into the pump.
    virtual PyObject* step(PyObject* thrown) = 0;
    virtual void close_pump() noexcept = 0;
    virtual void release_pump() noexcept = 0;

protected:
    ~pump_target() = default;
};

/// pyasio._StreamPump: the coroutine-like object an asyncio task runs for into_stream. It fetches
/// items with __anext__ (awaiting each in the task, so asyncio features work inside the
/// iterator), keeps up to the window in the C++ buffer, and waits for room when it is full.
struct pump_object {
    PyObject_HEAD pump_target* target;
};

inline PyObject* pump_iternext(PyObject* o) {
    return reinterpret_cast<pump_object*>(o)->target->step(nullptr);
}

inline PyObject* pump_send(PyObject* o, PyObject* arg) {
    if (arg != Py_None) {
        PyErr_SetString(PyExc_TypeError, "pyasio._StreamPump only accepts send(None)");
        return nullptr;
    }
    return pump_iternext(o);
}

inline PyObject* pump_throw(PyObject* o, PyObject* args) {
    object e;
    try {
        e = thrown_exception(args);
    } catch (...) {
        translate_exception(detail::caught());
        return nullptr;
    }
    return reinterpret_cast<pump_object*>(o)->target->step(e.ptr());
}

inline PyObject* pump_close(PyObject* o, PyObject*) {
    reinterpret_cast<pump_object*>(o)->target->close_pump();
    Py_RETURN_NONE;
}

inline void pump_dealloc(PyObject* o) {
    error_kept kept;
    std::exchange(reinterpret_cast<pump_object*>(o)->target, nullptr)->release_pump();
    free_instance(o);
}

struct producer_base;

/// pyasio.AsyncStream: what stream_into_py returns; `async for` reads it.
struct stream_object {
    PyObject_HEAD producer_base* core;
};

/// pyasio._StreamNext: the awaitable of one __anext__ (or of aclose(), which is done at once).
struct next_object {
    PyObject_HEAD PyObject* stream; // strong
    PyObject* inner;                // the iterator of the future it waits on
    bool closing;                   // aclose(): returns None at once
    bool finished;
};

inline PyObject* next_iternext(PyObject* o);
#if PY_VERSION_HEX >= 0x030A0000
inline PySendResult next_am_send(PyObject* o, PyObject* arg, PyObject** result);
#endif
inline PyObject* next_send(PyObject* o, PyObject* arg);
inline PyObject* next_throw(PyObject* o, PyObject* args);
inline PyObject* next_close(PyObject* o, PyObject*);
inline void next_dealloc(PyObject* o);
inline PyObject* stream_anext(PyObject* o);
inline PyObject* stream_aclose(PyObject* o, PyObject*);
inline void stream_dealloc(PyObject* o);

/// The Python types of the streams, made once per interpreter.
struct stream_types {
    PyTypeObject* pump = make_pump_type();
    PyTypeObject* stream = make_stream_type();
    PyTypeObject* next = make_next_type();

private:
    static PyTypeObject* make_pump_type() {
        static PyMethodDef methods[] = {{"send", pump_send, METH_O, nullptr},
                                        {"throw", pump_throw, METH_VARARGS, nullptr},
                                        {"close", pump_close, METH_NOARGS, nullptr},
                                        {nullptr, nullptr, 0, nullptr}};
        static PyType_Slot slots[] = {
            {Py_tp_dealloc, reinterpret_cast<void*>(pump_dealloc)},
            {Py_tp_iternext, reinterpret_cast<void*>(pump_iternext)},
            {Py_am_await, reinterpret_cast<void*>(self_await)},
            {Py_tp_methods, methods},
            {Py_tp_doc, const_cast<char*>("Feeds a Python async iterator to a C++ stream.")},
            {0, nullptr}};
        static PyType_Spec spec = {"pyasio._StreamPump", sizeof(pump_object), 0, Py_TPFLAGS_DEFAULT,
                                   slots};
        return make_type(spec);
    }
    static PyTypeObject* make_stream_type() {
        static PyMethodDef methods[] = {
            {"aclose", stream_aclose, METH_NOARGS,
             "Stops reading: the C++ producer is cancelled; later reads end the iteration."},
            {nullptr, nullptr, 0, nullptr}};
        static PyType_Slot slots[] = {
            {Py_tp_dealloc, reinterpret_cast<void*>(stream_dealloc)},
            {Py_am_aiter, reinterpret_cast<void*>(self_await)},
            {Py_am_anext, reinterpret_cast<void*>(stream_anext)},
            {Py_tp_methods, methods},
            {Py_tp_doc, const_cast<char*>("Items written by a C++ producer, for async for.")},
            {0, nullptr}};
        static PyType_Spec spec = {"pyasio.AsyncStream", sizeof(stream_object), 0,
                                   Py_TPFLAGS_DEFAULT, slots};
        return make_type(spec);
    }
    static PyTypeObject* make_next_type() {
        static PyMethodDef methods[] = {{"send", next_send, METH_O, nullptr},
                                        {"throw", next_throw, METH_VARARGS, nullptr},
                                        {"close", next_close, METH_NOARGS, nullptr},
                                        {nullptr, nullptr, 0, nullptr}};
        static PyType_Slot slots[] = {
            {Py_tp_dealloc, reinterpret_cast<void*>(next_dealloc)},
            {Py_tp_iternext, reinterpret_cast<void*>(next_iternext)},
#if PY_VERSION_HEX >= 0x030A0000
            {Py_am_send, reinterpret_cast<void*>(next_am_send)},
#endif
            {Py_am_await, reinterpret_cast<void*>(self_await)},
            {Py_tp_methods, methods},
            {Py_tp_doc, const_cast<char*>("The next item of a pyasio.AsyncStream.")},
            {0, nullptr}
        };
        static PyType_Spec spec = {"pyasio._StreamNext", sizeof(next_object), 0, Py_TPFLAGS_DEFAULT,
                                   slots};
        return make_type(spec);
    }
};

/// Where an into_stream gets its async iterable: an object, or a call made on the loop thread.
struct stream_source {
    virtual object iterable() = 0;
    virtual ~stream_source() = default;
};
template <class S> struct stream_source_of final : stream_source {
    S s;
    explicit stream_source_of(S source) : s(std::move(source)) {}
    object iterable() override {
        if constexpr (std::is_same_v<S, object>)
            return std::move(s);
        else
            return call_of(s);
    }
};

/// Throws type_error unless objects of `type` are async iterables. Reads only the type.
inline void check_async_iterable(handle iterable, const char* what) {
    if (slot_aiter(iterable.ptr()) == nullptr)
        throw type_error(std::string(what) +
                         ": expected an async iterable (an async generator, or an object with "
                         "__aiter__ and __anext__), got " +
                         iterable.type_name());
}

/// One into_stream. Owners: the async_stream, the pump (while its object lives), each queued
/// job and each pending next().
template <class T>
class stream_core final : public ref_counted, public loop_watch, public pump_target {
public:
    stream_core(std::unique_ptr<stream_source> source, task_locals locals, std::size_t window)
        : ref_counted(1), source_(std::move(source)), locals_(std::move(locals)), window_(window) {}

    /// C++ side: takes the next item, or waits for it. Any thread.
    void wait(pending<std::optional<T>>* p) {
        std::optional<T> item;
        bool ready = true;
        bool start = false;
        bool room = false;
        {
            // NOTE: the outcome is set under the lock, where cancel_pending can take it back
            std::lock_guard<std::mutex> lock(mutex_);
            if (waiter_ != nullptr) {
                p->set(std::make_exception_ptr(std::logic_error(
                           "pyasio::async_stream::next: called while another next() of this "
                           "stream waits; await one item at a time")),
                       std::nullopt);
            } else if (take_locked(item, room)) {
                p->set(nullptr, std::move(item));
            } else if (ended_) {
                p->set(end_error_, std::nullopt);
            } else {
                waiter_ = p;
                waits_.store(true, std::memory_order_release);
                ready = false;
                start = !std::exchange(started_, true);
            }
        }
        if (room)
            push_job([](stream_core& c) { c.room(); });
        if (ready)
            p->deliver();
        else if (start)
            begin();
    }

    /// C++ side: takes the next item (or the end) at once when there is one: true; false when
    /// the consumer must wait (wait()). Throws the stream's error at its end. Any thread.
    bool try_take(std::optional<T>& item) {
        // NOTE: while a next() waits, the loop thread fills the batch (notify): a second next()
        // meanwhile (misuse) must not touch it, and takes the lock to be told so
        if (!waits_.load(std::memory_order_acquire) && !local_.empty() &&
            !room_wanted_.load(std::memory_order_acquire)) {
            item.emplace(std::move(local_.front())); // the batch: no lock
            local_.pop_front();
            return true;
        }
        bool room = false;
        bool taken = false;
        bool ended = false;
        std::exception_ptr error;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (waiter_ != nullptr)
                return false; // wait() reports the misuse
            taken = take_locked(item, room);
            ended = ended_;
            error = end_error_;
        }
        // NOTE: even when nothing was taken: take_locked has then cleared room_wanted_, and the
        // pump, waiting on an over-estimate of the items in hand, goes on only with this job
        if (room)
            push_job([](stream_core& c) { c.room(); });
        if (taken)
            return true;
        if (!ended)
            return false;
        if (error)
            std::rethrow_exception(error);
        return true;
    }

    /// The next() `p` was cancelled by the C++ side (on its handler's executor): it ends with
    /// operation_aborted at once. Only that wait ends: the pump and the __anext__ it awaits go
    /// on, and their items go to the next next(). An item already handed to `p` whose handler
    /// has not run yet is taken back, to the front of the consumer's batch (Asio's `||`, for
    /// one, drops the result of an operation it cancelled).
    void cancel_pending(pending<std::optional<T>>* p) noexcept {
        bool waited = false;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (waiter_ == p) {
                waiter_ = nullptr;
                waits_.store(false, std::memory_order_release);
                p->set(operation_aborted(), std::nullopt);
                waited = true;
            } else {
                // NOTE: its handler has not run (it clears the slot first), so the consumer
                // has not asked for the item after it: the front is its place. The pump
                // touches the batch only while a next() waits, and none does.
                std::optional<T> item;
                if (p->take_back(item) && item) {
                    local_.push_front(std::move(*item));
                    in_hand_ = local_.size();
                }
            }
        }
        if (waited)
            p->deliver();
    }

    /// The async_stream let go: an iterator that runs is closed (aclose()). Any thread.
    void drop() noexcept {
        bool started = false;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            started = started_ && !ended_;
        }
        if (started)
            push_job([](stream_core& c) { c.close_from_cpp(); });
        release();
    }

    std::size_t window() const noexcept { return window_; }

    // --- the pump, on the loop thread with the GIL ---

    PyObject* step(PyObject* thrown) override {
        try {
            for (;;) {
                if (inner_) {
                    object out;
                    resumed r = resume(inner_, thrown, out);
                    thrown = nullptr;
                    if (r == resumed::yielded) {
                        notify();
                        return out.release();
                    }
                    inner_ = object();
                    if (r == resumed::returned)
                        on_returned(std::move(out));
                    else
                        on_raised(python_error::fetch());
                } else if (thrown != nullptr) {
                    on_raised(python_error(borrow(thrown)));
                    thrown = nullptr;
                }
                if (phase_ == phase::done)
                    break;
                wait_next();
            }
        } catch (...) {
            end(detail::caught());
            phase_ = phase::done;
        }
        finish();
        PyErr_SetNone(PyExc_StopIteration);
        return nullptr;
    }

    void close_pump() noexcept override {
        if (phase_ == phase::done)
            return;
        if (inner_) {
            object r = steal(PyObject_CallMethodObjArgs(
                inner_.ptr(), per_interpreter<stream_names>().close.ptr(), nullptr));
            if (!r)
                PyErr_WriteUnraisable(inner_.ptr());
        }
        end(std::make_exception_ptr(event_loop_closed(
            "pyasio::into_stream: the task reading the async iterator was closed")));
        phase_ = phase::done;
        finish();
    }

    void release_pump() noexcept override {
        if (phase_ != phase::done) { // the task was dropped unfinished: its loop is gone
            end(std::make_exception_ptr(event_loop_closed(
                "pyasio::into_stream: the task reading the async iterator was destroyed before "
                "it finished (its event loop closed)")));
            phase_ = phase::done;
            finish();
        }
        release();
    }

    void on_loop_closed() noexcept override {
        end(std::make_exception_ptr(event_loop_closed(
            "pyasio::into_stream: the event loop was closed while C++ read this stream; keep "
            "the loop running until the C++ side is done")));
        phase_ = phase::done;
        finish();
    }

private:
    enum class phase { idle, fetching, room, closing, done };

    ~stream_core() override = default; // NOTE: a waiting next() holds the state
    /// Runs f(*this) on the loop thread (in the stream's context), holding the state.
    template <class F> void push_job(F f) noexcept {
        try {
            auto job = [self = counted_ref<stream_core>::share(this), f] { f(*self.get()); };
            locals_.bridge()->push(new handler_job<decltype(job)>(locals_, std::move(job)));
        } catch (...) { // std::bad_alloc: nothing is done
            detail::caught();
        }
    }

    /// Pops the consumer's next item: from its batch, else the whole buffer becomes its batch
    /// (so that it takes the next ones without the lock); false when there is none. `room`:
    /// the pump waits for room and now has it. Mutex held.
    bool take_locked(std::optional<T>& item, bool& room) {
        if (local_.empty())
            local_.swap(items_);
        bool taken = !local_.empty();
        if (taken) {
            item.emplace(std::move(local_.front()));
            local_.pop_front();
        }
        // NOTE: even when there is nothing: the pump may wait on a count of items in hand that
        // the consumer has taken since
        in_hand_ = local_.size();
        room =
            room_wanted_.load(std::memory_order_relaxed) && items_.size() + in_hand_ <= window_ / 2;
        if (room)
            room_wanted_.store(false, std::memory_order_relaxed);
        return taken;
    }

    /// Starts the pump: at once on the loop thread, else through the bridge.
    void begin() {
        if (loop_runs_here(*locals_.bridge()))
            start();
        else
            push_job([](stream_core& c) { c.start(); });
    }

    /// Loop thread: makes the async iterator and the task that pumps it.
    void start() {
        try {
            in_context(locals_.context(), [this] { start_in_context(); });
        } catch (...) {
            std::exception_ptr error = detail::caught();
            source_.reset();
            end(std::move(error));
            phase_ = phase::done;
            finish();
        }
    }

    /// start(), in the captured context.
    void start_in_context() {
        object loop = locals_.loop();
        if (!loop)
            throw event_loop_closed("pyasio::into_stream: the event loop is gone");
        object iterable = source_->iterable();
        source_.reset();
        check_async_iterable(iterable, "pyasio::into_stream");
        iter_ = checked(slot_aiter(iterable.ptr())(iterable.ptr()));
        if (slot_anext(iter_.ptr()) == nullptr)
            throw type_error(std::string("pyasio::into_stream: __aiter__ returned a ") +
                             iter_.type_name() + ", which has no __anext__");
        object pump = steal(PyType_GenericAlloc(per_interpreter<stream_types>().pump, 0));
        if (!pump)
            throw_error_already_set();
        add_ref(); // the pump's
        reinterpret_cast<pump_object*>(pump.ptr())->target = this;
        task_ = call_method(loop, per_interpreter<stream_names>().create_task, pump);
        locals_.bridge()->watch(this);
    }

    /// Decides what the pump awaits next: aclose() when closing, room when the buffer is full,
    /// else the next __anext__().
    void wait_next() {
        const stream_names& names = per_interpreter<stream_names>();
        if (closing_) {
            phase_ = phase::closing;
            object aclose = steal(PyObject_GetAttr(iter_.ptr(), names.aclose.ptr()));
            if (!aclose) { // not a generator: nothing to close
                PyErr_Clear();
                phase_ = phase::done;
                return;
            }
            inner_ = await_iter(call(aclose), "aclose()");
            return;
        }
        // NOTE: the count is an over-estimate (the consumer takes its batch without the lock):
        // look under the lock only when it says full
        if (fresh_.size() + shared_estimate_ >= window_ && notify(true)) {
            phase_ = phase::room;
            object loop = locals_.loop();
            if (!loop)
                throw event_loop_closed("pyasio::into_stream: the event loop is gone");
            room_ = call_method(loop, names.create_future);
            inner_ = await_iter(room_, "create_future()");
            return;
        }
        phase_ = phase::fetching;
        object anext = checked(slot_anext(iter_.ptr())(iter_.ptr()));
        inner_ = await_iter(anext, "__anext__()");
    }

    void on_returned(object out) {
        switch (phase_) {
        case phase::fetching:
            try {
                fresh_.push_back(result_from_python<T>(out));
                // NOTE: one lock per half window: a waiting consumer reads this half while the
                // pump goes on
                if (fresh_.size() >= (window_ + 1) / 2)
                    notify();
            } catch (...) { // a conversion error ends the stream at this item
                end(detail::caught());
                closing_ = true;
            }
            break;
        case phase::room:
            room_ = object();
            break;
        default:
            phase_ = phase::done;
        }
    }

    void on_raised(python_error e) {
        const stream_names& names = per_interpreter<stream_names>();
        bool cancelled = e.matches(names.cancelled_error);
        switch (phase_) {
        case phase::idle:     // cancelled before its first step
        case phase::fetching: // the iterator raised: it is finished
            if (e.matches(handle(PyExc_StopAsyncIteration)) || (cancelled && closing_))
                end(nullptr);
            else if (cancelled)
                end(std::make_exception_ptr(task_cancelled(
                    "pyasio::into_stream: the task reading the async iterator was cancelled by "
                    "Python")));
            else
                end(std::make_exception_ptr(std::move(e)));
            phase_ = phase::done;
            break;
        case phase::room: // cancelled while it waited for room: close the iterator
            room_ = object();
            if (!closing_)
                end(cancelled ? std::make_exception_ptr(task_cancelled(
                                    "pyasio::into_stream: the task reading the async iterator "
                                    "was cancelled by Python"))
                              : std::make_exception_ptr(std::move(e)));
            closing_ = true;
            break;
        default:
            if (!cancelled) { // aclose() failed
                e.restore();
                PyErr_WriteUnraisable(iter_.ptr());
            }
            phase_ = phase::done;
        }
    }

    /// The stream ends here (error: nullptr at the normal end), after the items before it.
    void end(std::exception_ptr error) noexcept {
        std::lock_guard<std::mutex> lock(mutex_);
        if (ended_)
            return;
        publish_locked();
        ended_ = true;
        end_error_ = std::move(error);
    }

    /// The items the pump fetched go to the consumer's side. Mutex held.
    void publish_locked() noexcept {
        if (items_.empty())
            items_.swap(fresh_);
        else
            for (; !fresh_.empty(); fresh_.pop_front())
                items_.push_back(std::move(fresh_.front()));
        shared_estimate_ = items_.size() + in_hand_;
    }

    /// Publishes the fetched items and hands the front one (or the end) to a waiting next().
    /// `room_check` (the pump, between items): returns whether the window is full, and marks
    /// the pump as waiting for room if so.
    bool notify(bool room_check = false) noexcept {
        pending<std::optional<T>>* p = nullptr;
        std::optional<T> item;
        bool room = false;
        bool full = false;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            publish_locked();
            if (waiter_ != nullptr) {
                // NOTE: the consumer waits, so it does not touch its batch until it is completed
                if (take_locked(item, room) || ended_) {
                    p = std::exchange(waiter_, nullptr);
                    waits_.store(false, std::memory_order_release);
                    p->set(item ? nullptr : end_error_, std::move(item));
                }
            }
            if (room_check) {
                full = items_.size() + in_hand_ >= window_;
                room_wanted_.store(full, std::memory_order_relaxed);
            }
        }
        if (room)
            push_job([](stream_core& c) { c.room(); });
        if (p != nullptr)
            p->deliver();
        return full;
    }

    /// The pump finished: the waiting next() hears the end; Python references go.
    void finish() noexcept {
        // NOTE: whatever ended the pump, the consumer hears an end (a no-op when it has one)
        end(std::make_exception_ptr(task_cancelled(
            "pyasio::into_stream: the task reading the async iterator ended early (cancelled "
            "by Python)")));
        notify();
        locals_.bridge()->unwatch(this);
        room_ = object();
        inner_ = object();
        iter_ = object();
        object task = std::move(task_); // NOTE: last: may free the pump, and this state
    }

    /// The consumer took items: the pump may go on. Loop thread.
    void room() {
        // NOTE: once: a room job and a close job may both find the pump still waiting
        if (phase_ == phase::room && room_ &&
            call_method(room_, per_interpreter<stream_names>().done).ptr() != Py_True)
            call_method(room_, per_interpreter<stream_names>().set_result, handle(Py_None));
    }

    /// The consumer let go: the iterator is closed, between items with aclose(), during an
    /// __anext__ by cancelling it. Loop thread.
    void close_from_cpp() {
        closing_ = true;
        if (phase_ == phase::room) {
            std::lock_guard<std::mutex> lock(mutex_);
            room_wanted_.store(false, std::memory_order_relaxed);
        }
        if (phase_ == phase::room)
            room();
        else if (phase_ == phase::fetching && task_)
            call_method(task_, per_interpreter<stream_names>().cancel);
    }

    // NOTE: the three sides' members are on cache lines of their own: a side that writes its
    // line for each item would otherwise slow the other thread's reads (false sharing).

    // Shared with the C++ side, under mutex_.
    alignas(cache_line) std::mutex mutex_;
    std::deque<T> items_;
    bool ended_ = false;
    std::exception_ptr end_error_;
    pending<std::optional<T>>* waiter_ = nullptr;
    std::size_t in_hand_ = 0; // the size of local_ when the consumer last took the lock
    std::atomic<bool> room_wanted_{false}; // the pump waits for room (written under mutex_)
    std::atomic<bool> waits_{false};       // waiter_ is set (written under mutex_)
    bool started_ = false;
    // The consumer's batch: its side only (the pump hands a waiting consumer its first item).
    alignas(cache_line) std::deque<T> local_;

    std::unique_ptr<stream_source> source_;
    task_locals locals_;
    std::size_t window_;

    // The pump's, on the loop thread with the GIL.
    alignas(cache_line) std::deque<T> fresh_; // fetched, not yet published (one lock per batch)
    std::size_t shared_estimate_ = 0;         // items_ + in_hand_ when it last published, or more
    phase phase_ = phase::idle;
    bool closing_ = false;
    object iter_;  // the async iterator
    object inner_; // the iterator of the await in progress
    object room_;  // the future the pump waits on for room
    object task_;  // the task running the pump
};

// --- C++ -> Python: stream_into_py ---------------------------------------------------------

/// A stream_into_py as its Python objects see it. Owners: the pyasio.AsyncStream, the done
/// callback on the producer's future while it lives, the wake job while queued, and each
/// stream_writer.
struct producer_base : public ref_counted, public loop_job, public done_callback_target {
    enum class polled { item, end, wait };

    producer_base() : ref_counted(1) {}

    /// __anext__, loop thread: the next item (out), the end, or wait on the future `out` and
    /// poll again. The producer's exception (or CancelledError at runtime shutdown) is raised
    /// here, after the items written before it.
    polled poll(object& out) {
        if (closed_)
            return polled::end;
        if (take(out))
            return polled::item;
        const stream_names& names = per_interpreter<stream_names>();
        if (done_ && call_method(done_, names.done).ptr() == Py_True) {
            call_method(done_, names.result); // raises the producer's error
            return polled::end;
        }
        object loop = locals_->loop();
        if (!loop)
            throw event_loop_closed("pyasio::stream_into_py: the event loop is gone");
        // NOTE: a future of its own for each waiting __anext__: cancelling the task that
        // awaits it cancels that future (Task.cancel cancels the future the task waits on), which
        // must not end the waits of later or other readers. The cancelled ones go here.
        // NOTE: by hand, not std::erase_if: done() may raise, which must leave waits_ whole
        std::size_t kept = 0;
        for (std::size_t i = 0; i < waits_.size(); ++i)
            if (call_method(waits_[i], names.done).ptr() != Py_True)
                std::swap(waits_[kept++], waits_[i]);
        waits_.resize(kept);
        out = call_method(loop, names.create_future);
        waits_.push_back(out);
        return polled::wait;
    }

    /// The first __anext__ starts the producer on the runtime. Loop thread, GIL held.
    void ensure_started() {
        if (closed_ || done_)
            return;
        locals_.emplace(task_locals::capture());
        done_ = start_producer();
        object callback = make_done_callback(nullptr);
        add_done_callback(done_, callback, locals_->context());
        add_ref(); // the callback's
        reinterpret_cast<done_callback_object*>(callback.ptr())->target = this;
    }

    /// aclose(), or the stream object is gone: the producer is cancelled and its writes fail
    /// from now on; later reads end the iteration (a waiting one too). GIL held.
    void close() {
        if (std::exchange(closed_, true))
            return;
        python_gone();
        if (done_) {
            object done = std::move(done_);
            try {
                const stream_names& names = per_interpreter<stream_names>();
                if (call_method(done, names.done).ptr() != Py_True)
                    call_method(done, names.cancel);
            } catch (...) { // its loop is closed: dropping the future cancels the work
                            // too
                detail::caught();
            }
        }
        wake_python();
    }

    /// The wake job: the producer wrote into an empty buffer that Python waits on. Loop thread.
    void run() override {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            wake_ = wake::none;
            python_waits_ = false;
        }
        wake_python();
        release();
    }
    void abandon() noexcept override { release(); }

    /// The producer's future is done: a waiting __anext__ hears the end.
    void on_done() override {
        // NOTE: the producer's error reaches a reader through poll(), which raises it at its
        // point; a reader that left (break) never asks, and asyncio would log "Future exception
        // was never retrieved" for a future the user never saw. So it counts as retrieved now.
        if (done_) {
            try {
                const stream_names& names = per_interpreter<stream_names>();
                if (call_method(done_, names.cancelled).ptr() != Py_True)
                    (void)call_method(done_, names.exception);
            } catch (...) {
                (void)detail::caught();
                PyErr_Clear();
            }
        }
        wake_python();
    }
    void on_gone() noexcept override { release(); }

protected:
    /// Loop thread: the front item as a Python object; false (and Python marked as waiting)
    /// when there is none.
    virtual bool take(object& out) = 0;
    /// Loop thread: starts the producer; its future_into_py future.
    virtual object start_producer() = 0;
    /// Python let go: the buffer is dropped, a waiting write ends with operation_aborted.
    virtual void python_gone() noexcept = 0;

public:
    /// Producer side: queues the wake job (once: the caller set wake_ to pushed).
    void push_wake() noexcept {
        add_ref(); // the job's
        locals_->bridge()->push(this);
    }

    /// Producer side, once it suspended: queues the wake job unless it went already.
    void posted_wake() noexcept {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (wake_ != wake::posted)
                return;
            wake_ = wake::pushed;
        }
        push_wake();
    }

protected:
    /// The wake of a waiting Python: none on its way, posted to run once the producer
    /// suspends, or pushed to the loop.
    enum class wake { none, posted, pushed };

    // NOTE: the producer writes this line for each item: what the loop thread reads for each
    // item is on other lines (false sharing)
    alignas(cache_line) std::mutex mutex_;
    bool python_waits_ = false; // Python found the buffer empty
    wake wake_ = wake::none;
    bool gone_ = false; // Python let go

private:
    /// Every waiting __anext__ polls again (the first takes the item; the others wait anew).
    void wake_python() {
        std::vector<object> waits = std::exchange(waits_, {});
        for (object& wait : waits) {
            try {
                const stream_names& names = per_interpreter<stream_names>();
                if (call_method(wait, names.done).ptr() != Py_True) // not a cancelled reader's
                    call_method(wait, names.set_result, handle(Py_None));
            } catch (...) {
                translate_exception(detail::caught());
                PyErr_WriteUnraisable(nullptr);
            }
        }
    }

    // Loop thread, GIL held.
    alignas(cache_line) std::optional<task_locals> locals_; // NOTE: set before the producer starts
    object done_;                                           // the producer's future
    std::vector<object> waits_; // the futures the waiting __anext__ await, one each
    bool closed_ = false;
};

/// The typed buffer of a stream_into_py, which stream_writer writes into.
template <class T> class producer_items : public producer_base {
public:
    explicit producer_items(std::size_t capacity) : capacity_(capacity) {}

    enum class written { no_room, yes, yes_post_wake, yes_push_wake };

    /// Producer: appends `value` (moved from) unless the buffer is full (no_room). When Python
    /// waits, the caller must wake it: once the buffer is half full, at once (push_wake(), so
    /// that Python reads while the producer writes), else once the producer suspends
    /// (posted_wake(), posted), so that the items written until then ride along. Throws
    /// operation_aborted once Python let go.
    written try_write(T& value) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (gone_)
            throw std::system_error(asio::error::operation_aborted);
        if (items_.size() + in_hand_ >= capacity_)
            return written::no_room;
        items_.push_back(std::move(value));
        if (!python_waits_ || wake_ == wake::pushed)
            return written::yes;
        if (items_.size() >= (capacity_ + 1) / 2) {
            wake_ = wake::pushed;
            return written::yes_push_wake;
        }
        if (wake_ == wake::posted)
            return written::yes;
        wake_ = wake::posted;
        return written::yes_post_wake;
    }

    /// Producer: waits for room (pending p).
    void wait(pending<>* p) {
        bool gone = false;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            gone = gone_;
            if (!gone && items_.size() + in_hand_ >= capacity_) {
                room_waiter_ = p;
                producer_waits_.store(true, std::memory_order_release);
                return;
            }
        }
        p->complete(gone ? operation_aborted() : nullptr);
    }

    void cancel_pending(pending<>* p) noexcept {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (room_waiter_ != p)
                return;
            room_waiter_ = nullptr;
            producer_waits_.store(false, std::memory_order_relaxed);
        }
        p->complete(operation_aborted());
    }

    std::size_t capacity() const noexcept { return capacity_; }

protected:
    ~producer_items() override = default; // NOTE: a waiting write() holds the state

private:
    /// Python takes the items in batches: the whole buffer at once into its own (no lock per
    /// item). The producer counts those as still buffered until the next batch (or, while it
    /// waits for room, until Python took half of them).
    bool take(object& out) override {
        std::optional<T> item;
        if (!local_.empty() && !producer_waits_.load(std::memory_order_acquire)) {
            item.emplace(std::move(local_.front())); // the batch: no lock
            local_.pop_front();
        } else {
            pending<>* writer = nullptr;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                if (local_.empty())
                    local_.swap(items_);
                if (!local_.empty()) {
                    item.emplace(std::move(local_.front()));
                    local_.pop_front();
                }
                // NOTE: even when there is nothing: the producer may wait on a count of items
                // in hand that Python has taken since
                in_hand_ = local_.size();
                if (room_waiter_ != nullptr && items_.size() + in_hand_ <= capacity_ / 2) {
                    writer = std::exchange(room_waiter_, nullptr);
                    producer_waits_.store(false, std::memory_order_relaxed);
                }
                python_waits_ = !item;
            }
            if (writer != nullptr)
                writer->complete(nullptr);
            if (!item)
                return false;
        }
        out = pyasio::to_python(std::move(*item));
        return true;
    }

    void python_gone() noexcept override {
        pending<>* writer = nullptr;
        std::deque<T> dropped;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            gone_ = true;
            dropped.swap(items_);
            writer = std::exchange(room_waiter_, nullptr);
        }
        local_.clear();
        if (writer != nullptr)
            writer->complete(operation_aborted());
    }

    // Under mutex_ (the producer's line).
    alignas(cache_line) std::deque<T> items_; // written by the producer
    std::size_t in_hand_ = 0;                 // the size of local_ when Python last looked
    std::size_t capacity_;
    pending<>* room_waiter_ = nullptr;
    // The loop thread's.
    alignas(cache_line) std::deque<T> local_; // the batch Python reads from
    std::atomic<bool> producer_waits_{false}; // room_waiter_ is set (written under mutex_)
};

template <class T, class Producer> class producer_core;

} // namespace detail

/// What a C++ producer of stream_into_py writes with. Copies share the stream. Any thread, no
/// GIL.
template <class T> class stream_writer {
public:
    /// Appends `value` to the stream; suspends while the buffer is full (backpressure). Throws
    /// asio::error::operation_aborted (a std::system_error) once Python stopped reading (break,
    /// aclose(), the stream collected): the producer should then end.
    ///
    /// When Python waits for this item, it is woken once the producer next suspends (its next
    /// wait, or its end) or the buffer is half full, whichever comes first: the items written
    /// until then ride along, one wake of the loop per batch.
    asio::awaitable<void> write(T value) const {
        using written = typename detail::producer_items<T>::written;
        for (;;) {
            switch (core_->try_write(value)) {
            case written::yes:
                co_return;
            case written::yes_push_wake:
                core_->push_wake();
                co_return;
            case written::yes_post_wake: {
                // NOTE: the executor first, in a statement of its own: g++ 12 mishandles
                // temporaries of a call that also has a co_await among its arguments.
                auto ex = co_await asio::this_coro::executor;
                asio::post(ex, [core = core_] { core->posted_wake(); });
                co_return;
            }
            case written::no_room:
                co_await asio::async_initiate<const asio::use_awaitable_t<>&,
                                              void(std::exception_ptr)>(
                    detail::initiate_pending<detail::producer_items<T>>{core_.get()},
                    asio::use_awaitable);
            }
        }
    }

    /// The most items buffered ahead of Python.
    std::size_t capacity() const noexcept { return core_->capacity(); }

private:
    template <class U, class P> friend class detail::producer_core;
    explicit stream_writer(detail::counted_ref<detail::producer_items<T>> core) noexcept
        : core_(std::move(core)) {}

    detail::counted_ref<detail::producer_items<T>> core_;
};

namespace detail {

template <class T, class Producer> class producer_core final : public producer_items<T> {
public:
    producer_core(Producer producer, std::size_t capacity, asio::any_io_executor ex)
        : producer_items<T>(capacity), producer_(std::move(producer)), ex_(std::move(ex)) {}

private:
    object start_producer() override {
        auto core = counted_ref<producer_items<T>>::share(this);
        return future_into_py(
            [writer = stream_writer<T>(std::move(core)), producer = std::move(producer_)]() mutable
            -> asio::awaitable<void> { co_await producer(writer); },
            ex_);
    }

    Producer producer_;
    asio::any_io_executor ex_;
};

inline stream_object* as_stream(PyObject* o) {
    return reinterpret_cast<stream_object*>(o);
}

/// One step of a _StreamNext: returned (out: the item), raised (StopAsyncIteration at the end,
/// the producer's error), or yielded (out: the future to wait on).
inline resumed next_step(PyObject* o, PyObject* thrown, object& out) {
    auto* self = reinterpret_cast<next_object*>(o);
    if (self->finished) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited __anext__()/aclose()");
        return resumed::raised;
    }
    try {
        for (;;) {
            if (self->inner != nullptr) {
                resumed r = resume(handle(self->inner), thrown, out);
                thrown = nullptr;
                if (r == resumed::yielded)
                    return r;
                Py_CLEAR(self->inner);
                if (r == resumed::raised) { // cancelled while it waited
                    self->finished = true;
                    return r;
                }
            } else if (thrown != nullptr) {
                self->finished = true;
                PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(thrown)), thrown);
                return resumed::raised;
            }
            if (self->closing) {
                self->finished = true;
                out = borrow(Py_None);
                return resumed::returned;
            }
            producer_base* core = as_stream(self->stream)->core;
            switch (core->poll(out)) {
            case producer_base::polled::item:
                self->finished = true;
                return resumed::returned;
            case producer_base::polled::end:
                self->finished = true;
                PyErr_SetNone(PyExc_StopAsyncIteration);
                return resumed::raised;
            case producer_base::polled::wait:
                self->inner = await_iter(out, "create_future()").release();
            }
        }
    } catch (...) {
        std::exception_ptr error = detail::caught();
        self->finished = true;
        translate_exception(error);
        return resumed::raised;
    }
}

/// A step as the iterator protocol reports it (a result is StopIteration(result)).
inline PyObject* next_as_iterator(PyObject* o, PyObject* thrown) {
    object out;
    switch (next_step(o, thrown, out)) {
    case resumed::yielded:
        return out.release();
    case resumed::returned:
        return return_value(out);
    default:
        return nullptr;
    }
}

inline PyObject* next_iternext(PyObject* o) {
    return next_as_iterator(o, nullptr);
}

inline PyObject* next_send(PyObject* o, PyObject* arg) {
    if (arg != Py_None) {
        PyErr_SetString(PyExc_TypeError, "pyasio._StreamNext only accepts send(None)");
        return nullptr;
    }
    return next_as_iterator(o, nullptr);
}

#if PY_VERSION_HEX >= 0x030A0000
/// am_send: `await` takes the item without a StopIteration (3.10+).
inline PySendResult next_am_send(PyObject* o, PyObject* arg, PyObject** result) {
    *result = nullptr;
    if (arg != Py_None) {
        PyErr_SetString(PyExc_TypeError, "pyasio._StreamNext only accepts send(None)");
        return PYGEN_ERROR;
    }
    object out;
    resumed r = next_step(o, nullptr, out);
    if (r == resumed::raised)
        return PYGEN_ERROR; // NOTE: *result stays null: a task reads a result as a return
    *result = out.release();
    return r == resumed::yielded ? PYGEN_NEXT : PYGEN_RETURN;
}
#endif

inline PyObject* next_throw(PyObject* o, PyObject* args) {
    object e;
    try {
        e = thrown_exception(args);
    } catch (...) {
        translate_exception(detail::caught());
        return nullptr;
    }
    return next_as_iterator(o, e.ptr());
}

inline PyObject* next_close(PyObject* o, PyObject*) {
    auto* self = reinterpret_cast<next_object*>(o);
    self->finished = true;
    Py_CLEAR(self->inner);
    Py_RETURN_NONE;
}

inline void next_dealloc(PyObject* o) {
    auto* self = reinterpret_cast<next_object*>(o);
    Py_CLEAR(self->inner);
    Py_CLEAR(self->stream);
    free_instance(o);
}

inline object make_next(PyObject* stream, bool closing) {
    object next = steal(PyType_GenericAlloc(per_interpreter<stream_types>().next, 0));
    if (!next)
        throw_error_already_set();
    auto* self = reinterpret_cast<next_object*>(next.ptr());
    Py_INCREF(stream);
    self->stream = stream;
    self->closing = closing;
    return next;
}

inline PyObject* stream_anext(PyObject* o) {
    return entry_point([&] {
        as_stream(o)->core->ensure_started();
        return make_next(o, false);
    });
}

inline PyObject* stream_aclose(PyObject* o, PyObject*) {
    return entry_point([&] {
        as_stream(o)->core->close();
        return make_next(o, true);
    });
}

inline void stream_dealloc(PyObject* o) {
    error_kept kept; // NOTE: it may die while an exception propagates (`async for` over it)
    if (producer_base* core = std::exchange(as_stream(o)->core, nullptr)) {
        core->close();
        core->release();
    }
    free_instance(o);
}

} // namespace detail

/// How many items a stream buffers by default: into_stream's window, stream_into_py's
/// capacity. Each batch costs a wake of a thread (20-30 µs on a small VM); 256 small items
/// amortize it (see docs/benchmarks.md). Memory: 256 items.
inline constexpr std::size_t default_stream_window = 256;

/// Python reads a C++ producer: a pyasio.AsyncStream for `async for`, fed by `producer`, a
/// callable `(pyasio::stream_writer<T>) -> asio::awaitable<void>` that co_awaits
/// `writer.write(value)` for each item.
///
/// The producer starts on the runtime (a strand of `ex`) at the first __anext__, as
/// future_into_py work: its threads never take the GIL, and the items reach the loop through
/// the loop bridge, one wake per batch. At most `capacity` items wait in the buffer: write()
/// suspends while it is full. Each item is converted with to_python on the loop thread.
///
/// The iteration ends when the producer returns; an exception it throws is raised by the
/// __anext__ after the items written before it. Python leaving early (break and dropping the
/// stream, aclose(), the stream collected) cancels the producer (terminal cancellation at its
/// current wait) and makes its further writes throw operation_aborted. Cancelling a task that
/// waits in __anext__ (task.cancel(), a wait_for timeout) does not: that __anext__ raises
/// CancelledError, takes no item, and the next __anext__ gets the next one. Several tasks may
/// wait in __anext__ at once: each item goes to one of them. Call with the GIL.
template <class T, class Producer>
object stream_into_py(Producer producer, std::size_t capacity, asio::any_io_executor ex) {
    PYASIO_DETAIL_ASSERT_GIL("pyasio::stream_into_py called");
    static_assert(std::is_invocable_r_v<asio::awaitable<void>, Producer&, stream_writer<T>>,
                  "pyasio::stream_into_py<T> takes a callable "
                  "(pyasio::stream_writer<T>) -> asio::awaitable<void>");
    if (capacity == 0)
        throw std::invalid_argument("pyasio::stream_into_py: the capacity must be at least 1");
    object stream =
        steal(PyType_GenericAlloc(detail::per_interpreter<detail::stream_types>().stream, 0));
    if (!stream)
        detail::throw_error_already_set();
    detail::as_stream(stream.ptr())->core =
        new detail::producer_core<T, Producer>(std::move(producer), capacity, std::move(ex));
    return stream;
}

/// stream_into_py on the default runtime.
template <class T, class Producer>
object stream_into_py(Producer producer, std::size_t capacity = default_stream_window) {
    return stream_into_py<T>(std::move(producer), capacity, default_executor());
}

namespace detail {
template <class Channel> struct channel_value {
    static_assert(always_false<Channel>, "pyasio::channel_into_py takes a std::shared_ptr to an "
                                         "asio::experimental::channel or concurrent_channel of "
                                         "void(asio::error_code, T)");
};
template <class E, class Tr, class T>
struct channel_value<asio::experimental::basic_channel<E, Tr, void(asio::error_code, T)>> {
    using type = T;
};
template <class E, class Tr, class T>
struct channel_value<
    asio::experimental::basic_concurrent_channel<E, Tr, void(asio::error_code, T)>> {
    using type = T;
};
} // namespace detail

/// Python reads an Asio channel: a pyasio.AsyncStream of the values received from `channel`,
/// an asio::experimental::concurrent_channel<void(asio::error_code, T)> (or a plain channel
/// whose every other operation runs on the stream's strand: a plain channel is not
/// thread-safe). The iteration ends when the channel is closed (channel.close()) and the
/// receive reports channel_closed (NOTE: Asio 1.22 drops the values still in a channel's buffer
/// at close(): close an unbuffered channel, or close once the values were taken); an error code
/// sent with a value is raised as OSError at that point. Python leaving early cancels the
/// pending receive. Call with the GIL.
template <class Channel>
object channel_into_py(std::shared_ptr<Channel> channel,
                       std::size_t capacity = default_stream_window) {
    using T = typename detail::channel_value<Channel>::type;
    if (!channel)
        throw std::invalid_argument("pyasio::channel_into_py: no channel (an empty shared_ptr)");
    return stream_into_py<T>(
        [channel](stream_writer<T> out) -> asio::awaitable<void> {
            for (;;) {
                auto [ec, value] = co_await channel->async_receive(
                    asio::experimental::as_tuple(asio::use_awaitable));
                if (ec == asio::experimental::error::channel_closed)
                    co_return;
                if (ec)
                    throw std::system_error(ec);
                co_await out.write(std::move(value));
            }
        },
        capacity);
}

/// A C++ stream of the items of a Python async iterator (made by into_stream): `co_await
/// s.next()` gives the next item as std::optional<T> (std::nullopt at the end).
///
/// Move-only. Destroying it while the iterator runs closes the iterator: an async generator
/// waiting between items gets aclose() (its finally blocks run); one inside an __anext__ is
/// cancelled there. Cancelling a next() does not: the stream stays usable.
template <class T = object> class async_stream {
public:
    /// Takes `o`'s stream; `o` is left empty (its next() throws std::logic_error).
    async_stream(async_stream&& o) noexcept = default;
    /// Takes `o`'s stream, leaving `o` empty; the stream this held is dropped as by the
    /// destructor.
    async_stream& operator=(async_stream&& o) noexcept {
        async_stream(std::move(o)).swap(*this);
        return *this;
    }
    ~async_stream() {
        if (core_)
            core_.detach()->drop();
    }

    /// The next item: an Asio async operation with signature void(std::exception_ptr,
    /// std::optional<T>), so every completion token works (next() below: asio::use_awaitable).
    ///
    /// Outcomes: the item (converted to T on the loop thread); std::nullopt at the end; the
    /// iterator's exception as pyasio::python_error, at the item where it was raised (and at
    /// every later next()); a conversion error at its item (the iterator is then closed);
    /// operation_aborted when the C++ side cancelled this next(); pyasio::task_cancelled when
    /// Python cancelled the reading task; pyasio::event_loop_closed when the loop closed first.
    /// One next() at a time: a second while one waits completes with std::logic_error. As with
    /// an Asio I/O object, one stream is not for next() from two threads at once.
    ///
    /// @par Per-Operation Cancellation
    /// Terminal, partial and total: this next() completes with operation_aborted, at once. It
    /// ends only this wait: the iterator goes on (an __anext__ in flight is not cancelled), and
    /// the next next() gets the next item. An item already handed to this next() whose handler
    /// has not run yet is taken back for the next next() (`||` drops the result of an operation
    /// it cancelled). To stop the iterator, destroy the stream.
    template <class Token> auto next(Token&& token) {
        if (!core_)
            throw std::logic_error("pyasio::async_stream::next: the stream was moved from");
        return asio::async_initiate<Token, void(std::exception_ptr, std::optional<T>)>(
            detail::initiate_pending<detail::stream_core<T>, std::optional<T>>{core_.get()}, token);
    }

    /// next(asio::use_awaitable), for `co_await s.next()`, with a fast path: an item that is
    /// already there is taken without suspending (no completion is posted).
    asio::awaitable<std::optional<T>> next() {
        std::optional<T> item;
        if (core_ && core_->try_take(item))
            co_return item;
        co_return co_await next(asio::use_awaitable);
    }

    /// The most items fetched ahead of the consumer (0 for a moved-from stream).
    std::size_t window() const noexcept { return core_ ? core_->window() : 0; }

    /// Exchanges the streams.
    void swap(async_stream& o) noexcept { std::swap(core_, o.core_); }

private:
    template <class U, class S>
    friend async_stream<U> make_async_stream(S source, task_locals locals, std::size_t window);

    explicit async_stream(detail::counted_ref<detail::stream_core<T>> core) noexcept
        : core_(std::move(core)) {}

    detail::counted_ref<detail::stream_core<T>> core_;
};

template <class T, class S>
async_stream<T> make_async_stream(S source, task_locals locals, std::size_t window) {
    if (window == 0)
        throw std::invalid_argument("pyasio::into_stream: the window must be at least 1");
    auto* core =
        new detail::stream_core<T>(std::make_unique<detail::stream_source_of<S>>(std::move(source)),
                                   std::move(locals), window);
    return async_stream<T>(detail::counted_ref<detail::stream_core<T>>::adopt(core));
}

/// C++ reads a Python async iterator: the stream of the items of `iterable` (an async
/// generator, or any object with __aiter__/__anext__; anything else throws type_error at the
/// call), run on `locals`' loop and in its context.
///
/// Nothing runs before the first next(). Then a task on the loop fetches items ahead of the
/// consumer, up to `window` of them, converted to T on the loop thread: a fast consumer takes
/// them without a round trip per item, and the iterator waits while the window is full
/// (backpressure). Callable on any thread, with or without the GIL.
template <class T = object>
async_stream<T> into_stream(object iterable, task_locals locals,
                            std::size_t window = default_stream_window) {
    if (!iterable)
        throw type_error("pyasio::into_stream: expected an async iterable, got no object");
    detail::check_async_iterable(iterable, "pyasio::into_stream");
    return make_async_stream<T>(std::move(iterable), std::move(locals), window);
}

/// into_stream on the loop of the C++ code that calls it (as into_future finds it).
template <class T = object>
async_stream<T> into_stream(object iterable, std::size_t window = default_stream_window) {
    return into_stream<T>(std::move(iterable),
                          detail::locals_for_into_future("pyasio::into_stream"), window);
}

/// into_stream of what `fn(args...)` returns (see async_function), called on the loop thread:
/// e.g. an async generator function and its arguments. No GIL needed at the call.
template <class T = object, class... Args>
async_stream<T> into_stream(detail::async_call<Args...> call, task_locals locals,
                            std::size_t window = default_stream_window) {
    return make_async_stream<T>(std::move(call), std::move(locals), window);
}

/// into_stream of `fn(args...)` on the loop of the C++ code that calls it.
template <class T = object, class... Args>
async_stream<T> into_stream(detail::async_call<Args...> call,
                            std::size_t window = default_stream_window) {
    return make_async_stream<T>(std::move(call),
                                detail::locals_for_into_future("pyasio::into_stream"), window);
}

PYASIO_NAMESPACE_END

#endif // PYASIO_STREAM_HPP
