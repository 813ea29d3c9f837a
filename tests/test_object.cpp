// SPDX-License-Identifier: BSL-1.0
#include "support.hpp"

#include <thread>
#include <vector>

using pyasio::borrow;
using pyasio::handle;
using pyasio::object;
using pyasio::steal;

namespace {
Py_ssize_t refcount(handle h) {
    return Py_REFCNT(h.ptr());
}

/// Reads Counted.released with the raw C API: no pyasio::object is dropped, so nothing drains
/// the release queue behind the test's back.
long released_so_far() {
    PyObject* main = PyImport_AddModule("__main__"); // borrowed
    PyObject* cls = PyObject_GetAttrString(main, "Counted");
    PyObject* n = PyObject_GetAttrString(cls, "released");
    long v = PyLong_AsLong(n);
    Py_DECREF(n);
    Py_DECREF(cls);
    return v;
}

std::vector<object> make_counted(int n) {
    test::exec("class Counted:\n"
               "    released = 0\n"
               "    def __del__(self):\n"
               "        Counted.released += 1\n");
    object cls = test::eval("Counted");
    std::vector<object> objects;
    objects.reserve(n);
    for (int i = 0; i < n; ++i)
        objects.push_back(pyasio::call(cls));
    return objects;
}
} // namespace

TEST_CASE("steal adopts a new reference, borrow takes one", "[object]") {
    PyObject* raw = PyList_New(0);
    REQUIRE(refcount(handle(raw)) == 1);
    {
        object owner = steal(raw);
        CHECK(refcount(owner) == 1);
        object second = borrow(raw);
        CHECK(refcount(owner) == 2);
        handle view(raw);
        CHECK(refcount(view) == 2); // a handle never changes the count
        Py_INCREF(raw);             // keep it alive past the scope to read the count afterwards
    }
    CHECK(refcount(handle(raw)) == 1);
    Py_DECREF(raw);
    CHECK_FALSE(steal(nullptr));
    CHECK_FALSE(borrow(nullptr));
}

TEST_CASE("copy increfs, move steals, release and reset", "[object]") {
    object a = steal(PyList_New(0));
    object b = a;
    CHECK(b.is(a));
    CHECK(refcount(a) == 2);
    object c = std::move(b);
    CHECK_FALSE(b); // NOLINT(bugprone-use-after-move): moved-from is empty by contract
    CHECK(refcount(a) == 2);
    PyObject* raw = c.release();
    CHECK_FALSE(c);
    CHECK(refcount(a) == 2);
    object d = steal(raw);
    d.reset();
    CHECK_FALSE(d);
    CHECK(refcount(a) == 1);
}

TEST_CASE("assignment installs the new pointer before dropping the old one", "[object]") {
    // The old value's __del__ looks at the holder: it must already see the new value.
    test::exec("class Peek:\n"
               "    seen = None\n"
               "    def __init__(self, probe): self.probe = probe\n"
               "    def __del__(self): Peek.seen = self.probe()\n");
    static object* holder = nullptr;
    static PyMethodDef probe_def = {
        "probe", [](PyObject*, PyObject*) -> PyObject* { return borrow(*holder).release(); },
        METH_NOARGS, nullptr};
    object probe = steal(PyCFunction_New(&probe_def, nullptr));
    object slot = pyasio::call(test::eval("Peek"), probe);
    holder = &slot;
    object replacement = steal(PyUnicode_FromString("new"));
    slot = replacement;
    CHECK(pyasio::str(test::eval("Peek.seen")) == "new");
    slot = object(slot); // self-assignment through a copy is harmless
    CHECK(slot.is(replacement));
    holder = nullptr;
}

TEST_CASE("objects dropped on a thread without the GIL are released by the next GIL holder",
          "[object][threads]") {
    constexpr int n = 100'000;
    std::vector<object> objects = make_counted(n);
    REQUIRE(released_so_far() == 0);
    {
        pyasio::gil_release nogil;
        std::thread([&] {
            REQUIRE_FALSE(pyasio::gil::held());
            objects.clear(); // must neither crash nor touch Python
        }).join();
    }
    // Back on the main thread with the GIL: nothing was released behind Python's back.
    CHECK(objects.empty());
    CHECK(released_so_far() == 0);
    pyasio::release_pending();
    CHECK(released_so_far() == n);
}

TEST_CASE("a gil_acquire on another thread releases what was queued", "[object][threads]") {
    constexpr int n = 1000;
    std::vector<object> objects = make_counted(n);
    {
        pyasio::gil_release nogil;
        std::thread([&] { objects.clear(); }).join();
        std::thread([&] {
            pyasio::gil_acquire gil; // the library holds the GIL: the queue is drained here
        }).join();
    }
    CHECK(released_so_far() == n);
}

TEST_CASE("getattr, hasattr, setattr, import, str, repr", "[object]") {
    object os_path = pyasio::import("os.path");
    object join = pyasio::getattr(os_path, "join");
    CHECK(pyasio::str(pyasio::call(join, "a", "b")) == "a/b");
    CHECK(pyasio::hasattr(os_path, "join"));
    CHECK_FALSE(pyasio::hasattr(os_path, "no_such_name"));
    test::exec("class Box: pass\nbox = Box()\n");
    object box = test::eval("box");
    pyasio::setattr(box, "value", 42);
    CHECK(pyasio::from_python<int>(pyasio::getattr(box, "value")) == 42);
    CHECK(pyasio::repr(pyasio::to_python("x")) == "'x'");

    auto missing = test::python_error_message(PyExc_AttributeError,
                                              [&] { (void)pyasio::getattr(box, "nope"); });
    CHECK(missing.find("nope") != std::string::npos);
    test::python_error_message(PyExc_ModuleNotFoundError,
                               [] { (void)pyasio::import("no_such_module_xyz"); });
    // A property that raises something other than AttributeError is not swallowed by hasattr.
    test::exec("class Bad:\n    @property\n    def boom(self): raise KeyError('k')\n");
    test::python_error_message(PyExc_KeyError,
                               [] { (void)pyasio::hasattr(test::eval("Bad()"), "boom"); });
}

TEST_CASE("call and call_method convert arguments and raise Python errors", "[object]") {
    test::exec("def describe(*args, **kw):\n"
               "    return ','.join(type(a).__name__ for a in args) + '|' + \\\n"
               "        ','.join(f'{k}={v!r}' for k, v in sorted(kw.items()))\n");
    object describe = test::eval("describe");
    CHECK(pyasio::str(pyasio::call(describe)) == "|");
    CHECK(pyasio::str(pyasio::call(describe, 1, 2.5, "s", true, nullptr, std::vector<int>{1})) ==
          "int,float,str,bool,NoneType,list|");
    std::string sep = ";";
    CHECK(pyasio::str(pyasio::call(describe, 1, pyasio::kwarg("sep", sep),
                                   pyasio::kwarg("end", std::optional<int>()))) ==
          "int|end=None,sep=';'");
    CHECK(pyasio::str(pyasio::call(describe, pyasio::kwarg("only", 3))) == "|only=3");

    object text = pyasio::to_python("hello");
    CHECK(pyasio::str(pyasio::call_method(text, "upper")) == "HELLO");
    CHECK(pyasio::str(pyasio::call_method(text, "replace", "l", "L")) == "heLLo");
    object list = steal(PyList_New(0));
    pyasio::call_method(list, "append", 7);
    CHECK(pyasio::from_python<std::vector<int>>(list) == std::vector<int>{7});
    CHECK(pyasio::str(pyasio::call_method(pyasio::to_python(","), "join",
                                          std::vector<std::string>{"a", "b"})) == "a,b");
    object sorted = steal(PyList_New(0));
    for (int v : {1, 3, 2})
        pyasio::call_method(sorted, "append", v);
    pyasio::call_method(sorted, "sort", pyasio::kwarg("reverse", true));
    CHECK(pyasio::repr(sorted) == "[3, 2, 1]");
    auto unexpected = test::python_error_message(PyExc_TypeError, [&] {
        (void)pyasio::call_method(sorted, "sort", pyasio::kwarg("no_such_keyword", 1));
    });
    CHECK(unexpected.find("no_such_keyword") != std::string::npos);

    auto msg = test::python_error_message(PyExc_TypeError,
                                          [&] { (void)pyasio::call(pyasio::to_python(3)); });
    CHECK(msg.find("not callable") != std::string::npos);
    test::python_error_message(PyExc_AttributeError,
                               [&] { (void)pyasio::call_method(text, "no_such_method"); });
    test::exec("def fails(x): raise ValueError(f'bad {x}')\n");
    CHECK(test::python_error_message(
              PyExc_ValueError, [] { (void)pyasio::call(test::eval("fails"), 5); }) == "bad 5");
}
