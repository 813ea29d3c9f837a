// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_RUNTIME_HPP
#define PYASIO_RUNTIME_HPP

#include <pyasio/config.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include <algorithm>
#include <cstddef>
#include <thread>
#include <vector>

PYASIO_NAMESPACE_BEGIN

/// The Asio runtime that runs C++ work for Python: an io_context served by a pool of threads.
///
/// Its threads never take the GIL to complete an operation: results travel to the Python loop
/// through the loop bridge and are converted there. Destroying a runtime stops the io_context and
/// joins its threads; handlers still pending are destroyed without running.
class runtime {
public:
    /// Starts `threads` threads (at least 1).
    explicit runtime(std::size_t threads) : work_(io_.get_executor()) {
        threads = std::max<std::size_t>(threads, 1);
        threads_.reserve(threads);
        for (std::size_t i = 0; i < threads; ++i)
            threads_.emplace_back([this] { io_.run(); });
    }

    ~runtime() {
        work_.reset();
        io_.stop();
        for (auto& t : threads_)
            if (t.joinable())
                t.join();
    }

    runtime(const runtime&) = delete;
    runtime& operator=(const runtime&) = delete;

    /// The executor on which work runs.
    asio::io_context::executor_type get_executor() noexcept { return io_.get_executor(); }
    /// How many threads serve it.
    std::size_t thread_count() const noexcept { return threads_.size(); }

    /// The default thread count: the hardware's concurrency, at least 2.
    static std::size_t default_thread_count() noexcept {
        return std::max<std::size_t>(std::thread::hardware_concurrency(), 2);
    }

private:
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    std::vector<std::thread> threads_;
};

/// The default runtime, started on first use with runtime::default_thread_count() threads, so that
/// an extension module needs no set-up. It lives until the process exits.
inline runtime& default_runtime() {
    // NOTE: a function-local static: destroyed at process exit, after Python has finalized in a
    // python process; its threads touch no Python object, so joining them then is safe.
    static runtime rt(runtime::default_thread_count());
    return rt;
}

/// The default runtime's executor.
inline asio::any_io_executor default_executor() {
    return default_runtime().get_executor();
}

PYASIO_NAMESPACE_END

#endif // PYASIO_RUNTIME_HPP
