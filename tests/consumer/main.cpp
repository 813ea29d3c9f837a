// SPDX-License-Identifier: BSL-1.0
// A program that uses pyasio the way a consumer project does; every integration recipe (CMake
// find_package and add_subdirectory, Meson subproject, pkg-config, vendored include/) builds it.
#include <pyasio.hpp>

#include <cstdio>

int main() {
    Py_InitializeEx(0);
    int status = 1;
    try {
        pyasio::object math = pyasio::import("math");
        double root = pyasio::from_python<double>(pyasio::call(pyasio::getattr(math, "sqrt"), 49));
        if (root == 7.0) {
            std::printf("consumer ok: pyasio %d.%d.%d\n", PYASIO_VERSION_MAJOR,
                        PYASIO_VERSION_MINOR, PYASIO_VERSION_PATCH);
            status = 0;
        }
    } catch (const std::exception& e) {
        std::printf("consumer failed: %s\n", e.what());
    }
    Py_FinalizeEx();
    return status;
}
