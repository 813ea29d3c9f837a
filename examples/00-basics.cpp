// SPDX-License-Identifier: BSL-1.0
// pyasio's foundation in one program that embeds Python: owned references, calls, conversions
// (with a user type), Python errors in C++ and C++ errors in Python, and the GIL.
#include <pyasio.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// A C++ type of our own, converted to and from a Python (name, price) tuple.
struct item {
    std::string name;
    double price;
};

template <> struct pyasio::converter<item> {
    static pyasio::object to_python(const item& i) {
        return pyasio::to_python(std::tuple(i.name, i.price));
    }
    static item from_python(pyasio::handle h) {
        auto [name, price] = pyasio::from_python<std::tuple<std::string, double>>(h);
        return {name, price};
    }
};

// A function Python can call: C++ exceptions become Python exceptions through entry_point.
PyObject* checked_price(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        item i = pyasio::from_python<item>(pyasio::handle(arg));
        if (i.price < 0)
            throw std::invalid_argument("price of " + i.name + " is negative");
        return i.price;
    });
}

void tour() {
    {
        // Call Python with C++ values; get C++ values back.
        pyasio::object sorted = pyasio::getattr(pyasio::import("builtins"), "sorted");
        auto names = pyasio::from_python<std::vector<std::string>>(
            pyasio::call(sorted, std::vector<std::string>{"pear", "apple", "fig"}));
        std::printf("sorted: %s %s %s\n", names[0].c_str(), names[1].c_str(), names[2].c_str());

        // A user type through the customization point.
        pyasio::object py_item = pyasio::to_python(item{"tea", 3.5});
        std::printf("item in Python: %s\n", pyasio::repr(py_item).c_str());

        // A Python exception arrives in C++ as pyasio::python_error.
        try {
            pyasio::call(pyasio::getattr(pyasio::import("builtins"), "int"), "twelve");
        } catch (const pyasio::python_error& e) {
            std::printf("caught in C++: %s\n", e.what());
        }

        // A C++ exception arrives in Python as the matching Python exception.
        static PyMethodDef def = {"checked_price", checked_price, METH_O, nullptr};
        pyasio::object fn = pyasio::steal(PyCFunction_New(&def, nullptr));
        pyasio::object globals = pyasio::steal(PyDict_New());
        PyDict_SetItemString(globals.ptr(), "checked_price", fn.ptr());
        pyasio::object result = pyasio::steal(
            PyRun_String("try:\n"
                         "    checked_price(('soap', -1.0))\n"
                         "except ValueError as e:\n"
                         "    print('caught in Python:', type(e).__name__, e, flush=True)\n",
                         Py_file_input, globals.ptr(), globals.ptr()));
        if (!result)
            throw pyasio::python_error::fetch();

        // Release the GIL while C++ threads work; a thread takes it only to touch Python.
        std::vector<pyasio::object> owned{pyasio::to_python(1), pyasio::to_python(2)};
        {
            pyasio::gil_release nogil;
            std::thread worker([&] {
                int sum = 0;
                {
                    pyasio::gil_acquire gil;
                    for (const auto& o : owned)
                        sum += pyasio::from_python<int>(o);
                }
                std::printf("sum from a C++ thread: %d\n", sum);
                owned.clear(); // no GIL here: the references are queued, not leaked
            });
            worker.join();
        }
        pyasio::release_pending();
    }
}

int main() {
    std::setvbuf(stdout, nullptr, _IONBF, 0); // C and Python output in the order written
    Py_InitializeEx(0);
    int status = 0;
    try {
        tour();
    } catch (const std::exception& e) { // describe it while the interpreter still runs
        std::printf("error: %s\n", e.what());
        status = 1;
    }
    Py_FinalizeEx();
    return status;
}
