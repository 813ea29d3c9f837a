// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_INTO_STREAM_HPP
#define PYASIO_INTO_STREAM_HPP

/// @file
/// C++ reads a Python async iterator: into_stream, and the async_stream it returns (fed by a
/// pump task on the loop).

#include <pyasio/config.hpp>

#include <pyasio/convert.hpp>
#include <pyasio/detail/ref_counted.hpp>
#include <pyasio/detail/stream_common.hpp>
#include <pyasio/error.hpp>
#include <pyasio/future_into_py.hpp>
#include <pyasio/into_future.hpp>
#include <pyasio/loop.hpp>
#include <pyasio/loop_executor.hpp>
#include <pyasio/object.hpp>

#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
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
#include <type_traits>
#include <utility>

PYASIO_NAMESPACE_BEGIN

namespace detail {

/// What the pump of an into_stream runs in its task: one step, a close, and letting go.
struct pump_target {
    /// Runs until the pump must wait (a new reference to what the task awaits) or is finished
    /// (nullptr with StopIteration set). `sent`: what the task sent (null: None); `thrown`: an
    /// exception thrown into the pump.
    virtual PyObject* step(PyObject* sent, PyObject* thrown) = 0;
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
    return reinterpret_cast<pump_object*>(o)->target->step(nullptr, nullptr);
}

inline PyObject* pump_send(PyObject* o, PyObject* arg) {
    return reinterpret_cast<pump_object*>(o)->target->step(arg, nullptr);
}

inline PyObject* pump_throw(PyObject* o, PyObject* args) {
    object e;
    try {
        e = thrown_exception(args);
    } catch (...) {
        translate_exception(detail::caught());
        return nullptr;
    }
    return reinterpret_cast<pump_object*>(o)->target->step(nullptr, e.ptr());
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

/// The Python type of into_stream's pump, made once per interpreter.
struct stream_pump_type {
    PyTypeObject* pump = make_pump_type();

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

    PyObject* step(PyObject* sent, PyObject* thrown) override {
        try {
            for (;;) {
                if (inner_) {
                    object out;
                    resumed r = resume(inner_, sent, thrown, out);
                    sent = thrown = nullptr;
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
        object pump = steal(PyType_GenericAlloc(per_interpreter<stream_pump_type>().pump, 0));
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
        bool cancelled = is_cancellation(e);
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

} // namespace detail

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

#endif // PYASIO_INTO_STREAM_HPP
