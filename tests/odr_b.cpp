// SPDX-License-Identifier: BSL-1.0
#include <pyasio.hpp>

int odr_a();

int main() {
    Py_InitializeEx(0);
    int total = 0;
    try {
        total = odr_a() + pyasio::from_python<int>(pyasio::to_python(22));
    } catch (const std::exception&) {
        total = -1;
    }
    pyasio::release_pending();
    Py_FinalizeEx();
    return total == 42 ? 0 : 1;
}
