// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_DETAIL_REF_COUNTED_HPP
#define PYASIO_DETAIL_REF_COUNTED_HPP

#include <pyasio/config.hpp>

#include <atomic>
#include <utility>

PYASIO_NAMESPACE_BEGIN
namespace detail {

/// An object that several threads own at once (the C++ work, the loop bridge's queue, a Python
/// callback, ...): it counts its owners, and the last release deletes it.
class ref_counted {
public:
    ref_counted(const ref_counted&) = delete;
    ref_counted& operator=(const ref_counted&) = delete;

    void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    /// Adds an owner unless the last one is gone (the object is being destroyed).
    bool try_add_ref() noexcept {
        int n = refs_.load(std::memory_order_relaxed);
        while (n > 0)
            if (refs_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed))
                return true;
        return false;
    }
    void release() noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)
            delete this;
    }

protected:
    /// Starts with `owners` owners, each of which releases once.
    explicit ref_counted(int owners) noexcept : refs_(owners) {}
    virtual ~ref_counted() = default;

private:
    std::atomic<int> refs_;
};

/// One owner of a ref_counted T, as a value: copies add an owner, destruction drops one.
template <class T> class counted_ref {
public:
    counted_ref() noexcept = default;
    /// Takes over an owner that `p` already counts.
    static counted_ref adopt(T* p) noexcept { return counted_ref(p); }
    /// Adds an owner to `p`.
    static counted_ref share(T* p) noexcept {
        p->add_ref();
        return counted_ref(p);
    }

    counted_ref(const counted_ref& o) noexcept : p_(o.p_) {
        if (p_ != nullptr)
            p_->add_ref();
    }
    counted_ref(counted_ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    counted_ref& operator=(counted_ref o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    ~counted_ref() {
        if (p_ != nullptr)
            p_->release();
    }

    T* get() const noexcept { return p_; }
    T* operator->() const noexcept { return p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }

    /// Hands the owner on (to a queue, a callback) without releasing it.
    T* detach() noexcept { return std::exchange(p_, nullptr); }

private:
    explicit counted_ref(T* p) noexcept : p_(p) {}
    T* p_ = nullptr;
};

} // namespace detail
PYASIO_NAMESPACE_END

#endif // PYASIO_DETAIL_REF_COUNTED_HPP
