// SPDX-License-Identifier: BSL-1.0
// User types that hold pyasio types, compiled with the project's warnings as errors and default
// visibility, as in a program that embeds Python: no warning may come from pyasio's headers.
#include <pyasio.hpp>

#include <optional>
#include <vector>

struct user_state {
    pyasio::object callback;
    pyasio::handle borrowed;
    std::vector<pyasio::object> items;
    std::optional<pyasio::python_error> last_error;
};

user_state make_user_state() {
    return {};
}
