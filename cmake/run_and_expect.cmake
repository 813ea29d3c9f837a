# SPDX-License-Identifier: BSL-1.0
# cmake -DCOMMAND=<program> -DEXPECT=<regex@@regex...> -P run_and_expect.cmake
# Runs the program; fails unless it exits 0 and its output matches every regex.
execute_process(COMMAND ${COMMAND} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "exit status ${rc}")
endif()
string(REPLACE "@@" ";" EXPECT "${EXPECT}")
foreach(re IN LISTS EXPECT)
  if(NOT "${out}${err}" MATCHES "${re}")
    message(FATAL_ERROR "output lacks a line matching: ${re}")
  endif()
endforeach()
