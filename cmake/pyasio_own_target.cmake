# SPDX-License-Identifier: BSL-1.0
# Flags for pyasio's own targets (tests, examples, benchmarks), never for consumers.
function(pyasio_own_target target)
  target_link_libraries(${target} PRIVATE pyasio::pyasio)
  # Debug checks (GIL assertions) are on in every build of the project's own targets.
  target_compile_definitions(${target} PRIVATE PYASIO_DEBUG=1)
  if(PYASIO_DEBUG_PYTHON STREQUAL "True")
    target_compile_definitions(${target} PRIVATE Py_DEBUG)
  endif()
  if(PYASIO_DEVELOPER_MODE)
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror)
  endif()
  if(PYASIO_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${PYASIO_SANITIZE}
                           -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${PYASIO_SANITIZE})
    if(PYASIO_SANITIZE MATCHES "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      # NOTE: g++ warns that TSan does not model Asio's fences (asio/detail/std_fenced_block.hpp);
      # what they order is also ordered by the scheduler's mutex, which TSan does see.
      target_compile_options(${target} PRIVATE -Wno-tsan)
    endif()
  endif()
endfunction()

# An extension module of pyasio's own on the limited API of 3.12, as one abi3 wheel ships it:
# Py_LIMITED_API=0x030C0000, named NAME.abi3.so, hidden visibility.
function(pyasio_abi3_module target)
  Python_add_library(${target} MODULE ${ARGN})
  pyasio_own_target(${target})
  target_compile_definitions(${target} PRIVATE Py_LIMITED_API=0x030C0000)
  set_target_properties(${target} PROPERTIES PREFIX "" SUFFIX ".abi3.so"
                        CXX_VISIBILITY_PRESET hidden)
endfunction()
