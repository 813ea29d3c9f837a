# SPDX-License-Identifier: BSL-1.0
# Fails when a header under ROOT/include has a bare catch (...): pyasio's catch-all handlers are
# spelled PYASIO_DETAIL_CATCH_ALL (include/pyasio/config.hpp), which lets a forced unwind (a thread
# ended by pthread_exit, pthread_cancel, or CPython at interpreter exit) through.
#   cmake -DROOT=<pyasio source dir> -P check_catch_all.cmake
file(GLOB_RECURSE headers "${ROOT}/include/*.hpp")
set(bad "")
foreach(header IN LISTS headers)
  if(header MATCHES "/pyasio/config\\.hpp$")
    continue() # the macro's own definition
  endif()
  file(STRINGS "${header}" lines REGEX "catch[ \t]*\\([ \t]*\\.\\.\\.[ \t]*\\)")
  foreach(line IN LISTS lines)
    string(STRIP "${line}" line)
    if(NOT line MATCHES "^//")
      list(APPEND bad "${header}: ${line}")
    endif()
  endforeach()
endforeach()
if(bad)
  list(JOIN bad "\n  " text)
  message(FATAL_ERROR "a bare catch (...) swallows forced unwinds; spell it "
                      "PYASIO_DETAIL_CATCH_ALL:\n  ${text}")
endif()
message(STATUS "every catch-all in include/ is PYASIO_DETAIL_CATCH_ALL")
