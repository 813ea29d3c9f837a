// SPDX-License-Identifier: BSL-1.0
#ifndef PYASIO_DETAIL_LOOP_FAMILY_HPP
#define PYASIO_DETAIL_LOOP_FAMILY_HPP

/// @file
/// The event-loop seam: the few things pyasio asks of an event loop, for the two families it
/// speaks to, asyncio (with uvloop) and trio.

#include <pyasio/config.hpp>

#include <pyasio/convert.hpp>
#include <pyasio/detail/trio_future.hpp>
#include <pyasio/error.hpp>
#include <pyasio/object.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>

PYASIO_NAMESPACE_BEGIN

namespace detail {

// What pyasio asks of an event loop ("the loop" below is what running_loop() returns):
// - loop.add_reader(fd, drain): call drain() each time fd becomes readable (the GIL-free wake;
//   dropping drain tells pyasio the loop is gone), and loop.call_soon_threadsafe(fn, *args,
//   context=) and loop.call_later(delay, fn, *args, context=) for the call_soon_threadsafe wake;
// - loop.is_running(), loop.is_closed();
// - a future C++ completes (new_future), with set_result, set_exception, cancel, done,
//   cancelled, result, exception, add_done_callback(fn, context=), remove_done_callback, and
//   which Python awaits;
// - a task that runs a Python awaitable for C++ (start_task), a future that also has cancel();
// - whether an exception is the family's cancellation (is_cancellation).
// An asyncio loop is all of this as it is; asyncio.Future, asyncio.ensure_future and
// asyncio.CancelledError are the rest. For a trio run, pyasio makes one pyasio.TrioLoop
// (below), which does the same with trio's own primitives: a system task waiting with
// trio.lowlevel.wait_readable for the wake, TrioToken.run_sync_soon for callbacks, futures that
// park the awaiting task (wait_task_rescheduled) and system tasks in a cancel scope. Nothing
// outside this header asks which family a loop is of.

// NOTE: Python source, compiled once per interpreter and only once trio is imported: it is
// what trio code runs on each operation anyway (trio's primitives are Python functions).
inline constexpr const char* trio_source = R"PY(
import collections.abc
import contextvars
import inspect
import sys
import traceback
from asyncio import InvalidStateError

try:
    from sniffio import current_async_library_cvar as _library
except ImportError:  # NOTE: trio needs sniffio; anyio and httpx read it
    _library = None

import trio
from trio import lowlevel

_current_loop = lowlevel.RunVar("pyasio.TrioLoop")


def running_loop():
    """The pyasio.TrioLoop of the trio run in this thread, or None outside one."""
    try:
        token = lowlevel.current_trio_token()
    except RuntimeError:
        return None
    loop = _current_loop.get(None)
    if loop is None:
        loop = TrioLoop(token)
        try:
            lowlevel.spawn_system_task(loop._watch_the_end, name="pyasio: the end of the run")
        except RuntimeError:  # NOTE: the run is ending (its system nursery takes no more tasks)
            loop._closed = True
        _current_loop.set(loop)
    return loop


def _call(fn, args, context):
    # NOTE: a callback that raises inside run_sync_soon would end the run with
    # TrioInternalError: it is reported, as asyncio reports a callback's error, and the run goes on
    try:
        if context is None:
            fn(*args)
        else:
            context.run(fn, *args)
    except Exception:
        sys.stderr.write("pyasio: exception in callback %r under trio:\n" % (fn,))
        traceback.print_exc()


class _TimerHandle:
    __slots__ = ("_scope", "_cancelled")

    def __init__(self):
        self._scope = trio.CancelScope()
        self._cancelled = False

    def cancel(self):
        self._cancelled = True
        self._scope.cancel()

    def cancelled(self):
        return self._cancelled


class TrioLoop:
    """What pyasio asks of an event loop, for one trio run (one per run and per copy of pyasio:
    every extension module has its own; each takes the others' by _pyasio_seam)."""

    __slots__ = ("_token", "_closed", "__weakref__")
    _pyasio_seam = 1  # NOTE: the version of what pyasio asks of a loop (the methods below)

    def __init__(self, token):
        self._token = token
        self._closed = False

    def __repr__(self):
        return "<pyasio.TrioLoop %s>" % ("closed" if self._closed else "running")

    def is_running(self):
        return not self._closed

    def is_closed(self):
        return self._closed

    def _runs_here(self):
        """Whether this thread runs the trio run (pyasio's loop_runs_here)."""
        try:
            return lowlevel.current_trio_token() is self._token
        except RuntimeError:
            return False

    async def _watch_the_end(self):
        try:
            await trio.sleep_forever()
        finally:  # NOTE: the run's end cancels its system tasks
            self._closed = True

    def _check_open(self):
        if self._closed:
            raise RuntimeError("pyasio: this trio run has finished (its trio.run returned)")
        if not self._runs_here():
            raise RuntimeError("pyasio: a trio run's loop used outside the run's thread (trio "
                               "starts tasks only there); from another thread, name the loop "
                               "in pyasio::task_locals and let pyasio hand the work over")

    def add_reader(self, fd, callback):
        self._check_open()
        lowlevel.spawn_system_task(self._read, fd, callback, name="pyasio wake")

    async def _read(self, fd, callback):
        try:
            while True:
                await lowlevel.wait_readable(fd)
                callback()
        finally:
            # NOTE: only the end of the run cancels this task; dropping the callback tells
            # pyasio that the loop is gone
            self._closed = True
            del callback

    def call_soon_threadsafe(self, fn, *args, context=None):
        try:
            self._token.run_sync_soon(_call, fn, args, context)
        except trio.RunFinishedError:
            self._closed = True
            raise RuntimeError("pyasio: this trio run has finished (its trio.run returned)")

    call_soon = call_soon_threadsafe

    def call_later(self, delay, fn, *args, context=None):
        self._check_open()
        handle = _TimerHandle()
        lowlevel.spawn_system_task(self._later, handle, delay, fn, args, context,
                                   name="pyasio timer")
        return handle

    async def _later(self, handle, delay, fn, args, context):
        try:
            with handle._scope:
                await trio.sleep(delay)
                _call(fn, args, context)
        except trio.Cancelled:
            self._closed = True  # NOTE: not the handle's own cancel: the run ends
            raise
        finally:
            del fn, args

    def create_future(self):
        return TrioFuture(self)

    def create_task(self, awaitable, *, name=None, context=None):
        self._check_open()
        context = context if context is not None else contextvars.copy_context()
        if _library is not None:
            # NOTE: spawn_system_task names trio for sniffio in the spawner's context, not in
            # the one given, which may come from a trio worker thread (where it is None)
            context.run(_library.set, "trio")
        return _TrioTask(self, awaitable, context)


async def _run_main(start):
    return await start(running_loop())


def run(start):
    """trio.run of the awaitable that start(loop) returns, loop being the run's TrioLoop."""
    return trio.run(_run_main, start)


# NOTE: TrioFuture, what Python awaits for C++ work (and the base of _TrioTask), is a C type
# (detail/trio_future.hpp), set in this namespace before it runs
collections.abc.Coroutine.register(TrioFuture)


class _TrioTask(TrioFuture):
    """A Python awaitable that C++ awaits, run as a trio system task in a cancel scope."""

    __slots__ = ("_scope",)

    def __init__(self, loop, awaitable, context):
        super().__init__(loop)
        self._scope = trio.CancelScope()
        lowlevel.spawn_system_task(self._run, awaitable, context=context,
                                   name=getattr(awaitable, "__qualname__", "pyasio task"))

    def __repr__(self):
        state = "cancelled" if self.cancelled() else "finished" if self.done() else "pending"
        return "<pyasio task %s>" % state

    async def _run(self, awaitable):
        try:
            with self._scope:
                # NOTE: cancelled before its first step, the coroutine never runs (as asyncio)
                await lowlevel.checkpoint_if_cancelled()
                result = await awaitable
                TrioFuture.set_result(self, result)
                return
        except trio.Cancelled:  # NOTE: not our scope's: the run ends; trio needs it back
            if not self.done():
                TrioFuture.cancel(self, "the trio run ended")
            raise
        except BaseException as e:
            TrioFuture.set_exception(self, e)
            return
        finally:
            if inspect.iscoroutine(awaitable) and \
                    inspect.getcoroutinestate(awaitable) == inspect.CORO_CREATED:
                awaitable.close()  # never started: no "never awaited" warning
            del awaitable
        if not self.done():  # our scope caught its own cancellation
            TrioFuture.cancel(self)

    def cancel(self, msg=None):
        if self.done():
            return False
        self._scope.cancel()
        return True

    def set_result(self, result):
        raise InvalidStateError("a task's result is its coroutine's")

    set_exception = set_result
)PY";

/// The trio side of the seam, made once per interpreter on first use under trio.
struct trio_family {
    object ns = python_namespace(trio_source, "<pyasio trio>", with_trio_future());
    object running_loop = item("running_loop");
    object loop_type = item("TrioLoop");
    object cancelled = getattr(import("trio"), "Cancelled");
    object run = item("run");
    object closed = interned("_closed");
    object last_loop;             // a weak reference to the loop running_loop_of_any_family
    unsigned long last_thread{0}; // found last, and its thread

private:
    object item(const char* name) const { return checked(PyMapping_GetItemString(ns.ptr(), name)); }
    static object with_trio_future() {
        object globals = checked(PyDict_New());
        if (PyDict_SetItemString(
                globals.ptr(), "TrioFuture",
                reinterpret_cast<PyObject*>(per_interpreter<trio_future_types>().future)) < 0)
            throw_error_already_set();
        return globals;
    }
};

/// Both families, per interpreter: asyncio's names, and trio's once trio is used.
struct loop_families {
    object asyncio_running_loop = getattr(import("asyncio.events"), "_get_running_loop");
    object ensure_future = getattr(import("asyncio"), "ensure_future");
    object cancelled_error = getattr(import("asyncio"), "CancelledError");
    object abstract_loop = getattr(import("asyncio"), "AbstractEventLoop");
    object loop_keyword = to_python(std::tuple<const char*>("loop")); // kwnames: ("loop",)
    object coroutine_type = getattr(import("types"), "CoroutineType");
    object create_task = interned("create_task");
    std::unique_ptr<trio_family> trio; // once trio is used
};

/// Whether the module `name` was imported (not merely blocked: sys.modules[name] = None, as test
/// suites hide a package). GIL held.
inline bool imported(const char* name) {
    PyObject* modules = PySys_GetObject("modules"); // borrowed
    if (modules == nullptr || !PyDict_Check(modules))
        return false;
    PyObject* module = PyDict_GetItemString(modules, name); // borrowed; no KeyError made
    return module != nullptr && module != Py_None;
}

/// trio's side of the seam, made once (trio imported). GIL held.
inline trio_family& made_trio(loop_families& f) {
    if (!f.trio) {
        // NOTE: making it runs Python, during which another thread may make it too: keep one
        auto made = std::make_unique<trio_family>();
        if (!f.trio)
            f.trio = std::move(made);
    }
    return *f.trio;
}

/// The running loop of this thread: asyncio's, else that of the trio run in this thread (only
/// looked for once trio is imported), else an empty object. GIL held.
inline object running_loop_of_any_family() {
    loop_families& f = per_interpreter<loop_families>();
    object loop = call(f.asyncio_running_loop);
    if (!loop.is_none())
        return loop;
    if (!f.trio && !imported("trio"))
        return object();
    trio_family& trio = made_trio(f);
    // NOTE: a thread runs one trio run at a time, and the run's end closes its loop: the loop
    // found last stands while it lives, is open and this is its thread (no Python call). Held
    // weakly: a finished run's loop goes with the run (and its bridge with it).
    unsigned long thread = PyThread_get_thread_ident();
    if (trio.last_loop && trio.last_thread == thread) {
        loop = weak_target(trio.last_loop);
        if (loop && getattr(loop, trio.closed).ptr() == Py_False)
            return loop;
    }
    loop = call(trio.running_loop);
    if (loop.is_none())
        return object();
    trio.last_loop = checked(PyWeakref_NewRef(loop.ptr(), nullptr));
    trio.last_thread = thread;
    return loop;
}

/// trio's side of the seam, importing trio; std::runtime_error `what` + how to install it when
/// trio is not installed. GIL held.
inline trio_family& trio_imported(const char* what) {
    loop_families& f = per_interpreter<loop_families>();
    if (!f.trio) {
        object trio = steal(PyImport_ImportModule("trio"));
        if (!trio) {
            PyErr_Clear();
            throw std::runtime_error(std::string(what) +
                                     ", but trio is not installed for this Python (pip install "
                                     "trio; Debian: apt-get install python3-trio)");
        }
    }
    return made_trio(f);
}

/// The version of the seam this copy's TrioLoop speaks (its _pyasio_seam).
inline constexpr long trio_seam_version = 1;

/// Whether `loop` is a trio run's: this copy's pyasio.TrioLoop, or another copy's (each
/// extension module that vendors pyasio makes its own class) that speaks the same seam. GIL held.
inline bool is_trio_loop(handle loop) {
    const loop_families& f = per_interpreter<loop_families>();
    auto* type = Py_TYPE(loop.ptr());
    if (f.trio && reinterpret_cast<PyObject*>(type) == f.trio->loop_type.ptr())
        return true;
    // NOTE: an asyncio loop is told apart without running Python (its class derives from
    // AbstractEventLoop), so that the asyncio path pays no attribute lookup
    if (PyType_IsSubtype(type, reinterpret_cast<PyTypeObject*>(f.abstract_loop.ptr())) != 0 ||
        !imported("trio"))
        return false;
    object seam = steal(PyObject_GetAttrString(reinterpret_cast<PyObject*>(type), "_pyasio_seam"));
    if (!seam) {
        PyErr_Clear();
        return false;
    }
    if (PyLong_AsLong(seam.ptr()) != trio_seam_version) {
        PyErr_Clear();
        return false;
    }
    (void)trio_imported("pyasio: a trio run's loop");
    return true;
}

/// Whether `loop` runs on this thread now: the running loop is it (asyncio), or this thread runs
/// its trio run (whichever copy of pyasio made the TrioLoop). GIL held.
inline bool runs_here(handle loop, handle running) {
    if (running && running.ptr() == loop.ptr())
        return true;
    return running && is_trio_loop(loop) && call_method(loop, "_runs_here").ptr() == Py_True;
}

/// Whether `o` is an event loop: an asyncio.AbstractEventLoop, or a trio run's. GIL held.
inline bool is_event_loop(handle o) {
    if (is_trio_loop(o))
        return true;
    int is_loop =
        PyObject_IsInstance(o.ptr(), per_interpreter<loop_families>().abstract_loop.ptr());
    if (is_loop < 0)
        throw_error_already_set();
    return is_loop != 0;
}

/// A new future of `loop` that C++ completes: `asyncio_type(loop=loop)` on asyncio (pyasio.Future,
/// an asyncio.Future that is also a coroutine), a pyasio.TrioFuture on trio. GIL held.
inline object new_future(handle loop, handle asyncio_type) {
    const loop_families& f = per_interpreter<loop_families>();
    if (f.trio && Py_TYPE(loop.ptr()) == reinterpret_cast<PyTypeObject*>(f.trio->loop_type.ptr()))
        return new_trio_future(loop); // NOTE: this copy's: no Python call
    if (is_trio_loop(loop))
        return call_method(loop, "create_future");
    PyObject* args[] = {nullptr, loop.ptr()};
    return checked(vectorcall(asyncio_type.ptr(), args + 1, PY_VECTORCALL_ARGUMENTS_OFFSET,
                              per_interpreter<loop_families>().loop_keyword.ptr()));
}

/// The task that runs `awaitable` on `loop` for C++: asyncio.ensure_future(awaitable,
/// loop=loop) (a future is its own task), or a trio system task in a cancel scope. Runs in
/// the current context (a task copies it). Sets the Python error and returns null on failure
/// (into_future words asyncio's other-loop ValueError). GIL held.
inline object start_task(handle loop, handle awaitable) {
    if (is_trio_loop(loop))
        return steal(PyObject_CallMethod(loop.ptr(), "create_task", "O", awaitable.ptr()));
    const loop_families& f = per_interpreter<loop_families>();
    if (Py_TYPE(awaitable.ptr()) == reinterpret_cast<PyTypeObject*>(f.coroutine_type.ptr())) {
        // NOTE: what ensure_future does with a coroutine, without its isfuture() first (a
        // hasattr on the coroutine's type that fails: a formatted AttributeError per call),
        // closing the coroutine when the loop refuses it (RuntimeError: closed), as it does
#if PY_VERSION_HEX >= 0x03090000
        PyObject* args[] = {loop.ptr(), awaitable.ptr()};
        object task = steal(PyObject_VectorcallMethod(f.create_task.ptr(), args, 2, nullptr));
#else
        object task = steal(
            PyObject_CallMethodObjArgs(loop.ptr(), f.create_task.ptr(), awaitable.ptr(), nullptr));
#endif
        if (!task && PyErr_ExceptionMatches(PyExc_RuntimeError) != 0) {
            python_error refused = python_error::fetch();
            if (!steal(PyObject_CallMethod(awaitable.ptr(), "close", nullptr)))
                PyErr_Clear();
            refused.restore();
        }
        return task;
    }
    PyObject* args[] = {nullptr, awaitable.ptr(), loop.ptr()};
    return steal(vectorcall(f.ensure_future.ptr(), args + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                            f.loop_keyword.ptr()));
}

/// Whether `e` is a cancellation: asyncio.CancelledError, or trio.Cancelled once trio is used.
inline bool is_cancellation(const python_error& e) {
    const loop_families& f = per_interpreter<loop_families>();
    return e.matches(f.cancelled_error) || (f.trio && e.matches(f.trio->cancelled));
}

} // namespace detail
PYASIO_NAMESPACE_END

#endif // PYASIO_DETAIL_LOOP_FAMILY_HPP
