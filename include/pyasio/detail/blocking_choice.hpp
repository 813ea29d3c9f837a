// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_DETAIL_BLOCKING_CHOICE_HPP
#define PYASIO_DETAIL_BLOCKING_CHOICE_HPP

#include <pyasio/config.hpp>

#include <asio/execution.hpp>

PYASIO_NAMESPACE_BEGIN
namespace detail {

/// The blocking property of pyasio's executors, for Asio's require/query: possibly (the
/// default: a function may run at once when submitted from where it would run) or never (it is
/// always queued). Executor derives from blocking_choice<Executor> and is copyable.
template <class Executor> class blocking_choice {
public:
    asio::execution::blocking_t query(asio::execution::blocking_t) const noexcept {
        if (never_)
            return asio::execution::blocking.never;
        return asio::execution::blocking.possibly;
    }
    Executor require(asio::execution::blocking_t::never_t) const noexcept { return with(true); }
    Executor require(asio::execution::blocking_t::possibly_t) const noexcept { return with(false); }

protected:
    bool never_ = false;

private:
    Executor with(bool never) const noexcept {
        Executor copy = static_cast<const Executor&>(*this);
        copy.never_ = never;
        return copy;
    }
};

} // namespace detail
PYASIO_NAMESPACE_END

#endif // PYASIO_DETAIL_BLOCKING_CHOICE_HPP
