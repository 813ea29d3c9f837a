// SPDX-License-Identifier: BSL-1.0
// pyasio's demo: a C++ Asio HTTP/1.1 server (keep-alive, 127.0.0.1, an ephemeral port) whose
// request handler is a Python `async def handle(request)` from demo/handler.py, a file you can
// edit. A C++ load generator in the same program sends a fixed number of requests over many
// connections and checks every response. The same handlers are then served by a pure-Python
// asyncio.start_server server (demo/asyncio_server.py), measured by the same load generator in
// the same run. The second handler, handle_awaiting_cpp, awaits C++ (native.crc32, computed on
// an Asio runtime thread) from inside the Python handler: both directions in one request.
//
// With --serve PORT it measures nothing: it serves, for curl, a browser or a load generator
// such as wrk, the C++ server on 127.0.0.1:PORT and the Python one on PORT+1, until Ctrl-C
// (SIGINT) or SIGTERM. There each server routes by path: /crc to handle_awaiting_cpp, any other
// path to handle.
//
// Threads: Python's event loop runs on the main thread (pyasio::run); the C++ server runs on the
// pyasio runtime's threads and never takes the GIL (async_function makes the handler's call,
// and the conversions, on the loop thread); the load generator has a thread of its own.
//
// Usage: http_demo [--handler FILE] [--requests N] [--connections N] [--threads N]
//                  [--timeout S] [--uvloop]
//        http_demo --serve PORT [--handler FILE] [--threads N] [--uvloop]
// --threads: the Asio runtime's threads (by default the cores but two, at least one);
// --timeout: the seconds a run may take (30), after which its open connections are closed and
// what is missing counts as errors.
// Exits 0 only when every response of every run was correct; with --serve, 0 after Ctrl-C or
// SIGTERM, 1 when a server cannot listen.
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
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
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

// The handlers a server calls: the path /crc goes to `crc`, any other path to `plain`. (The
// measuring runs give one handler as both; --serve gives handle and handle_awaiting_cpp.)
struct routes {
    pyasio::async_function plain, crc;
    const pyasio::async_function& of(std::string_view path) const {
        return path == "/crc" ? crc : plain;
    }
};

// The C++ server's open connections, so that the end of a run or of --serve can end them.
class connection_set {
public:
    void add(tcp::socket& socket) {
        std::lock_guard<std::mutex> lock(mutex_);
        sockets_.emplace(&socket, socket.native_handle());
    }
    void remove(tcp::socket& socket) {
        std::lock_guard<std::mutex> lock(mutex_);
        sockets_.erase(&socket);
    }
    std::size_t size() {
        std::lock_guard<std::mutex> lock(mutex_);
        return sockets_.size();
    }
    // Shuts every open connection down: its pending read ends (end of file), its next write
    // fails, and its coroutine ends and closes its socket.
    // NOTE: shutdown(2) on the descriptor, not socket.close(): an Asio socket is not safe to use
    // from two threads at once, and its coroutine may be in an operation on a runtime thread;
    // shutdown touches only the kernel's socket. (A strand per connection would make close()
    // safe, at 7-10% of the requests per second.) The connection removes itself before its
    // socket closes, so no descriptor here is closed or reused meanwhile.
    void shut_down_all() {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto& [socket, descriptor] : sockets_)
            ::shutdown(descriptor, asio::socket_base::shutdown_both);
    }

private:
    std::mutex mutex_;
    std::map<tcp::socket*, tcp::socket::native_handle_type> sockets_;
};

connection_set open_connections;

// The executor the C++ server accepts and serves its connections on: the runtime's own.
// NOTE: not the demo's main coroutine's: pyasio::run runs main as future_into_py work, whose
// executor is that operation's strand, and connections spawned there would all share it (each
// step through the strand's lock, one thread at a time however many the runtime has). Their
// into_future calls find pyasio::run's loop as the default task locals.
asio::any_io_executor server_executor() {
    return pyasio::default_executor();
}

// Waits (up to `limit`) until the C++ server's connections have ended. A handler that never
// answers keeps its connection until the loop's end cancels it.
asio::awaitable<void> wait_for_connections_to_end(std::chrono::milliseconds limit) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (auto end = clock_type::now() + limit;
         open_connections.size() > 0 && clock_type::now() < end;) {
        timer.expires_after(std::chrono::milliseconds(1));
        co_await timer.async_wait(use_awaitable);
    }
}

// One keep-alive connection: read a request, await the Python handler, write its answer.
asio::awaitable<void> serve_connection(tcp::socket socket, routes handlers) {
    open_connections.add(socket);
    struct forget {
        tcp::socket& socket;
        ~forget() { open_connections.remove(socket); }
    } forget_at_exit{socket};
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
                const pyasio::async_function& handler = handlers.of(request.path);
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
        // the peer went away, or shut_down_all() ended the connection
    }
}

// Accepts until cancelled. A failed accept (a peer gone before it was accepted, no descriptor
// left) skips that connection: a long --serve outlives such moments.
asio::awaitable<void> accept_connections(tcp::acceptor& acceptor, routes handlers,
                                         asio::any_io_executor ex) {
    asio::steady_timer pause(ex);
    for (;;) {
        // the acceptor is on a strand; each connection runs on the runtime's threads
        asio::error_code ec;
        tcp::socket socket =
            co_await acceptor.async_accept(ex, asio::redirect_error(use_awaitable, ec));
        if (ec == asio::error::operation_aborted)
            co_return;
        if (ec) {
            pause.expires_after(std::chrono::milliseconds(10));
            co_await pause.async_wait(use_awaitable);
            continue;
        }
        socket.set_option(tcp::no_delay(true), ec);
        asio::co_spawn(ex, serve_connection(std::move(socket), handlers), asio::detached);
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
    unsigned short serve_port = 0; // --serve PORT; 0: measure instead
};

const char* const handler_names[] = {"handle", "handle_awaiting_cpp"};

// What the demo calls in Python: the user's two handlers, and asyncio_server.py's functions.
struct python_side {
    std::vector<pyasio::async_function> handlers; // handle, handle_awaiting_cpp
    std::optional<pyasio::async_function> serve, stop, stop_signals;
};

struct row {
    std::string server, handler;
    load_result result;
};

// Serves `handler` with the C++ server while the load runs; the acceptor closes at the end.
asio::awaitable<load_result> run_cpp_server(load_thread& load,
                                            const pyasio::async_function& handler, load_plan plan) {
    using namespace asio::experimental::awaitable_operators;
    asio::any_io_executor ex = server_executor();
    tcp::acceptor acceptor(asio::make_strand(ex), {asio::ip::address_v4::loopback(), 0});
    plan.port = acceptor.local_endpoint().port();
    // `||`: when the load is done, accepting is cancelled. (`both` is named: g++ 12 destroys a
    // braced temporary of a co_await's operand too early.)
    routes both{handler, handler};
    auto done = co_await (accept_connections(acceptor, both, ex) || load.run(plan));
    // the clients have closed their connections; wait (up to a second: a handler may never
    // answer) until the server has seen it
    co_await wait_for_connections_to_end(std::chrono::seconds(1));
    co_return std::get<1>(std::move(done));
}

// The same with the pure-Python server of asyncio_server.py.
asio::awaitable<load_result> run_python_server(load_thread& load,
                                               const pyasio::async_function& serve,
                                               const pyasio::async_function& handler,
                                               const pyasio::async_function& stop, load_plan plan) {
    // serve(handler, handler, 0) on the loop thread: an async_function argument arrives as its
    // callable
    auto [server, port] =
        co_await pyasio::into_future<std::tuple<pyasio::object, int>>(serve(handler, handler, 0));
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

// Loads the handlers from options.handler_file and asyncio_server.py's functions.
python_side load_python_side(const demo_options& options) {
    python_side py;
    pyasio::gil_acquire gil; // a short GIL scope: never across a co_await
    pyasio::object run_path = pyasio::getattr(pyasio::import("runpy"), "run_path");
    pyasio::object user = pyasio::call(run_path, options.handler_file);
    pyasio::object ours = pyasio::call(run_path, PYASIO_DEMO_DIR "/asyncio_server.py");
    for (const char* name : handler_names) {
        PyObject* fn = PyDict_GetItemString(user.ptr(), name);
        if (fn == nullptr)
            throw std::runtime_error(options.handler_file + " defines no async def " + name +
                                     "(request)");
        py.handlers.emplace_back(pyasio::borrow(fn));
    }
    py.serve.emplace(pyasio::borrow(PyDict_GetItemString(ours.ptr(), "serve")));
    py.stop.emplace(pyasio::borrow(PyDict_GetItemString(ours.ptr(), "stop")));
    py.stop_signals.emplace(pyasio::borrow(PyDict_GetItemString(ours.ptr(), "stop_signals")));
    return py;
}

// The one line --serve prints when a server cannot listen on `port`: what to do about it.
std::string cannot_listen(const char* server, unsigned port, int error, const std::string& why) {
    std::string what =
        std::string("the ") + server + " cannot listen on 127.0.0.1:" + std::to_string(port) +
        " (--serve PORT takes PORT for the C++ server and PORT+1 for the Python one): ";
    if (error == EADDRINUSE)
        return what + "port " + std::to_string(port) +
               " is in use; stop what uses it, or choose another PORT";
    if (error == EACCES)
        return what + "permission denied (ports below 1024 need root); choose a PORT from 1024 up";
    return what + why;
}

// The errno of a Python OSError (0 for another exception). Takes the GIL.
int os_error_number(const pyasio::python_error& e) {
    pyasio::gil_acquire gil;
    if (!e.matches(pyasio::handle(PyExc_OSError)))
        return 0;
    pyasio::object number = pyasio::getattr(e.value(), "errno");
    return PyLong_Check(number.ptr()) ? pyasio::from_python<int>(number) : 0;
}

// --serve: both servers, for curl, a browser or wrk, until Ctrl-C (SIGINT) or SIGTERM; then
// both close and the demo returns 0 (pyasio::run then closes the loop and shuts the runtime
// down).
asio::awaitable<int> serve_until_stopped(const demo_options& options, const python_side& py) {
    using namespace asio::experimental::awaitable_operators;
    asio::any_io_executor ex = server_executor();
    const unsigned port = options.serve_port;
    const routes handlers{py.handlers[0], py.handlers[1]};
    // From here on Ctrl-C and SIGTERM complete `stopped`. NOTE: before the servers listen, so
    // that a client that sees them listening may signal the end (the test does).
    pyasio::object stopped = co_await pyasio::into_future((*py.stop_signals)());

    tcp::acceptor acceptor(asio::make_strand(ex));
    try {
        // SO_REUSEADDR, as asyncio's start_server sets it: a port that the last run's
        // connections left in TIME_WAIT can be listened on again at once
        tcp::endpoint endpoint(asio::ip::address_v4::loopback(), static_cast<unsigned short>(port));
        acceptor.open(endpoint.protocol());
        acceptor.set_option(tcp::acceptor::reuse_address(true));
        acceptor.bind(endpoint);
        acceptor.listen();
    } catch (const std::system_error& e) {
        throw std::runtime_error(
            cannot_listen("C++ server", port, e.code().value(), e.code().message()));
    }
    std::optional<std::string> python_failed;
    pyasio::object served;
    try {
        auto started = co_await pyasio::into_future<std::tuple<pyasio::object, int>>(
            (*py.serve)(handlers.plain, handlers.crc, static_cast<int>(port + 1)));
        served = std::move(std::get<0>(started));
    } catch (const pyasio::python_error& e) {
        python_failed = cannot_listen("Python server", port + 1, os_error_number(e), e.what());
    }
    if (python_failed)
        throw std::runtime_error(*python_failed);

    std::printf("pyasio demo, serving until Ctrl-C (SIGINT) or SIGTERM; handlers from %s; "
                "Python's loop: %s; runtime threads: %zu\n\n",
                options.handler_file.c_str(), options.uvloop ? "uvloop" : "asyncio",
                pyasio::runtime_thread_count());
    std::printf("  C++ Asio server (pyasio)      http://127.0.0.1:%u/\n"
                "  Python asyncio.start_server   http://127.0.0.1:%u/\n\n",
                port, port + 1);
    std::printf("On both, /crc runs handle_awaiting_cpp (it awaits C++) and any other path runs "
                "handle:\n");
    for (unsigned p : {port, port + 1})
        for (std::size_t h = 0; h < 2; ++h)
            std::printf("  curl 'http://127.0.0.1:%u/%s?name=you'%s   %s server, %s\n", p,
                        h == 0 ? "hello" : "crc", h == 0 ? "" : "  ", p == port ? "C++" : "Python",
                        handler_names[h]);
    std::fflush(stdout);

    // `||`: the signal cancels accepting
    auto ended = co_await (accept_connections(acceptor, handlers, ex) ||
                           pyasio::into_future<std::string>(std::move(stopped)));
    acceptor.close();
    open_connections.shut_down_all();
    co_await pyasio::into_future<void>((*py.stop)(std::move(served)));
    // a handler that never answers keeps its connection until the loop's end cancels it
    co_await wait_for_connections_to_end(std::chrono::seconds(2));
    std::printf("\n%s: both servers closed\n",
                ended.index() == 1 ? std::get<1>(ended).c_str() : "stopped");
    co_return 0;
}

asio::awaitable<int> demo(demo_options options) {
    python_side py = load_python_side(options);
    if (options.serve_port != 0)
        co_return co_await serve_until_stopped(options, py);
    std::printf("pyasio demo: %zu requests per run over %zu keep-alive connections; handlers from "
                "%s; Python's loop: %s; runtime threads: %zu\n",
                options.requests, options.connections, options.handler_file.c_str(),
                options.uvloop ? "uvloop" : "asyncio", pyasio::runtime_thread_count());
    std::fflush(stdout);

    load_thread load;
    std::vector<row> rows;
    for (std::size_t i = 0; i < py.handlers.size(); ++i) {
        load_plan plan{0, options.requests, options.connections, i == 1,
                       std::chrono::seconds(options.timeout)};
        // (each result in a statement of its own: g++ 12 mishandles a co_await inside a braced
        // initializer's temporaries)
        load_result cpp = co_await run_cpp_server(load, py.handlers[i], plan);
        rows.push_back({"C++ Asio server (pyasio)", handler_names[i], std::move(cpp)});
        load_result python =
            co_await run_python_server(load, *py.serve, py.handlers[i], *py.stop, plan);
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

// --serve's PORT: the C++ server's port; the Python server's is PORT+1.
unsigned short port_argument(const char* value) {
    unsigned n = 0;
    std::string_view s = value;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || end != s.data() + s.size() || n == 0 || n > 65534)
        throw std::invalid_argument(std::string("--serve needs a port from 1 to 65534 (the C++ "
                                                "server's; the Python server takes PORT+1), "
                                                "not '") +
                                    value + "'");
    return static_cast<unsigned short>(n);
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
        std::string measuring; // an option of the measuring runs, which --serve does not take
        for (int i = 1; i < argc; ++i) {
            std::string_view arg = argv[i];
            bool has_value = i + 1 < argc;
            if (arg == "--requests" || arg == "--connections" || arg == "--timeout")
                measuring = arg;
            if (arg == "--uvloop")
                options.uvloop = true;
            else if (arg == "--handler" && has_value)
                options.handler_file = argv[++i];
            else if (arg == "--serve" && has_value)
                options.serve_port = port_argument(argv[++i]);
            else if (arg == "--threads" && has_value)
                options.threads = count_argument("--threads", argv[++i]);
            else if (arg == "--requests" && has_value)
                options.requests = count_argument("--requests", argv[++i]);
            else if (arg == "--timeout" && has_value)
                options.timeout = count_argument("--timeout", argv[++i]);
            else if (arg == "--connections" && has_value)
                options.connections = count_argument("--connections", argv[++i]);
            else
                throw std::invalid_argument(
                    "usage: http_demo [--handler FILE] [--requests N] [--connections N] "
                    "[--threads N] [--timeout S] [--uvloop]\n"
                    "       http_demo --serve PORT [--handler FILE] [--threads N] [--uvloop]");
        }
        if (options.serve_port != 0 && !measuring.empty())
            throw std::invalid_argument(measuring +
                                        " is for the measuring runs: --serve takes none (measure "
                                        "a --serve with a load generator such as wrk)");
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
