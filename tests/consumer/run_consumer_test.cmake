# Installs octopus into a temporary prefix, then configures, builds and runs a tiny project that
# finds it with find_package(octopus). Fails if any step fails.
file(REMOVE_RECURSE ${WORK_DIR})
function(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "step failed: ${ARGN}\n${out}\n${err}")
  endif()
endfunction()
run_step(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/octopus-build -G ${GENERATOR}
         -DOCTOPUS_BUILD_TESTS=OFF -DOCTOPUS_BUILD_BENCH=OFF -DOCTOPUS_BUILD_EXAMPLES=OFF
         -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix)
run_step(${CMAKE_COMMAND} --install ${WORK_DIR}/octopus-build)
run_step(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/consumer-build -G ${GENERATOR}
         -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release)
run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer-build)
run_step(${WORK_DIR}/consumer-build/consumer)
message(STATUS "consumer built against the installed octopus and ran")
