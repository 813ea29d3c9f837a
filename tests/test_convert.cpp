// SPDX-License-Identifier: BSL-1.0
#include "support.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

using pyasio::from_python;
using pyasio::handle;
using pyasio::object;
using pyasio::to_python;

namespace {
template <class T> T roundtrip(const T& v) {
    return from_python<T>(to_python(v));
}

template <class T> std::string type_error(const std::string& expr) {
    return test::python_error_message(PyExc_TypeError,
                                      [&] { (void)from_python<T>(test::eval(expr)); });
}
} // namespace

TEST_CASE("None", "[convert]") {
    CHECK(to_python(nullptr).is_none());
    CHECK(from_python<std::nullptr_t>(test::eval("None")) == nullptr);
    CHECK(type_error<std::nullptr_t>("0") == "expected None, got int");
}

TEST_CASE("bool is strict", "[convert]") {
    CHECK(to_python(true).is(handle(Py_True)));
    CHECK(to_python(false).is(handle(Py_False)));
    CHECK(roundtrip(true));
    CHECK_FALSE(roundtrip(false));
    CHECK(type_error<bool>("1") == "expected bool, got int");
    CHECK(type_error<bool>("None") == "expected bool, got NoneType");
}

TEMPLATE_TEST_CASE("every integer type: limits round trip, one past them overflows", "[convert]",
                   signed char, unsigned char, short, unsigned short, int, unsigned int, long,
                   unsigned long, long long, unsigned long long, std::int8_t, std::uint16_t,
                   std::int32_t, std::uint64_t, std::size_t, std::ptrdiff_t) {
    using T = TestType;
    constexpr T lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
    CHECK(roundtrip(lo) == lo);
    CHECK(roundtrip(hi) == hi);
    CHECK(roundtrip(T(0)) == T(0));
    CHECK(pyasio::str(to_python(hi)) == std::to_string(hi));
    CHECK(pyasio::str(to_python(lo)) == std::to_string(lo));

    auto overflow = [](const std::string& expr) {
        return test::python_error_message(PyExc_OverflowError,
                                          [&] { (void)from_python<T>(test::eval(expr)); });
    };
    std::string above = overflow(std::to_string(hi) + " + 1");
    CHECK(above.find("out of range for C++") != std::string::npos);
    CHECK(above.find(std::to_string(hi)) != std::string::npos);
    std::string below = overflow(std::to_string(lo) + " - 1");
    CHECK(below.find("out of range for C++") != std::string::npos);
    overflow("2 ** 200");
    overflow("-(2 ** 200)");

    CHECK(type_error<T>("1.0") == "expected int, got float");
    CHECK(type_error<T>("'7'") == "expected int, got str");
    CHECK(type_error<T>("None") == "expected int, got NoneType");
    // int subclasses and objects with __index__ are integers.
    CHECK(from_python<T>(test::eval("True")) == T(1));
    test::exec("class Seven:\n    def __index__(self): return 7\n");
    CHECK(from_python<T>(test::eval("Seven()")) == T(7));
}

TEST_CASE("integer overflow message names the C++ type and its range", "[convert]") {
    auto msg = test::python_error_message(
        PyExc_OverflowError, [] { (void)from_python<std::int16_t>(test::eval("40000")); });
    CHECK(msg == "Python int 40000 is out of range for C++ short [-32768, 32767]; convert to a "
                 "wider C++ type, or to pyasio::object to take any int");
    msg = test::python_error_message(PyExc_OverflowError,
                                     [] { (void)from_python<unsigned>(test::eval("-1")); });
    CHECK(msg.rfind("Python int -1 is out of range for C++ unsigned int [0, 4294967295]; ", 0) ==
          0);
}

TEST_CASE("floating point", "[convert]") {
    CHECK(roundtrip(1.5) == 1.5);
    CHECK(roundtrip(-0.25f) == -0.25f);
    CHECK(from_python<double>(test::eval("3")) == 3.0);
    CHECK(std::isinf(from_python<double>(test::eval("float('inf')"))));
    CHECK(type_error<double>("'1.5'") == "expected float, got str");
    CHECK(type_error<double>("None") == "expected float, got NoneType");
    test::python_error_message(PyExc_OverflowError,
                               [] { (void)from_python<double>(test::eval("10 ** 400")); });
    // beyond a float's range: a named error, not an undefined cast
    auto too_big = test::python_error_message(
        PyExc_OverflowError, [] { (void)from_python<float>(test::eval("1e300")); });
    CHECK(too_big.find("out of range for C++ float") != std::string::npos);
    CHECK(too_big.find("convert to double") != std::string::npos);
    test::python_error_message(PyExc_OverflowError,
                               [] { (void)from_python<float>(test::eval("-10 ** 60")); });
    CHECK(std::isinf(from_python<float>(test::eval("float('-inf')"))));
    CHECK(from_python<float>(test::eval("3.4e38")) == 3.4e38f);
    // rounds to the largest float; just past it, a double rounds to infinity
    CHECK(from_python<float>(test::eval("3.4028235e38")) == std::numeric_limits<float>::max());
    test::python_error_message(PyExc_OverflowError,
                               [] { (void)from_python<float>(test::eval("3.4028236e38")); });
}

TEST_CASE("strings are UTF-8", "[convert]") {
    const std::string text = "h\xc3\xa9llo \xe2\x9c\x93"; // héllo ✓
    CHECK(roundtrip(text) == text);
    CHECK(from_python<std::size_t>(pyasio::call(test::eval("len"), text)) == 7);
    CHECK(pyasio::str(to_python(std::string_view("view"))) == "view");
    CHECK(pyasio::str(to_python("literal")) == "literal");
    CHECK(to_python(static_cast<const char*>(nullptr)).is_none());
    std::string with_nul("a\0b", 3);
    CHECK(roundtrip(with_nul) == with_nul);

    auto bad = test::python_error_message(PyExc_UnicodeDecodeError,
                                          [] { (void)to_python(std::string("ok \xff")); });
    CHECK(bad.find("utf-8") != std::string::npos);
    CHECK(bad.find("a C++ string sent to Python must hold UTF-8; send bytes") != std::string::npos);
    test::python_error_message(PyExc_UnicodeDecodeError,
                               [] { (void)to_python(std::string_view("\xc3")); });
    test::python_error_message(PyExc_UnicodeEncodeError,
                               [] { (void)from_python<std::string>(test::eval("'\\ud800'")); });
    CHECK(type_error<std::string>("b'bytes'") == "expected str, got bytes");
    CHECK(type_error<std::string>("1") == "expected str, got int");
}

TEST_CASE("bytes", "[convert]") {
    std::vector<std::byte> data{std::byte{0}, std::byte{0xff}, std::byte{'a'}};
    object b = to_python(data);
    CHECK(PyBytes_Check(b.ptr()));
    CHECK(pyasio::repr(b) == "b'\\x00\\xffa'");
    CHECK(roundtrip(data) == data);
    CHECK(from_python<std::vector<std::byte>>(test::eval("bytearray(b'xy')")) ==
          std::vector<std::byte>{std::byte{'x'}, std::byte{'y'}});
    CHECK(pyasio::repr(to_python(std::span<const std::byte>(data).subspan(2))) == "b'a'");
    CHECK(type_error<std::vector<std::byte>>("'text'") == "expected bytes or bytearray, got str");
}

TEST_CASE("object and handle pass through", "[convert]") {
    object list = test::eval("[1]");
    CHECK(to_python(list).is(list));
    CHECK(to_python(handle(list)).is(list));
    CHECK(from_python<object>(list).is(list));
    CHECK(from_python<handle>(list).is(list));
}

TEST_CASE("optional", "[convert]") {
    CHECK(to_python(std::optional<int>()).is_none());
    CHECK(pyasio::str(to_python(std::optional<int>(4))) == "4");
    CHECK(from_python<std::optional<std::string>>(test::eval("None")) == std::nullopt);
    CHECK(from_python<std::optional<std::string>>(test::eval("'s'")) == "s");
    CHECK(type_error<std::optional<int>>("'s'") == "expected int, got str");
}

TEST_CASE("vector", "[convert]") {
    std::vector<int> v{3, 1, 2};
    CHECK(pyasio::repr(to_python(v)) == "[3, 1, 2]");
    CHECK(roundtrip(v) == v);
    CHECK(from_python<std::vector<int>>(test::eval("(4, 5)")) == std::vector<int>{4, 5});
    CHECK(pyasio::repr(to_python(std::vector<bool>{true, false})) == "[True, False]");
    std::vector<std::vector<std::string>> nested{{"a"}, {}, {"b", "c"}};
    CHECK(roundtrip(nested) == nested);
    CHECK(roundtrip(std::vector<double>{}).empty());
    CHECK(type_error<std::vector<int>>("'123'") == "expected list or tuple, got str");
    CHECK(type_error<std::vector<int>>("{1: 2}") == "expected list or tuple, got dict");
    CHECK(type_error<std::vector<int>>("[1, 'two']") == "expected int, got str");
    // Python code that shrinks the list while it is converted does not read past its end.
    test::exec("victim = [0, 0, 0, 0]\n"
               "class Shrink:\n"
               "    def __index__(self):\n"
               "        victim.clear()\n"
               "        return 1\n"
               "victim[0] = Shrink()\n");
    CHECK(from_python<std::vector<int>>(test::eval("victim")) == std::vector<int>{1});
}

TEST_CASE("map and unordered_map", "[convert]") {
    std::map<std::string, int> m{{"a", 1}, {"b", 2}};
    CHECK(pyasio::repr(to_python(m)) == "{'a': 1, 'b': 2}");
    CHECK(roundtrip(m) == m);
    std::unordered_map<int, std::vector<std::string>> u{{1, {"x"}}, {2, {}}};
    CHECK(roundtrip(u) == u);
    CHECK(from_python<std::map<int, double>>(test::eval("{}")).empty());
    CHECK(type_error<std::map<std::string, int>>("[('a', 1)]") == "expected dict, got list");
    CHECK(type_error<std::map<std::string, int>>("{'a': 'x'}") == "expected int, got str");
    CHECK(type_error<std::map<std::string, int>>("{1: 1}") == "expected str, got int");
    // Python code that empties the dict while it is converted changes nothing for the result.
    test::exec("table = {}\n"
               "class Clear:\n"
               "    def __index__(self):\n"
               "        table.clear()\n"
               "        return 5\n"
               "table.update(a=Clear(), b=6)\n");
    CHECK(from_python<std::map<std::string, int>>(test::eval("table")) ==
          std::map<std::string, int>{{"a", 5}, {"b", 6}});
}

TEST_CASE("tuple and pair", "[convert]") {
    std::tuple<int, std::string, std::optional<double>> t{1, "two", std::nullopt};
    CHECK(pyasio::repr(to_python(t)) == "(1, 'two', None)");
    CHECK(roundtrip(t) == t);
    CHECK(from_python<std::tuple<int, std::string, std::optional<double>>>(
              test::eval("[1, 'two', 3]")) == std::tuple(1, std::string("two"), 3.0));
    std::pair<std::string, std::vector<int>> p{"k", {1, 2}};
    CHECK(pyasio::repr(to_python(p)) == "('k', [1, 2])");
    CHECK(roundtrip(p) == p);
    CHECK(pyasio::repr(to_python(std::tuple<>())) == "()");
    CHECK(type_error<std::tuple<int, int>>("(1, 2, 3)") ==
          "expected tuple of 2 items, got tuple of 3 items");
    CHECK(type_error<std::pair<int, int>>("'ab'") == "expected tuple of 2 items, got str");
    CHECK(type_error<std::tuple<int, int>>("(1,)") ==
          "expected tuple of 2 items, got tuple of 1 item");
    CHECK(type_error<std::tuple<int>>("[]") == "expected tuple of 1 item, got list of 0 items");
    CHECK(type_error<std::tuple<int, std::string>>("(1, 2)") == "expected str, got int");
}

TEST_CASE("from_python on an empty handle is a clear error", "[convert]") {
    CHECK_THROWS_WITH(from_python<int>(handle()),
                      "pyasio::from_python: the handle is empty (a null PyObject*)");
}

// A user type with its own conversion: a point is a Python (x, y) tuple.
namespace geometry {
struct point {
    int x, y;
    bool operator==(const point&) const = default;
};
} // namespace geometry

template <> struct pyasio::converter<geometry::point> {
    static object to_python(const geometry::point& p) {
        return pyasio::to_python(std::tuple(p.x, p.y));
    }
    static geometry::point from_python(handle h) {
        auto [x, y] = pyasio::from_python<std::tuple<int, int>>(h);
        return {x, y};
    }
};

TEST_CASE("the customization point converts user types, also inside containers", "[convert]") {
    geometry::point p{1, -2};
    CHECK(pyasio::repr(to_python(p)) == "(1, -2)");
    CHECK(roundtrip(p) == p);
    std::vector<std::optional<geometry::point>> many{p, std::nullopt};
    CHECK(pyasio::repr(to_python(many)) == "[(1, -2), None]");
    CHECK(roundtrip(many) == many);
    CHECK(type_error<geometry::point>("3") == "expected tuple of 2 items, got int");
}
