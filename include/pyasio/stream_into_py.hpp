// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_STREAM_INTO_PY_HPP
#define PYASIO_STREAM_INTO_PY_HPP

/// @file
/// Python reads C++: stream_into_py (a C++ producer that writes with stream_writer) and
/// channel_into_py (an Asio channel), as a pyasio.AsyncStream for `async for`.

#include <pyasio/config.hpp>

#include <pyasio/convert.hpp>
#include <pyasio/detail/done_callback.hpp>
#include <pyasio/detail/ref_counted.hpp>
#include <pyasio/detail/stream_common.hpp>
#include <pyasio/error.hpp>
#include <pyasio/future_into_py.hpp>
#include <pyasio/loop.hpp>
#include <pyasio/object.hpp>
#include <pyasio/runtime.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
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
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

PYASIO_NAMESPACE_BEGIN

namespace detail {

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

/// The Python types of stream_into_py (pyasio.AsyncStream and its __anext__ object), made
/// once per interpreter.
struct stream_types {
    PyTypeObject* stream = make_stream_type();
    PyTypeObject* next = make_next_type();

private:
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
        add_done_callback(done_, callback);
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
inline resumed next_step(PyObject* o, PyObject* sent, PyObject* thrown, object& out) {
    auto* self = reinterpret_cast<next_object*>(o);
    if (self->finished) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited __anext__()/aclose()");
        return resumed::raised;
    }
    try {
        for (;;) {
            if (self->inner != nullptr) {
                resumed r = resume(handle(self->inner), sent, thrown, out);
                sent = thrown = nullptr;
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
inline PyObject* next_as_iterator(PyObject* o, PyObject* sent, PyObject* thrown) {
    object out;
    switch (next_step(o, sent, thrown, out)) {
    case resumed::yielded:
        return out.release();
    case resumed::returned:
        return return_value(out);
    default:
        return nullptr;
    }
}

inline PyObject* next_iternext(PyObject* o) {
    return next_as_iterator(o, nullptr, nullptr);
}

inline PyObject* next_send(PyObject* o, PyObject* arg) {
    return next_as_iterator(o, arg, nullptr);
}

#if PY_VERSION_HEX >= 0x030A0000
/// am_send: `await` takes the item without a StopIteration (3.10+).
inline PySendResult next_am_send(PyObject* o, PyObject* arg, PyObject** result) {
    *result = nullptr;
    object out;
    resumed r = next_step(o, arg, nullptr, out);
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
    return next_as_iterator(o, nullptr, e.ptr());
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

PYASIO_NAMESPACE_END

#endif // PYASIO_STREAM_INTO_PY_HPP
