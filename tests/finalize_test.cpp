// SPDX-License-Identifier: BSL-1.0
// Objects and errors that outlive the interpreter, and an interpreter started twice: nothing may
// touch Python after finalization, and nothing queued for one interpreter may reach the next.
// A program of its own, because it finalizes and re-initializes the interpreter.
#include <pyasio.hpp>

#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {
int failures = 0;
void check(bool ok, const char* what) {
    std::printf("%s: %s\n", ok ? "ok" : "FAILED", what);
    failures += ok ? 0 : 1;
}

std::vector<pyasio::object> some_objects(int n) {
    std::vector<pyasio::object> v;
    v.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)
        v.push_back(pyasio::steal(PyList_New(0)));
    return v;
}
// Set by a capsule destructor that runs while the interpreter tears down __main__, after
// finalization began, on the finalizing thread (which holds the GIL).
int acquired_during_finalization = -1;
bool finalizing_then = false;

void on_capsule_destroyed(PyObject*) {
    finalizing_then = !pyasio::detail::interpreter_alive();
    try {
        pyasio::gil_acquire gil; // module-state destructors do this; it must not throw here
        acquired_during_finalization = pyasio::gil::held() ? 1 : 0;
    } catch (const std::exception&) {
        acquired_during_finalization = 0;
    }
}
/// True when gil_acquire refuses with pyasio's message that the interpreter is not running.
bool acquire_refused() {
    try {
        pyasio::gil_acquire gil;
    } catch (const std::logic_error& e) {
        return std::strstr(e.what(), "not running") != nullptr;
    }
    return false;
}
} // namespace

int run() {
    check(acquire_refused(), "gil_acquire before Py_Initialize is a clear std::logic_error");
    check(!pyasio::gil::held(), "gil::held() is false before Py_Initialize");

    Py_InitializeEx(0);
    std::vector<pyasio::object> survivors = some_objects(10);
    std::vector<pyasio::object> queued = some_objects(10);
    std::optional<pyasio::python_error> error;
    try {
        pyasio::call(pyasio::getattr(pyasio::import("builtins"), "int"), "x");
    } catch (const pyasio::python_error& e) {
        error = e;
    }
    pyasio::object capsule = pyasio::steal(PyCapsule_New(&failures, nullptr, on_capsule_destroyed));
    pyasio::setattr(pyasio::import("__main__"), "capsule", capsule);
    capsule.reset();
    pyasio::release_pending(); // installs this interpreter's exit hook
    {
        pyasio::gil_release nogil;
        std::thread([&] { queued.clear(); }).join(); // queued, never drained before finalize
    }
    check(pyasio::detail::release_queue::instance().pending(),
          "objects dropped without the GIL wait in the queue");
    Py_FinalizeEx();

    check(!pyasio::detail::release_queue::instance().pending(),
          "references queued before finalization were discarded by it (never decref'd later)");
    check(!pyasio::gil::held(), "gil::held() is false after finalization");
    check(finalizing_then && acquired_during_finalization == 1,
          "gil_acquire works on the finalizing thread during finalization");
    survivors.clear(); // dropped after finalization: must not touch the dead objects
    check(!pyasio::detail::release_queue::instance().pending(),
          "objects dropped after finalization are neither touched nor queued");
    check(std::strstr(error->what(), "interpreter was finalized") != nullptr,
          "python_error::what() after finalization says the interpreter is gone");
    error.reset();
    check(acquire_refused(), "gil_acquire after finalization is a clear std::logic_error");

    // A second interpreter must not see the first one's queued references.
    Py_InitializeEx(0);
    pyasio::release_pending(); // would Py_DECREF dangling pointers if the queue had survived
    pyasio::object fresh = pyasio::to_python(std::vector<int>{1, 2});
    check(pyasio::repr(fresh) == "[1, 2]", "a second interpreter works after the first one");
    fresh.reset();
    Py_FinalizeEx();

    // A translator registered in one interpreter is gone in the next, even when registering it
    // was the only thing pyasio did there.
    struct local_failure : std::runtime_error {
        using std::runtime_error::runtime_error;
    };
    Py_InitializeEx(0);
    pyasio::register_exception_translator([](const std::exception_ptr& e) {
        try {
            std::rethrow_exception(e);
        } catch (const local_failure& f) {
            PyErr_SetString(PyExc_KeyError, f.what());
        }
    });
    Py_FinalizeEx();
    Py_InitializeEx(0);
    pyasio::translate_exception(std::make_exception_ptr(local_failure("later")));
    check(PyErr_ExceptionMatches(PyExc_RuntimeError) != 0,
          "the next interpreter translates with its own registry (no translator of the last)");
    PyErr_Clear();
    Py_FinalizeEx();
    std::printf("%d failed\n", failures);
    return failures == 0 ? 0 : 1;
}

int main() {
    try {
        return run();
    } catch (const std::exception& e) {
        std::printf("FAILED: unexpected exception: %s\n", e.what());
        return 1;
    }
}
