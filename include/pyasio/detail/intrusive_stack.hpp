// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_DETAIL_INTRUSIVE_STACK_HPP
#define PYASIO_DETAIL_INTRUSIVE_STACK_HPP

#include <pyasio/config.hpp>

#include <atomic>

PYASIO_NAMESPACE_BEGIN
namespace detail {

/// The one queue pyasio hands work across threads with: a lock-free multi-producer stack of
/// nodes linked through their own `Next` member, taken whole by one consumer. push() says whether
/// the stack was empty, so that only that push wakes the consumer (one wake per batch);
/// consume() takes everything pushed so far and visits it oldest first.
template <class T, T* T::*Next> class intrusive_stack {
public:
    /// Pushes n; true when the stack was empty before. Any thread.
    bool push(T* n) noexcept {
        T* old = head_.load(std::memory_order_relaxed);
        do {
            n->*Next = old;
        } while (!head_.compare_exchange_weak(old, n, std::memory_order_release,
                                              std::memory_order_relaxed));
        return old == nullptr;
    }

    /// True when something waits; a cheap check.
    bool pending() const noexcept { return head_.load(std::memory_order_relaxed) != nullptr; }

    /// Takes every node pushed so far: the oldest, linked through Next to the newest.
    T* take_all() noexcept {
        T* newest_first = head_.exchange(nullptr, std::memory_order_acquire);
        T* oldest_first = nullptr;
        while (newest_first != nullptr) {
            T* next = newest_first->*Next;
            newest_first->*Next = oldest_first;
            oldest_first = newest_first;
            newest_first = next;
        }
        return oldest_first;
    }

    /// Takes every node pushed so far and calls f(node) on each, oldest first. The link is read
    /// before f runs, so f may free or re-queue the node.
    template <class F> void consume(F&& f) {
        T* oldest_first = take_all();
        while (oldest_first != nullptr) {
            T* next = oldest_first->*Next;
            f(oldest_first);
            oldest_first = next;
        }
    }

private:
    std::atomic<T*> head_{nullptr};
};

} // namespace detail
PYASIO_NAMESPACE_END

#endif // PYASIO_DETAIL_INTRUSIVE_STACK_HPP
