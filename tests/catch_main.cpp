// SPDX-License-Identifier: BSL-1.0
// The test runner: pyasio's own Catch2 harness (Python and its event loop on the main thread,
// the Catch2 session beside them; PYASIO_TEST_CASE bodies are coroutines on the runtime).
#include <pyasio/testing/catch2_main.hpp>
