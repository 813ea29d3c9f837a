// SPDX-License-Identifier: BSL-1.0
// Streams both ways, in a program that embeds Python with pyasio::run:
//   - C++ reads a Python async generator: pyasio::into_stream<T>, then co_await s.next() until it
//     gives an empty optional; an exception raised by the generator arrives at its item.
//   - Python reads a C++ producer with `async for`: pyasio::stream_into_py<T>(producer), where
//     the producer co_awaits writer.write(value) for each item.
//   - Python leaving early (break) cancels the C++ producer: its write throws operation_aborted.
#include <pyasio.hpp>

#include <asio/post.hpp>

#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <system_error>

namespace {

// native.squares(n): a stream of i * i for i in range(n), written by a C++ coroutine.
PyObject* squares(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        long n = pyasio::from_python<long>(pyasio::handle(arg));
        return pyasio::stream_into_py<long>(
            [n](pyasio::stream_writer<long> out) -> asio::awaitable<void> {
                for (long i = 0; i < n; ++i)
                    co_await out.write(i * i); // suspends while the buffer is full
            });
    });
}

// native.naturals(on_cancel): the endless stream 0, 1, 2, ... (at most 16 items ahead of the
// reader). When the reader leaves, the producer's write throws operation_aborted; the producer
// tells Python by calling on_cancel(text) on the loop's thread.
PyObject* naturals(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        pyasio::object on_cancel = pyasio::borrow(arg);
        pyasio::loop_executor loop = pyasio::loop_executor::current();
        return pyasio::stream_into_py<long>(
            [on_cancel = std::move(on_cancel),
             loop](pyasio::stream_writer<long> out) mutable -> asio::awaitable<void> {
                try {
                    for (long i = 0;; ++i)
                        co_await out.write(i);
                } catch (const std::system_error& e) {
                    if (e.code() == asio::error::operation_aborted)
                        asio::post(loop, [on_cancel = std::move(on_cancel)] {
                            pyasio::call(on_cancel, "write() threw operation_aborted");
                        });
                    throw;
                }
            },
            16);
    });
}

PyMethodDef native_methods[] = {
    {"squares", squares, METH_O, "squares(n): a stream of i * i for i in range(n)."},
    {"naturals", naturals, METH_O, "naturals(on_cancel): the stream 0, 1, 2, ..."},
    {nullptr, nullptr, 0, nullptr}};
PyModuleDef native_module = {PyModuleDef_HEAD_INIT,
                             "native",
                             "C++ for the embedded Python",
                             -1,
                             native_methods,
                             nullptr,
                             nullptr,
                             nullptr,
                             nullptr};
PyObject* init_native() {
    return PyModule_Create(&native_module);
}

// The Python side: in a real program, a module on sys.path.
const char* python_code = R"(
import asyncio
import native

async def tens(n, fail_at=None):
    for i in range(1, n + 1):
        await asyncio.sleep(0)
        if i == fail_at:
            raise ValueError(f"no item {i}")
        yield 10 * i

async def read_squares():
    squares = [x async for x in native.squares(6)]
    print("Python read from a C++ producer:", squares, flush=True)

async def read_until(last):
    cpp_saw = asyncio.get_running_loop().create_future()
    async for x in native.naturals(cpp_saw.set_result):
        if x == last:
            break
    print(f"Python read 0 to {x} from an endless C++ producer, then left with break", flush=True)
    print("Python: the C++ producer saw", await cpp_saw, flush=True)
)";

// The Python functions C++ calls: async_function hands each call to the loop's thread.
struct python_functions {
    pyasio::async_function tens, read_squares, read_until;
};

// Runs python_code in a fresh namespace and returns its functions. Takes the GIL.
python_functions load_python() {
    pyasio::gil_acquire gil;
    pyasio::object ns = pyasio::steal(PyDict_New());
    PyDict_SetItemString(ns.ptr(), "__builtins__", PyEval_GetBuiltins());
    pyasio::object done =
        pyasio::steal(PyRun_String(python_code, Py_file_input, ns.ptr(), ns.ptr()));
    if (!done)
        throw pyasio::python_error::fetch();
    auto get = [&](const char* name) {
        return pyasio::async_function(pyasio::borrow(PyDict_GetItemString(ns.ptr(), name)));
    };
    return {get("tens"), get("read_squares"), get("read_until")};
}

asio::awaitable<int> main_coroutine() {
    python_functions py = load_python();

    // C++ reads a Python async generator. tens(5) is called on the loop's thread at the first
    // next(); a task there then runs the generator ahead of this reader, converting each item to
    // int.
    pyasio::async_stream<int> s = pyasio::into_stream<int>(py.tens(5));
    std::string items;
    while (std::optional<int> item = co_await s.next())
        items += " " + std::to_string(*item);
    std::printf("C++ read from a Python async generator:%s\n", items.c_str());

    // An exception in the generator arrives after the items before it.
    pyasio::async_stream<int> failing = pyasio::into_stream<int>(py.tens(5, 3));
    items.clear();
    try {
        while (std::optional<int> item = co_await failing.next())
            items += " " + std::to_string(*item);
    } catch (const pyasio::python_error& e) {
        std::printf("C++ read%s, then caught pyasio::python_error: %s\n", items.c_str(), e.what());
    }

    // Python reads C++ producers with `async for`.
    co_await pyasio::into_future<void>(py.read_squares());
    co_await pyasio::into_future<void>(py.read_until(5));
    co_return 0;
}

} // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IONBF, 0); // C and Python output in the order written
    pyasio::run_options options;
    options.modules = {{"native", init_native}};
    try {
        return pyasio::run(argc, argv, main_coroutine, options);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
