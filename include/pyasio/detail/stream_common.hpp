// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_DETAIL_STREAM_COMMON_HPP
#define PYASIO_DETAIL_STREAM_COMMON_HPP

/// @file
/// What both stream directions share (into_stream.hpp, stream_into_py.hpp): the names they
/// call, the pending wait of the C++ side, and default_stream_window.

#include <pyasio/config.hpp>

#include <pyasio/detail/await_step.hpp>
#include <pyasio/detail/ref_counted.hpp>
#include <pyasio/error.hpp>
#include <pyasio/into_future.hpp>
#include <pyasio/object.hpp>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

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
    object close = interned("close");
    object aclose = interned("aclose");
};

inline std::exception_ptr operation_aborted() {
    return std::make_exception_ptr(std::system_error(asio::error::operation_aborted));
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

} // namespace detail

/// How many items a stream buffers by default: into_stream's window, stream_into_py's
/// capacity. Each batch costs a wake of a thread (20-30 µs on a small VM); 256 small items
/// amortize it (see docs/benchmarks.md). Memory: 256 items.
inline constexpr std::size_t default_stream_window = 256;

PYASIO_NAMESPACE_END

#endif // PYASIO_DETAIL_STREAM_COMMON_HPP
