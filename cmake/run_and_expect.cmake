# SPDX-License-Identifier: BSL-1.0
# cmake -DCOMMAND=<program;args> -DEXPECT=<regex@@regex...> [-DMUST_FAIL=ON] -P run_and_expect.cmake
# Runs the program; fails unless its output matches every regex and it exits 0 (or, with
# MUST_FAIL, does not exit 0: a non-zero status or a signal such as abort).
string(REPLACE "@@" ";" EXPECT "${EXPECT}")
execute_process(COMMAND ${COMMAND} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
message("${out}${err}")
if(MUST_FAIL AND rc STREQUAL "0")
  message(FATAL_ERROR "expected a failure, but the program exited 0")
elseif(NOT MUST_FAIL AND NOT rc STREQUAL "0")
  message(FATAL_ERROR "exit status ${rc}")
endif()
foreach(re IN LISTS EXPECT)
  if(NOT "${out}${err}" MATCHES "${re}")
    message(FATAL_ERROR "output lacks a line matching: ${re}")
  endif()
endforeach()
