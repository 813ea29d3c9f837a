// SPDX-License-Identifier: BSL-1.0
// Two translation units that both include every pyasio header, linked into one program: a
// missing `inline` would be a duplicate symbol at link time.
#include <pyasio.hpp>

int odr_a() {
    return pyasio::from_python<int>(pyasio::to_python(20));
}
