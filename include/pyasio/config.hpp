// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_CONFIG_HPP
#define PYASIO_CONFIG_HPP

/// @file
/// The one place that includes <Python.h> and configures Asio. Every pyasio header includes this
/// first.

// NOTE: first, so that a build without C++20 gets this line and not a screen of errors.
#if (defined(_MSVC_LANG) && _MSVC_LANG < 202002L) || (!defined(_MSVC_LANG) && __cplusplus < 202002L)
#error "pyasio needs C++20: compile with -std=c++20 (MSVC: /std:c++20)."
// NOTE: a missing file ends the compilation at once (g++ and clang go on after #error, with a
// screen of errors from the C++20 code below)
#include <pyasio/stop_here_and_compile_with_cpp20> // IWYU pragma: keep
#endif

// NOTE: Python.h must come before any standard header: it defines feature macros
// (_POSIX_C_SOURCE, _XOPEN_SOURCE) that change what the C library headers declare.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX < 0x03080000
#error "pyasio needs CPython 3.8 or newer."
#endif

// The limited API (Py_LIMITED_API, for one abi3 wheel that serves every later version): from
// 3.12, the first whose limited API has vectorcall (PyObject_Vectorcall, _VectorcallMethod).
#if defined(Py_LIMITED_API)
#if Py_LIMITED_API + 0 < 0x030C0000
#error                                                                                             \
    "pyasio's limited-API (abi3) build needs Py_LIMITED_API=0x030C0000 (3.12) or later: define it so, or build with the full API (no Py_LIMITED_API)."
#include <pyasio/stop_here_and_fix_py_limited_api> // IWYU pragma: keep
#elif PY_VERSION_HEX < Py_LIMITED_API
#error                                                                                             \
    "Py_LIMITED_API names a later Python than these headers are from: build the abi3 module with the headers of that version (e.g. python3.12-config --includes for 0x030C0000), which then serves every later version too."
#include <pyasio/stop_here_and_fix_py_limited_api> // IWYU pragma: keep
#endif
/// 1 when built on the limited API (abi3): pyasio then calls only the stable ABI.
#define PYASIO_DETAIL_LIMITED 1
/// The version whose API pyasio may call: the limited API's, or the headers'.
#define PYASIO_DETAIL_API_VERSION Py_LIMITED_API
#else
/// 1 when built on the limited API (abi3): pyasio then calls only the stable ABI.
#define PYASIO_DETAIL_LIMITED 0
/// The version whose API pyasio may call: the limited API's, or the headers'.
#define PYASIO_DETAIL_API_VERSION PY_VERSION_HEX
#endif

// NOTE: Asio 1.22 enables co_await support under clang only when <experimental/coroutine>
// exists, which libstdc++ does not ship; clang 14 has C++20 coroutines and <coroutine>, so
// tell Asio. Users never have to define these themselves.
#if defined(__clang__) && defined(__cpp_impl_coroutine) && (__cpp_impl_coroutine >= 201902L)
#if __has_include(<coroutine>)
#if !defined(ASIO_HAS_CO_AWAIT) && !defined(ASIO_DISABLE_CO_AWAIT)
#if defined(ASIO_DETAIL_CONFIG_HPP)
#error                                                                                             \
    "Asio was included before pyasio under clang: include <pyasio.hpp> (or any pyasio header) before <asio.hpp>, or define ASIO_HAS_CO_AWAIT=1 and ASIO_HAS_STD_COROUTINE=1 for the whole build."
#endif
#define ASIO_HAS_CO_AWAIT 1
#endif
#if !defined(ASIO_HAS_STD_COROUTINE) && !defined(ASIO_DISABLE_STD_COROUTINE)
#define ASIO_HAS_STD_COROUTINE 1
#endif
#endif
#endif

// NOTE: pyasio is vendored: one process may load several extension modules, each with its own
// copy of pyasio and of Asio, of the same or different versions, built with different compilers
// and flags. A copy must never run another copy's code or share its state, and a dynamic linker
// binds every default-visibility symbol of a shared object to the first one loaded under that
// name (template instances and function-local statics included). So in code for a shared object
// (-fPIC without -fPIE: an extension module) pyasio makes everything of its own hidden (the
// namespace below) and includes Asio under hidden visibility: Asio's headers push default
// visibility for themselves (asio/detail/push_options.hpp) unless ASIO_DISABLE_VISIBILITY is
// defined. Executables are left alone: nothing binds to them unless they export their symbols,
// and an extension module's hidden symbols are bound inside the module at link time anyway.
// PYASIO_HIDDEN_VISIBILITY=1 or 0 decides instead of the guess: e.g. 0 for -fPIC code of a
// static library that an executable links, or 1 for a module built without -fPIC.
#if defined(PYASIO_HIDDEN_VISIBILITY)
#if PYASIO_HIDDEN_VISIBILITY &&                                                                    \
    (defined(_WIN32) || defined(__CYGWIN__) || !(defined(__GNUC__) || defined(__clang__)))
#error "PYASIO_HIDDEN_VISIBILITY=1 needs GCC or clang on an ELF or Mach-O platform."
#endif
/// 1 in code for a shared object: pyasio's names and Asio's are hidden (see config.hpp).
#define PYASIO_DETAIL_HIDDEN PYASIO_HIDDEN_VISIBILITY
#elif (defined(__GNUC__) || defined(__clang__)) && !defined(_WIN32) && !defined(__CYGWIN__) &&     \
    defined(__PIC__) && !defined(__PIE__)
/// 1 in code for a shared object: pyasio's names and Asio's are hidden (see config.hpp).
#define PYASIO_DETAIL_HIDDEN 1
#else
/// 1 in code for a shared object: pyasio's names and Asio's are hidden (see config.hpp).
#define PYASIO_DETAIL_HIDDEN 0
#endif

#if PYASIO_DETAIL_HIDDEN && defined(ASIO_DETAIL_CONFIG_HPP) && !defined(ASIO_DISABLE_VISIBILITY)
#error                                                                                             \
    "Asio was included before pyasio in code for a shared object (an extension module): include <pyasio.hpp> (or any pyasio header) before any Asio header, so that Asio's code stays private to this module; or define ASIO_DISABLE_VISIBILITY for the whole build and compile with -fvisibility=hidden."
#endif

#if PYASIO_DETAIL_HIDDEN
#if !defined(ASIO_DISABLE_VISIBILITY)
#define ASIO_DISABLE_VISIBILITY 1
#endif
#include <pyasio/detail/system_headers.hpp> // NOTE: see there: before the pragma, or links fail
#pragma GCC visibility push(hidden)
#endif
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/channel.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#if PYASIO_DETAIL_HIDDEN
#pragma GCC visibility pop
#endif

#if ASIO_VERSION < 102200
#error "pyasio needs standalone Asio 1.22 or newer (Debian: apt-get install libasio-dev)."
#endif

#if __has_include(<pthread.h>) && !defined(_WIN32)
#include <pthread.h>
/// 1 where fork() exists: the child of a fork then resets pyasio's state (pthread_atfork).
#define PYASIO_DETAIL_HAS_FORK 1
#else
/// 1 where fork() exists: the child of a fork then resets pyasio's state (pthread_atfork).
#define PYASIO_DETAIL_HAS_FORK 0
#endif

/// The major version: pyasio MAJOR.MINOR.PATCH, as in CMakeLists.txt and meson.build.
#define PYASIO_VERSION_MAJOR 0
/// The minor version.
#define PYASIO_VERSION_MINOR 1
/// The patch version.
#define PYASIO_VERSION_PATCH 0

// NOTE: every name lives in an inline namespace named after the version, so that two versions
// never share a symbol even where visibility cannot keep them apart (fmt and libc++ do the
// same). In code for a shared object the namespace is hidden as well (see above), so that two
// copies of one version do not share one either. GCC then warns (-Wattributes, "declared with
// greater visibility than the type of its field") on a default-visibility type of the module that
// holds a pyasio or Asio object: build extension modules with -fvisibility=hidden, as pybind11
// and nanobind ask too. Executables keep default visibility, so programs that embed Python and
// build with -Werror get no such warning.
#define PYASIO_DETAIL_ABI_CAT(a, b, c) v##a##_##b##_##c
#define PYASIO_DETAIL_ABI(a, b, c) PYASIO_DETAIL_ABI_CAT(a, b, c)
/// The name of the versioned inline namespace, made from the version: v0_1_0 for 0.1.0.
#define PYASIO_ABI_NAMESPACE                                                                       \
    PYASIO_DETAIL_ABI(PYASIO_VERSION_MAJOR, PYASIO_VERSION_MINOR, PYASIO_VERSION_PATCH)

/// @namespace pyasio
/// Everything pyasio offers. The names live in an inline namespace named after the version
/// (pyasio::v0_1_0), which code never has to spell; internals are in pyasio::detail.

#if PYASIO_DETAIL_HIDDEN
/// The visibility of pyasio's names: hidden in code for a shared object.
#define PYASIO_DETAIL_VISIBILITY __attribute__((visibility("hidden")))
#else
/// The visibility of pyasio's names: hidden in code for a shared object.
#define PYASIO_DETAIL_VISIBILITY
#endif

/// Opens namespace pyasio (and its versioned inline namespace).
#define PYASIO_NAMESPACE_BEGIN                                                                     \
    namespace pyasio {                                                                             \
    inline namespace PYASIO_ABI_NAMESPACE PYASIO_DETAIL_VISIBILITY {
/// Closes what PYASIO_NAMESPACE_BEGIN opened.
#define PYASIO_NAMESPACE_END                                                                       \
    }                                                                                              \
    }

/// Declares an extension module's init function, exported even when the module is built with
/// -fvisibility=hidden (PyMODINIT_FUNC exports it only from Python 3.9 on):
///
///     PYASIO_MODULE_INIT(mymod) { return PyModule_Create(&mymod_def); }
///
/// `name` may be a macro (e.g. one the build defines): it is expanded first.
#define PYASIO_MODULE_INIT(name) PYASIO_DETAIL_MODULE_INIT(name)
#if defined(__GNUC__) || defined(__clang__)
/// PYASIO_MODULE_INIT, once `name` is expanded.
#define PYASIO_DETAIL_MODULE_INIT(name)                                                            \
    extern "C" __attribute__((visibility("default"))) PyObject* PyInit_##name()
#else
/// PYASIO_MODULE_INIT, once `name` is expanded.
#define PYASIO_DETAIL_MODULE_INIT(name) PyMODINIT_FUNC PyInit_##name()
#endif

// Debug checks (GIL held on incref, misuse detectors): on with PYASIO_DEBUG, or when NDEBUG is
// not defined. PYASIO_NO_DEBUG turns them off regardless.
#if !defined(PYASIO_NO_DEBUG) && (defined(PYASIO_DEBUG) || !defined(NDEBUG))
#define PYASIO_DETAIL_DEBUG 1
#else
#define PYASIO_DETAIL_DEBUG 0
#endif

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#if PYASIO_DETAIL_LIMITED && !defined(_WIN32)
#include <dlfcn.h>
#endif
#include <exception>
#include <stdexcept>

// NOTE: CPython ends a thread that tries to take the GIL once finalization has begun, and glibc
// ends a thread (pthread_exit, pthread_cancel) by unwinding its stack with a "forced unwind": an
// exception that catch (...) sees but must rethrow (glibc aborts the process, "FATAL: exception
// not rethrown", when a handler swallows it), and that is no C++ exception:
// std::current_exception() is empty inside the handler (rethrowing that is undefined), and a
// handler that names its type (abi::__forced_unwind&) binds a reference to null. So every
// catch (...) in pyasio begins with detail::caught(), which rethrows what C++ cannot hold and
// gives the exception_ptr of what it can (a test fails on a catch (...) that does not):
//
//     try { ... } catch (...) { report(detail::caught()); }
//
// A frame that a forced unwind may cross (code that calls Python, which is where CPython ends
// the thread) must not be noexcept either: the unwinder calls std::terminate there. The loop
// thread's frames (entry points, the loop bridge's drain and jobs, done callbacks, stream steps)
// are not. Known limit: in the call_soon_threadsafe wake mode, a thread completing C++ work takes
// the GIL inside noexcept frames (loop_bridge::push and its callers); one that finalization ends
// there (an executor of the user's still running at exit) terminates the process.

PYASIO_NAMESPACE_BEGIN
namespace detail {

/// The size of a cache line (x86-64, and most ARM cores): members that two threads write apart
/// are aligned to it, so that neither thread's writes evict the other's.
inline constexpr std::size_t cache_line = 64;

/// The exception being handled, for the first statement of every catch (...) handler: its
/// exception_ptr, never empty. What std::exception_ptr cannot hold is rethrown, so that it goes
/// on: a forced unwind (a thread being ended) or another language's exception. In a noexcept
/// function (a destructor, what()) that is std::terminate, as any exception leaving it would be.
inline std::exception_ptr caught() {
    std::exception_ptr e = std::current_exception();
    if (!e)
        throw;
    return e;
}

/// Reports a broken library rule and aborts: used only by debug checks, for misuse that would
/// otherwise corrupt the interpreter (there is no safe way to continue).
[[noreturn]] inline void fatal(const char* what) noexcept {
    std::fprintf(stderr, "pyasio: fatal: %s\n", what);
    std::fflush(stderr);
    std::abort();
}

#if PYASIO_DETAIL_LIMITED
/// Py_IsFinalizing (3.13+) or _Py_IsFinalizing (3.12), found by name in the running interpreter:
/// neither is in the stable ABI, and an abi3 module may run on either. Looked up in the process's
/// global symbols, else in the file that holds Py_IsInitialized (a libpython loaded with
/// RTLD_LOCAL, by a plugin host). Null where neither is found (Windows: not looked up; then only
/// Py_IsInitialized answers).
inline int (*finalizing_function() noexcept)() {
#if defined(_WIN32)
    return nullptr; // NOTE: by design: the limited build on Windows has not been run
#else
    static int (*const f)() = [] {
        void* libpython = nullptr;
        Dl_info info{};
        if (::dladdr(reinterpret_cast<void*>(&Py_IsInitialized), &info) != 0 &&
            info.dli_fname != nullptr)
            libpython = ::dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
        void* p = nullptr;
        for (const char* name : {"Py_IsFinalizing", "_Py_IsFinalizing"}) {
            p = ::dlsym(RTLD_DEFAULT, name);
            if (p == nullptr && libpython != nullptr)
                p = ::dlsym(libpython, name);
            if (p != nullptr)
                break;
        }
        // NOTE: the handle is kept: the interpreter stays loaded while pyasio runs anyway
        return reinterpret_cast<int (*)()>(p);
    }();
    return f;
#endif
}
#endif

/// True while the interpreter is initialized and not finalizing: only then may a thread that
/// does not hold the GIL try to take it.
inline bool interpreter_alive() noexcept {
#if PYASIO_DETAIL_LIMITED
    int (*finalizing)() = finalizing_function();
    return Py_IsInitialized() != 0 && (finalizing == nullptr || finalizing() == 0);
#elif PY_VERSION_HEX >= 0x030D0000
    return Py_IsInitialized() != 0 && Py_IsFinalizing() == 0;
#else
    return Py_IsInitialized() != 0 && _Py_IsFinalizing() == 0;
#endif
}

/// True when the calling thread holds the GIL.
inline bool gil_held() noexcept {
#if PYASIO_DETAIL_LIMITED
    // NOTE: from 3.12 the current thread state is this thread's (thread-local), set exactly while
    // this thread holds the GIL; the stable ABI's only call that reads it without failing is
    // PyThreadState_GetDict (null when there is none; the dict is made once per thread state,
    // and once more if pyasio asks while CPython clears an ending thread's state: a small dict
    // left behind per such thread).
    return PyThreadState_GetDict() != nullptr;
#elif PY_VERSION_HEX >= 0x030C0000
    // NOTE: from 3.12 the current thread state is this thread's (thread-local): it is set
    // exactly while this thread holds the GIL.
#if PY_VERSION_HEX >= 0x030D0000
    return PyThreadState_GetUnchecked() != nullptr;
#else
    return _PyThreadState_UncheckedGet() != nullptr;
#endif
#else
    // NOTE: on 3.8-3.11 the current thread state is the one that holds the GIL, on any thread;
    // it is this thread's when it is the thread state PyGILState knows for this thread. (Not
    // PyGILState_Check, which does the same but answers 1 for every thread once a
    // subinterpreter has been created, and before Py_Initialize and after Py_Finalize.) Neither
    // call needs the GIL.
    PyThreadState* current = _PyThreadState_UncheckedGet();
    return current != nullptr && current == PyGILState_GetThisThreadState();
#endif
}

} // namespace detail
PYASIO_NAMESPACE_END

#if PYASIO_DETAIL_DEBUG
#define PYASIO_DETAIL_ASSERT_GIL(what)                                                             \
    do {                                                                                           \
        if (!::pyasio::detail::gil_held())                                                         \
            ::pyasio::detail::fatal(what " without holding the GIL (rule: take the GIL with "      \
                                         "pyasio::gil_acquire before touching Python objects)");   \
    } while (0)
#else
#define PYASIO_DETAIL_ASSERT_GIL(what)                                                             \
    do {                                                                                           \
    } while (0)
#endif

#endif // PYASIO_CONFIG_HPP
