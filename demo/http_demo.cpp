// SPDX-License-Identifier: BSL-1.0
// pyasio's demo: a C++ Asio HTTP/1.1 server (keep-alive, 127.0.0.1, an ephemeral port) whose
// request handler is a Python `async def handle(request)` from demo/handler.py, a file you can
// edit. A C++ load generator in the same program sends a fixed number of requests over many
// connections and checks every response. The same handlers are then served by a pure-Python
// asyncio.start_server server (demo/asyncio_server.py), measured by the same load generator in
// the same run. The second handler, handle_awaiting_cpp, awaits C++ (native.crc32, computed on
// an Asio runtime thread) from inside the Python handler: both directions in one request.
//
// Threads: Python's event loop runs on the main thread (pyasio::run); the C++ server runs on the
// pyasio runtime's threads and never takes the GIL (async_function makes the handler's call,
// and the conversions, on the loop thread); the load generator has a thread of its own.
//
// Usage: http_demo [--handler FILE] [--requests N] [--connections N] [--threads N]
//                  [--timeout S] [--uvloop]
// --threads: the Asio runtime's threads (by default the cores but two, at least one);
// --timeout: the seconds a run may take (30), after which its open connections are closed and
// what is missing counts as errors.
// Exits 0 only when every response of every run was correct.
#include <pyasio.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#ifndef PYASIO_DEMO_DIR
#define PYASIO_DEMO_DIR "demo"
#endif

namespace {

using asio::use_awaitable;
using asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

// CRC-32 (IEEE 802.3): the C++ work that handle_awaiting_cpp awaits, and the load generator's
// check of its answer.
std::uint32_t crc32(std::span<const std::byte> data) {
    static const std::array<std::uint32_t, 256> table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k)
                c = (c & 1) != 0 ? 0xEDB88320U ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    std::uint32_t c = 0xFFFFFFFFU;
    for (std::byte b : data)
        c = table[(c ^ static_cast<std::uint32_t>(b)) & 0xFFU] ^ (c >> 8);
    return c ^ 0xFFFFFFFFU;
}

// native.crc32(data: bytes) -> awaitable int: Python awaits C++ work on the runtime.
PyObject* native_crc32(PyObject*, PyObject* arg) {
    return pyasio::entry_point([&] {
        auto data = pyasio::from_python<std::vector<std::byte>>(pyasio::handle(arg));
        return pyasio::future_into_py([data = std::move(data)]() -> asio::awaitable<std::uint32_t> {
            co_return crc32(data);
        });
    });
}

PyMethodDef native_methods[] = {
    {"crc32", native_crc32, METH_O, "CRC-32 of bytes, computed on an Asio runtime thread."},
    {nullptr, nullptr, 0, nullptr}};
PyModuleDef native_module = {PyModuleDef_HEAD_INIT,
                             "native",
                             "The demo's C++ module",
                             -1,
                             native_methods,
                             nullptr,
                             nullptr,
                             nullptr,
                             nullptr};
PyObject* init_native() {
    return PyModule_Create(&native_module);
}

// A request as the handler sees it, and its (status, body) answer.
struct http_request {
    std::string method, path, query, body;
    std::map<std::string, std::string> headers;
};
struct http_response {
    int status = 500;
    std::string body;
};

} // namespace

// The customization point: how the two types cross into and out of Python. Both run on the
// loop thread, with the GIL, because async_function and into_future<T> convert there.
template <> struct pyasio::converter<http_request> {
    static object to_python(const http_request& r) {
        object make = getattr(import("types"), "SimpleNamespace");
        return call(make, kwarg("method", r.method), kwarg("path", r.path), kwarg("query", r.query),
                    kwarg("headers", r.headers), kwarg("body", std::as_bytes(std::span(r.body))));
    }
};
template <> struct pyasio::converter<http_response> {
    static http_response from_python(handle h) {
        if (!PyTuple_Check(h.ptr()) || PyTuple_GET_SIZE(h.ptr()) != 2)
            throw type_error("the handler must return (status, body), not " + repr(h));
        auto [status, body] = pyasio::from_python<std::tuple<int, object>>(h);
        if (PyBytes_Check(body.ptr()))
            return {status, std::string(PyBytes_AS_STRING(body.ptr()),
                                        static_cast<std::size_t>(PyBytes_GET_SIZE(body.ptr())))};
        return {status, pyasio::from_python<std::string>(body)};
    }
};

namespace {

// --- HTTP/1.1, the little the demo needs -------------------------------------------------------

constexpr std::size_t max_head = std::size_t{64} * 1024;

struct bad_request : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// `s` without the characters of `chars` at either end (by default: spaces and tabs).
std::string_view trim(std::string_view s, std::string_view chars = " \t") {
    std::size_t first = s.find_first_not_of(chars);
    if (first == std::string_view::npos)
        return {};
    return s.substr(first, s.find_last_not_of(chars) - first + 1);
}

std::size_t parse_size(std::string_view s, const char* what) {
    std::size_t n = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || end != s.data() + s.size())
        throw bad_request(std::string("bad ") + what + ": " + std::string(s));
    return n;
}

// The header lines after the first one, as name (lower case) -> value.
std::map<std::string, std::string> parse_headers(std::string_view lines) {
    std::map<std::string, std::string> headers;
    while (!lines.empty()) {
        std::size_t eol = lines.find("\r\n");
        std::string_view line = lines.substr(0, eol);
        lines.remove_prefix(eol == std::string_view::npos ? lines.size() : eol + 2);
        if (line.empty())
            continue;
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos)
            throw bad_request("a header line without ':'");
        headers[lower(trim(line.substr(0, colon)))] = std::string(trim(line.substr(colon + 1)));
    }
    return headers;
}

// Reads a head ending in "\r\n\r\n" and then `Content-Length` bytes into buf (which keeps what
// follows). Returns the head's size, 0 at a clean end of the connection.
asio::awaitable<std::size_t> read_message(tcp::socket& socket, std::string& buf,
                                          std::map<std::string, std::string>& headers,
                                          std::string& body) {
    asio::error_code ec;
    std::size_t head =
        co_await asio::async_read_until(socket, asio::dynamic_buffer(buf, max_head), "\r\n\r\n",
                                        asio::redirect_error(use_awaitable, ec));
    if (ec == asio::error::eof && buf.empty())
        co_return 0;
    if (ec == asio::error::not_found)
        throw bad_request("the head is larger than 64 KiB");
    if (ec)
        throw std::system_error(ec);
    std::string_view text(buf.data(), head - 2);
    headers = parse_headers(text.substr(text.find("\r\n") + 2));
    auto length = headers.find("content-length");
    std::size_t n = length == headers.end() ? 0 : parse_size(length->second, "Content-Length");
    if (buf.size() < head + n)
        co_await asio::async_read(socket, asio::dynamic_buffer(buf),
                                  asio::transfer_exactly(head + n - buf.size()), use_awaitable);
    body.assign(buf, head, n);
    co_return head;
}

const char* reason(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 500:
        return "Internal Server Error";
    default:
        return "Status";
    }
}

std::string format_response(const http_response& r) {
    char head[160];
    int n = std::snprintf(head, sizeof head,
                          "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          r.status, reason(r.status), r.body.size());
    return std::string(head, static_cast<std::size_t>(n)) + r.body;
}

// --- the C++ server ----------------------------------------------------------------------------

std::atomic<int> open_connections{0};

// One keep-alive connection: read a request, await the Python handler, write its answer.
asio::awaitable<void> serve_connection(tcp::socket socket, pyasio::async_function handler) {
    ++open_connections;
    std::string buf;
    try {
        for (;;) {
            http_request request;
            std::size_t head = co_await read_message(socket, buf, request.headers, request.body);
            if (head == 0)
                break;
            std::string_view line(buf.data(), buf.find("\r\n"));
            std::size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
            if (sp1 == std::string_view::npos || sp2 == sp1)
                throw bad_request("a request line is METHOD TARGET HTTP/1.1");
            request.method = line.substr(0, sp1);
            std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
            std::size_t q = target.find('?');
            request.path = target.substr(0, q);
            request.query = q == std::string_view::npos ? "" : target.substr(q + 1);
            buf.erase(0, head + request.body.size());
            bool close = lower(request.headers["connection"]) == "close";

            http_response response;
            try {
                // The call handler(request) is made on the loop thread; this thread waits
                // without the GIL, and the answer is converted to http_response there too.
                response = co_await pyasio::into_future<http_response>(handler(std::move(request)));
            } catch (const pyasio::python_error& e) {
                response = {500, std::string("the handler raised ") + e.what() + "\n"};
            } catch (const pyasio::type_error& e) {
                response = {500, std::string(e.what()) + "\n"};
            }
            std::string out = format_response(response);
            co_await asio::async_write(socket, asio::buffer(out), use_awaitable);
            if (close)
                break;
        }
    } catch (const bad_request& e) {
        std::string out = format_response({400, std::string(e.what()) + "\n"});
        asio::error_code ignored;
        asio::write(socket, asio::buffer(out), ignored);
    } catch (const std::system_error&) {
        // the peer went away: this connection ends
    }
    --open_connections;
}

asio::awaitable<void> accept_connections(tcp::acceptor& acceptor, pyasio::async_function handler,
                                         asio::any_io_executor ex) {
    for (;;) {
        // the acceptor is on a strand; each connection runs on the runtime's threads
        tcp::socket socket = co_await acceptor.async_accept(ex, use_awaitable);
        socket.set_option(tcp::no_delay(true));
        asio::co_spawn(ex, serve_connection(std::move(socket), handler), asio::detached);
    }
}

// --- the load generator ------------------------------------------------------------------------

struct load_plan {
    unsigned short port = 0;
    std::size_t requests = 0, connections = 0;
    bool expect_crc = false;          // the body must also hold crc32(name) in hex
    std::chrono::seconds timeout{30}; // then the connections still open are closed
};

struct load_result {
    std::size_t requests = 0, correct = 0;
    std::vector<double> latencies_ms;
    double seconds = 0;
    std::string first_error;
};

struct load_state {
    load_plan plan;
    load_result result;
    std::size_t next = 0, running = 0;
    asio::steady_timer all_done;    // cancelled when the last client is done
    std::set<tcp::socket*> sockets; // the clients' open connections
    void error(std::string what) {
        if (result.first_error.empty())
            result.first_error = std::move(what);
    }
};

// Checks one response: status 200, a body that holds the name (and its CRC-32 when asked).
std::string check_response(const load_plan& plan, const std::string& name,
                           std::string_view status_line, const std::string& body) {
    if (status_line.substr(0, 13) != "HTTP/1.1 200 ")
        return std::string(status_line) + ": " + std::string(trim(body, "\r\n"));
    if (body.find(name) == std::string::npos)
        return "the body lacks the name " + name + ": " + std::string(trim(body, "\r\n"));
    if (plan.expect_crc) {
        char hex[16];
        std::snprintf(hex, sizeof hex, "%08x", crc32(std::as_bytes(std::span(name))));
        if (body.find(hex) == std::string::npos)
            return "the body lacks crc32(" + name + ") = " + hex + ": " +
                   std::string(trim(body, "\r\n"));
    }
    return {};
}

// One client connection: sends requests one after the other (keep-alive) until all are sent.
asio::awaitable<void> client(load_state& st, std::size_t id) {
    try {
        tcp::socket socket(co_await asio::this_coro::executor);
        st.sockets.insert(&socket);
        struct forget {
            load_state& st;
            tcp::socket* socket;
            ~forget() { st.sockets.erase(socket); }
        } forget_at_exit{st, &socket};
        co_await socket.async_connect({asio::ip::address_v4::loopback(), st.plan.port},
                                      use_awaitable);
        socket.set_option(tcp::no_delay(true));
        std::string buf, body;
        std::map<std::string, std::string> headers;
        while (st.next < st.plan.requests) {
            std::string name = "c" + std::to_string(id) + "-" + std::to_string(st.next++);
            std::string request =
                "GET /hello?name=" + name + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
            auto start = clock_type::now();
            co_await asio::async_write(socket, asio::buffer(request), use_awaitable);
            std::size_t head = co_await read_message(socket, buf, headers, body);
            if (head == 0)
                throw bad_request("the server closed the connection");
            st.result.latencies_ms.push_back(
                std::chrono::duration<double, std::milli>(clock_type::now() - start).count());
            ++st.result.requests;
            std::string problem =
                check_response(st.plan, name, std::string_view(buf.data(), buf.find("\r\n")), body);
            if (problem.empty())
                ++st.result.correct;
            else
                st.error(name.append(": ").append(problem));
            buf.erase(0, head + body.size());
        }
    } catch (const std::exception& e) {
        st.error("connection " + std::to_string(id) + ": " + e.what());
    }
    if (--st.running == 0)
        st.all_done.cancel();
}

// The whole load, on the load generator's own single-threaded io_context.
asio::awaitable<load_result> generate_load(load_plan plan) {
    auto ex = co_await asio::this_coro::executor;
    load_state st{plan, {}, 0, plan.connections, asio::steady_timer(ex), {}};
    st.result.latencies_ms.reserve(plan.requests);
    st.all_done.expires_at(clock_type::time_point::max());
    auto start = clock_type::now();
    for (std::size_t i = 0; i < plan.connections; ++i)
        asio::co_spawn(ex, client(st, i), asio::detached);
    using namespace asio::experimental::awaitable_operators;
    asio::error_code ec;
    asio::steady_timer deadline(ex, plan.timeout);
    auto first = co_await (st.all_done.async_wait(asio::redirect_error(use_awaitable, ec)) ||
                           deadline.async_wait(use_awaitable));
    if (first.index() == 1) { // a handler that does not answer: the demo ends all the same
        st.error("no response within " + std::to_string(plan.timeout.count()) + " s (--timeout)");
        for (tcp::socket* socket : st.sockets)
            socket->close(ec);
        if (st.running > 0)
            co_await st.all_done.async_wait(asio::redirect_error(use_awaitable, ec));
    }
    st.result.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    co_return std::move(st.result);
}

// A thread running the load generator's io_context for the whole demo.
class load_thread {
public:
    load_thread() : work_(io_.get_executor()), thread_([this] { io_.run(); }) {}
    load_thread(const load_thread&) = delete;
    load_thread& operator=(const load_thread&) = delete;
    ~load_thread() {
        work_.reset();
        thread_.join();
    }
    asio::awaitable<load_result> run(load_plan plan) {
        co_return co_await asio::co_spawn(io_, generate_load(plan), use_awaitable);
    }

private:
    asio::io_context io_{1};
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    std::thread thread_;
};

// --- the runs ----------------------------------------------------------------------------------

struct demo_options {
    std::string handler_file = PYASIO_DEMO_DIR "/handler.py";
    std::size_t requests = 20000, connections = 64, threads = 0, timeout = 30;
    bool uvloop = false;
};

struct row {
    std::string server, handler;
    load_result result;
};

// Serves `handler` with the C++ server while the load runs; the acceptor closes at the end.
asio::awaitable<load_result> run_cpp_server(load_thread& load,
                                            const pyasio::async_function& handler, load_plan plan) {
    using namespace asio::experimental::awaitable_operators;
    auto ex = co_await asio::this_coro::executor;
    tcp::acceptor acceptor(asio::make_strand(ex), {asio::ip::address_v4::loopback(), 0});
    plan.port = acceptor.local_endpoint().port();
    // `||`: when the load is done, accepting is cancelled.
    auto done = co_await (accept_connections(acceptor, handler, ex) || load.run(plan));
    // the clients have closed their connections; wait (up to a second) until the server has
    // seen it
    asio::steady_timer timer(ex);
    for (int i = 0; i < 1000 && open_connections > 0; ++i) { // (a handler may never answer)
        timer.expires_after(std::chrono::milliseconds(1));
        co_await timer.async_wait(use_awaitable);
    }
    co_return std::get<1>(std::move(done));
}

// The same with the pure-Python server of asyncio_server.py.
asio::awaitable<load_result> run_python_server(load_thread& load,
                                               const pyasio::async_function& serve,
                                               const pyasio::async_function& handler,
                                               const pyasio::async_function& stop, load_plan plan) {
    // serve(handler) on the loop thread: an async_function argument arrives as its callable
    auto [server, port] =
        co_await pyasio::into_future<std::tuple<pyasio::object, int>>(serve(handler));
    plan.port = static_cast<unsigned short>(port);
    load_result result = co_await load.run(plan);
    co_await pyasio::into_future<void>(stop(std::move(server)));
    co_return result;
}

void print_rows(const std::vector<row>& rows) {
    std::printf("\n  %-30s %-20s %9s %7s %8s %8s %9s\n", "server", "handler", "requests", "errors",
                "p50 ms", "p99 ms", "req/s");
    for (const row& r : rows) {
        std::vector<double> l = r.result.latencies_ms;
        std::sort(l.begin(), l.end());
        auto pct = [&](double p) {
            return l.empty()
                       ? 0.0
                       : l[std::min(l.size() - 1,
                                    static_cast<std::size_t>(p * static_cast<double>(l.size())))];
        };
        std::printf("  %-30s %-20s %9zu %7zu %8.2f %8.2f %9.0f\n", r.server.c_str(),
                    r.handler.c_str(), r.result.requests, r.result.requests - r.result.correct,
                    pct(0.50), pct(0.99),
                    static_cast<double>(r.result.requests) / r.result.seconds);
    }
}

asio::awaitable<int> demo(demo_options options) {
    static const char* handler_names[] = {"handle", "handle_awaiting_cpp"};
    std::vector<pyasio::async_function> handlers;
    std::optional<pyasio::async_function> serve, stop;
    {
        pyasio::gil_acquire gil; // a short GIL scope: never across a co_await
        pyasio::object run_path = pyasio::getattr(pyasio::import("runpy"), "run_path");
        pyasio::object user = pyasio::call(run_path, options.handler_file);
        pyasio::object ours = pyasio::call(run_path, PYASIO_DEMO_DIR "/asyncio_server.py");
        for (const char* name : handler_names) {
            PyObject* fn = PyDict_GetItemString(user.ptr(), name);
            if (fn == nullptr)
                throw std::runtime_error(options.handler_file + " defines no async def " + name +
                                         "(request)");
            handlers.emplace_back(pyasio::borrow(fn));
        }
        serve.emplace(pyasio::borrow(PyDict_GetItemString(ours.ptr(), "serve")));
        stop.emplace(pyasio::borrow(PyDict_GetItemString(ours.ptr(), "stop")));
    }
    std::printf("pyasio demo: %zu requests per run over %zu keep-alive connections; handlers from "
                "%s; Python's loop: %s; runtime threads: %zu\n",
                options.requests, options.connections, options.handler_file.c_str(),
                options.uvloop ? "uvloop" : "asyncio", pyasio::runtime_thread_count());
    std::fflush(stdout);

    load_thread load;
    std::vector<row> rows;
    for (std::size_t i = 0; i < handlers.size(); ++i) {
        load_plan plan{0, options.requests, options.connections, i == 1,
                       std::chrono::seconds(options.timeout)};
        // (each result in a statement of its own: g++ 12 mishandles a co_await inside a braced
        // initializer's temporaries)
        load_result cpp = co_await run_cpp_server(load, handlers[i], plan);
        rows.push_back({"C++ Asio server (pyasio)", handler_names[i], std::move(cpp)});
        load_result python = co_await run_python_server(load, *serve, handlers[i], *stop, plan);
        rows.push_back({"Python asyncio.start_server", handler_names[i], std::move(python)});
    }
    print_rows(rows);
    std::printf("\n");

    std::size_t wrong = 0;
    for (const row& r : rows) {
        std::size_t missing = options.requests - r.result.correct;
        wrong += missing;
        if (missing != 0)
            std::printf("%s, %s: %zu of %zu responses wrong or missing; the first: %s\n",
                        r.server.c_str(), r.handler.c_str(), missing, options.requests,
                        r.result.first_error.c_str());
    }
    if (wrong != 0) {
        std::printf("%zu responses wrong or missing: exit status 1\n", wrong);
        co_return 1;
    }
    for (std::size_t i = 0; i + 1 < rows.size(); i += 2) {
        auto rps = [](const row& r) {
            return static_cast<double>(r.result.requests) / r.result.seconds;
        };
        std::printf("%s: the C++ server answers %.2fx the requests per second of the Python one\n",
                    rows[i].handler.c_str(), rps(rows[i]) / rps(rows[i + 1]));
    }
    std::printf("all %zu responses correct\n", rows.size() * options.requests);
    co_return 0;
}

std::size_t count_argument(const char* flag, const char* value) {
    std::size_t n = 0;
    std::string_view s = value;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || end != s.data() + s.size() || n == 0)
        throw std::invalid_argument(std::string(flag) + " needs a positive number, not '" + value +
                                    "'");
    return n;
}

} // namespace

int main(int argc, char** argv) {
    demo_options options;
    try {
        for (int i = 1; i < argc; ++i) {
            std::string_view arg = argv[i];
            bool has_value = i + 1 < argc;
            if (arg == "--uvloop")
                options.uvloop = true;
            else if (arg == "--handler" && has_value)
                options.handler_file = argv[++i];
            else if (arg == "--requests" && has_value)
                options.requests = count_argument("--requests", argv[++i]);
            else if (arg == "--timeout" && has_value)
                options.timeout = count_argument("--timeout", argv[++i]);
            else if (arg == "--threads" && has_value)
                options.threads = count_argument("--threads", argv[++i]);
            else if (arg == "--connections" && has_value)
                options.connections = count_argument("--connections", argv[++i]);
            else
                throw std::invalid_argument("usage: http_demo [--handler FILE] [--requests N] "
                                            "[--connections N] [--threads N] "
                                            "[--timeout S] [--uvloop]");
        }
        pyasio::run_options run;
        run.modules = {{"native", init_native}};
        run.uvloop = options.uvloop;
        // The load generator and Python's loop each keep a core busy: by default the runtime
        // gets the others (at least one). More threads than cores only add context switches.
        unsigned cores = std::max(std::thread::hardware_concurrency(), 1U);
        run.runtime_threads = options.threads != 0 ? options.threads : std::max(cores, 3U) - 2;
        return pyasio::run(
            argc, argv, [options] { return demo(options); }, run);
    } catch (const pyasio::interrupted& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 130;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
