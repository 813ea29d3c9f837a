// SPDX-License-Identifier: BSL-1.0
// Every public header, compiled with the warnings users turn on (tests/CMakeLists.txt): pyasio's
// headers must not warn in a user's build, whatever -W flags it uses.
#include <pyasio.hpp>
#include <pyasio/testing/catch2.hpp>

int main() {
    return 0;
}
