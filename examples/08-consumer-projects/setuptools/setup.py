# SPDX-License-Identifier: BSL-1.0
# The extension module of this project; its metadata is in pyproject.toml. The layout:
#   roundtrip.cpp                 the module (the test copies it in from ../roundtrip.cpp)
#   third_party/pyasio/include/   pyasio's include/, vendored (the test copies it in)
#   MANIFEST.in                   puts third_party/ in the sdist
from setuptools import Extension, setup

roundtrip = Extension(
    "roundtrip",
    sources=["roundtrip.cpp"],
    # pyasio is headers only. Standalone Asio is too: the system's (Debian: libasio-dev) is on
    # the compiler's default include path; a vendored copy goes here as well, e.g.
    # "third_party/asio/include" (the folder that holds asio.hpp).
    include_dirs=["third_party/pyasio/include"],
    language="c++",
    # setuptools adds no C++ standard: pyasio needs C++20. -fvisibility=hidden keeps the
    # module's own C++ names private to it (pyasio hides its own and Asio's anyway); only
    # PyInit_roundtrip (PYASIO_MODULE_INIT) is exported.
    # NOTE: setuptools compiles with the flags the interpreter was built with (sysconfig's
    # CFLAGS: -DNDEBUG -g -O2 ...), so NDEBUG is defined and pyasio's debug checks are off; add
    # "-DPYASIO_DEBUG=1" to turn them on. It compiles .cpp files with $CC, not $CXX: set
    # CC="ccache gcc" for ccache.
    extra_compile_args=["-std=c++20", "-fvisibility=hidden", "-pthread"],
    extra_link_args=["-pthread"],
)

# packages=[]: without it, setuptools' automatic discovery (flat layout) takes third_party/ for a
# package and installs the vendored headers into site-packages with the module (or refuses to
# build, "Multiple top-level packages discovered", once there is a second folder). This project
# ships the extension module alone.
setup(ext_modules=[roundtrip], packages=[])
