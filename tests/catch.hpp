// SPDX-License-Identifier: BSL-1.0
// Catch2 v2 (Debian's catch2 2.13) or v3, whichever is installed.
#pragma once
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#define PYASIO_TEST_CATCH_V3 1
#else
#include <catch2/catch.hpp>
#endif
