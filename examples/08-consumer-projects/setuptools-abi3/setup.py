# SPDX-License-Identifier: BSL-1.0
# The setuptools project of ../setuptools, built as one abi3 wheel (cp312-abi3) that every
# CPython from 3.12 on imports: the module is compiled on the limited API of 3.12, named
# roundtrip.abi3.so, and the wheel is tagged for it (setup.cfg). Build it with Python 3.12 (or
# the oldest version the wheel is for): the headers must know the limited API it names.
from setuptools import Extension, setup

roundtrip = Extension(
    "roundtrip",
    sources=["roundtrip.cpp"],
    include_dirs=["third_party/pyasio/include"],
    language="c++",
    # Py_LIMITED_API: the oldest version the wheel runs on (pyasio needs 0x030C0000 or later);
    # py_limited_api=True: the module is named roundtrip.abi3.so.
    define_macros=[("Py_LIMITED_API", "0x030C0000")],
    py_limited_api=True,
    extra_compile_args=["-std=c++20", "-fvisibility=hidden", "-pthread"],
    extra_link_args=["-pthread"],
)

setup(ext_modules=[roundtrip], packages=[])
