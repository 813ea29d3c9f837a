// SPDX-License-Identifier: BSL-1.0
#include "support.hpp"

#include <asio/error.hpp>

#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <thread>

using pyasio::handle;
using pyasio::object;
using pyasio::python_error;

namespace {
python_error raised_by(const std::string& statement) {
    try {
        test::exec(statement);
    } catch (const python_error& e) {
        return e;
    }
    throw std::logic_error("the statement raised nothing: " + statement);
}

/// A function Python can call: throws the C++ exception its argument names.
PyObject* thrower(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&]() -> object {
        std::string kind = pyasio::from_python<std::string>(handle(arg));
        if (kind == "bad_alloc")
            throw std::bad_alloc();
        if (kind == "invalid_argument")
            throw std::invalid_argument("bad argument");
        if (kind == "domain_error")
            throw std::domain_error("outside the domain");
        if (kind == "out_of_range")
            throw std::out_of_range("index 7 past the end");
        if (kind == "overflow_error")
            throw std::overflow_error("too big");
        if (kind == "system_error")
            throw std::system_error(ECONNREFUSED, std::system_category(), "connect");
        if (kind == "generic_error")
            throw std::system_error(std::make_error_code(std::errc::timed_out), "wait");
        if (kind == "asio_eof")
            throw std::system_error(asio::error::eof, "read");
        if (kind == "runtime_error")
            throw std::runtime_error("plain failure");
        if (kind == "bad_utf8")
            throw std::runtime_error("bad \xff byte");
        if (kind == "int")
            throw 42;
        return pyasio::to_python(kind);
    });
}

/// Calls its argument and returns the result: Python exceptions pass through C++.
PyObject* call_through(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] { return pyasio::call(handle(arg)); });
}

PyMethodDef thrower_def = {"thrower", thrower, METH_O, nullptr};
PyMethodDef call_through_def = {"call_through", call_through, METH_O, nullptr};

/// Calls thrower(kind) from Python; returns "Type|str(e)|errno".
std::string outcome(const char* kind) {
    object f = pyasio::steal(PyCFunction_New(&thrower_def, nullptr));
    object d = pyasio::borrow(PyModule_GetDict(pyasio::import("__main__").ptr()));
    PyDict_SetItemString(d.ptr(), "thrower", f.ptr());
    test::exec(std::string("try:\n"
                           "    thrower('") +
               kind +
               "')\n"
               "    outcome = 'no exception'\n"
               "except BaseException as e:\n"
               "    outcome = f\"{type(e).__name__}|{e}|{getattr(e, 'errno', '-')}\"\n");
    return pyasio::str(test::eval("outcome"));
}
} // namespace

TEST_CASE("python_error keeps type, value and traceback", "[error]") {
    test::exec("def inner():\n    raise ValueError('bad value')\n");
    python_error e = raised_by("inner()");
    CHECK(std::string(e.what()) == "ValueError: bad value");
    CHECK(e.type().is(handle(PyExc_ValueError)));
    CHECK(PyObject_IsInstance(e.value().ptr(), PyExc_ValueError) == 1);
    REQUIRE(e.traceback());
    CHECK(PyTraceBack_Check(e.traceback().ptr()));
    CHECK(PyErr_Occurred() == nullptr); // fetching cleared the indicator
    // The innermost frame is inner(): the traceback goes all the way down.
    object tb = pyasio::borrow(e.traceback());
    while (pyasio::hasattr(tb, "tb_next") && !pyasio::getattr(tb, "tb_next").is_none())
        tb = pyasio::getattr(tb, "tb_next");
    CHECK(pyasio::str(pyasio::getattr(pyasio::getattr(pyasio::getattr(tb, "tb_frame"), "f_code"),
                                      "co_name")) == "inner");
}

TEST_CASE("python_error::what reads like the last line of a traceback", "[error]") {
    CHECK(std::string(raised_by("raise KeyError('k')").what()) == "KeyError: 'k'");
    CHECK(std::string(raised_by("raise RuntimeError()").what()) == "RuntimeError");
    test::exec("class LocalError(Exception): pass\n");
    CHECK(std::string(raised_by("raise LocalError('x')").what()) == "LocalError: x");
    test::exec(
        "import types, sys\n"
        "mod = types.ModuleType('pkg.mod')\n"
        "exec('class Failure(Exception):\\n    class Inner(Exception): pass', mod.__dict__)\n");
    CHECK(std::string(raised_by("raise mod.Failure('boom')").what()) == "pkg.mod.Failure: boom");
    CHECK(std::string(raised_by("raise mod.Failure.Inner('in')").what()) ==
          "pkg.mod.Failure.Inner: in");
    test::exec("class Unprintable(Exception):\n    def __str__(self): raise TypeError('no')\n");
    CHECK(std::string(raised_by("raise Unprintable()").what()) ==
          "Unprintable: <exception str() failed>");
    CHECK(PyErr_Occurred() == nullptr);
}

TEST_CASE("restore raises the same exception object again; matches follows except", "[error]") {
    python_error e = raised_by("raise IndexError('gone')");
    e.restore();
    REQUIRE(PyErr_Occurred() != nullptr);
    python_error again = python_error::fetch();
    CHECK(again.value().is(e.value()));
    CHECK(again.traceback().is(e.traceback()));
    e.restore(); // the python_error stays usable
    PyErr_Clear();

    CHECK(e.matches(handle(PyExc_IndexError)));
    CHECK(e.matches(handle(PyExc_LookupError))); // a base class
    CHECK_FALSE(e.matches(handle(PyExc_KeyError)));
    object either = test::eval("(KeyError, IndexError)");
    CHECK(e.matches(either));
}

TEST_CASE("python_error misuse", "[error]") {
    REQUIRE(PyErr_Occurred() == nullptr);
    python_error none = python_error::fetch(); // nothing raised: says so instead of crashing
    CHECK(none.matches(handle(PyExc_SystemError)));
    CHECK(std::string(none.what()).find("without setting an exception") != std::string::npos);
    // NOLINTNEXTLINE(bugprone-throw-keyword-missing): constructing it is what must throw
    CHECK_THROWS_AS(python_error(pyasio::to_python(3)), std::invalid_argument);
    // NOLINTNEXTLINE(bugprone-throw-keyword-missing)
    CHECK_THROWS_AS(python_error(object()), std::invalid_argument);
}

TEST_CASE("python_error travels across threads without the GIL", "[error][threads]") {
    python_error e = raised_by("raise ValueError('far away')");
    std::string seen, caught_text;
    {
        pyasio::gil_release nogil;
        std::thread([&, copy = e]() mutable {
            python_error moved = std::move(copy);
            seen = moved.what(); // takes the GIL itself to build the text
            try {
                throw python_error(moved);
            } catch (const python_error& caught) {
                caught_text = caught.what(); // copies share the built text
            }
        }).join(); // the copies die here, without the GIL: their references are queued
    }
    CHECK(seen == "ValueError: far away");
    CHECK(caught_text == seen);
    CHECK(e.matches(handle(PyExc_ValueError)));
    pyasio::release_pending();
}

TEST_CASE("the translator maps each C++ exception to its Python exception", "[error]") {
    CHECK(outcome("ok") == "no exception");
    CHECK(outcome("bad_alloc") == "MemoryError||-");
    CHECK(outcome("invalid_argument") == "ValueError|bad argument|-");
    CHECK(outcome("domain_error") == "ValueError|outside the domain|-");
    CHECK(outcome("out_of_range") == "IndexError|index 7 past the end|-");
    CHECK(outcome("overflow_error") == "OverflowError|too big|-");
    CHECK(outcome("system_error").rfind("ConnectionRefusedError|[Errno 111] connect: ", 0) == 0);
    CHECK(outcome("system_error").substr(outcome("system_error").size() - 4) == "|111");
    CHECK(outcome("generic_error").rfind("TimeoutError|[Errno 110] wait: ", 0) == 0);
    CHECK(outcome("asio_eof") == "OSError|read: End of file|None");
    CHECK(outcome("runtime_error") == "RuntimeError|plain failure|-");
    CHECK(outcome("bad_utf8") == "RuntimeError|bad \xef\xbf\xbd byte|-");
    CHECK(outcome("int").rfind("SystemError|pyasio: a C++ exception of unknown type", 0) == 0);
    // A Python-side conversion error inside the entry point is a TypeError for Python.
    object f = pyasio::steal(PyCFunction_New(&thrower_def, nullptr));
    CHECK(test::python_error_message(PyExc_TypeError, [&] { (void)pyasio::call(f, 5); }) ==
          "expected str, got int");
}

TEST_CASE("a Python exception thrown through C++ arrives as the original object", "[error]") {
    object f = pyasio::steal(PyCFunction_New(&call_through_def, nullptr));
    object d = pyasio::borrow(PyModule_GetDict(pyasio::import("__main__").ptr()));
    PyDict_SetItemString(d.ptr(), "call_through", f.ptr());
    test::exec("original = LookupError('original')\n"
               "def raiser(): raise original\n"
               "try:\n"
               "    call_through(raiser)\n"
               "except LookupError as e:\n"
               "    same = e is original\n"
               "    frames = []\n"
               "    tb = e.__traceback__\n"
               "    while tb: frames.append(tb.tb_frame.f_code.co_name); tb = tb.tb_next\n");
    CHECK(pyasio::from_python<bool>(test::eval("same")));
    CHECK(pyasio::from_python<std::vector<std::string>>(test::eval("frames")).back() == "raiser");
    CHECK(pyasio::str(pyasio::call(f, test::eval("lambda: 'through'"))) == "through");
}

namespace {
struct parse_failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct quiet_failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct unregistered_failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// The Python exception an entry point raises for `thrown` (rethrown inside it).
python_error raised_for(std::exception_ptr thrown) {
    PyObject* r = pyasio::entry_point([&]() -> object { std::rethrow_exception(thrown); });
    REQUIRE(r == nullptr);
    return python_error::fetch();
}
} // namespace

TEST_CASE("registered translators: the module's own exception classes", "[error]") {
    object module = pyasio::steal(PyModule_New("translated"));
    object parse =
        pyasio::register_exception<parse_failure>(module, "ParseError", PyExc_ValueError);
    CHECK(pyasio::getattr(module, "ParseError").ptr() == parse.ptr());
    CHECK(pyasio::str(pyasio::getattr(parse, "__module__")) == "translated");

    python_error e = raised_for(std::make_exception_ptr(parse_failure("line 3: bad token")));
    CHECK(e.type().ptr() == parse.ptr());
    CHECK(e.matches(handle(PyExc_ValueError)));
    CHECK(std::string(e.what()) == "translated.ParseError: line 3: bad token");

    // A C++ exception thrown with its cause nested (std::throw_with_nested): the cause's
    // translation is the Python exception's __cause__.
    std::exception_ptr chained;
    try {
        try {
            throw std::out_of_range("token 9 of 4");
        } catch (...) {
            std::throw_with_nested(parse_failure("line 4"));
        }
    } catch (...) {
        chained = std::current_exception();
    }
    python_error outer = raised_for(chained);
    CHECK(outer.type().ptr() == parse.ptr());
    object cause = pyasio::getattr(outer.value(), "__cause__");
    CHECK(pyasio::str(pyasio::getattr(pyasio::getattr(cause, "__class__"), "__name__")) ==
          "IndexError");
    CHECK(pyasio::str(cause) == "token 9 of 4");

    // A Python exception nested in its own handler is not made its own cause.
    python_error original = raised_by("raise KeyError('k')");
    std::exception_ptr self_nested;
    try {
        try {
            throw original;
        } catch (const python_error& caught) {
            std::throw_with_nested(caught);
        }
    } catch (...) {
        self_nested = std::current_exception();
    }
    python_error again = raised_for(self_nested);
    CHECK(again.value().ptr() == original.value().ptr());
    CHECK(pyasio::getattr(again.value(), "__cause__").is_none());

    // A hand-written translator: the last registered is tried first; one that does not know the
    // type lets it go on; the built-in mapping comes last.
    pyasio::register_exception_translator([](const std::exception_ptr& p) {
        try {
            std::rethrow_exception(p);
        } catch (const quiet_failure& q) {
            PyErr_SetString(PyExc_TimeoutError, q.what());
        }
    });
    CHECK(raised_for(std::make_exception_ptr(quiet_failure("slow")))
              .matches(handle(PyExc_TimeoutError)));
    CHECK(raised_for(std::make_exception_ptr(parse_failure("x"))).type().ptr() == parse.ptr());
    python_error plain = raised_for(std::make_exception_ptr(unregistered_failure("other")));
    CHECK(std::string(plain.what()) == "RuntimeError: other");
}

TEST_CASE("registered translators: misuse", "[error]") {
    auto message = [](auto&& f) -> std::string {
        try {
            f();
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "no std::invalid_argument";
    };
    CHECK(message([] {
              pyasio::register_exception_translator(nullptr);
          }).find("the translator is empty") != std::string::npos);
    object not_a_module = test::eval("object()");
    CHECK(message([&] {
              pyasio::register_exception<unregistered_failure>(not_a_module, "X");
          }).find("the first argument must be the module") != std::string::npos);
    struct silent : std::runtime_error {
        using std::runtime_error::runtime_error;
    };
    pyasio::register_exception_translator([](const std::exception_ptr& p) {
        try {
            std::rethrow_exception(p);
        } catch (const silent&) {
            // sets no error: pyasio says so
        }
    });
    python_error e = raised_for(std::make_exception_ptr(silent("quiet")));
    CHECK(e.matches(handle(PyExc_SystemError)));
    CHECK(std::string(e.what()).find("returned without setting a Python error") !=
          std::string::npos);
    CHECK(std::string(e.what()).find("the C++ exception was: quiet") != std::string::npos);
    // The base class may be given as a handle too.
    object module = pyasio::steal(PyModule_New("based"));
    object cls = pyasio::register_exception<silent>(module, "Quiet", handle(PyExc_LookupError));
    CHECK(PyObject_IsSubclass(cls.ptr(), PyExc_LookupError) == 1);
}
