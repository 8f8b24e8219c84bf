# Installs the repository with pip into a fresh target folder and imports it from there, as a user's
# `pip install .` would (build isolation off, so the environment's nanobind and scikit-build-core serve).
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${PYTHON} -m pip install --no-build-isolation --no-deps --quiet --target ${WORK_DIR}/site
                        ${SOURCE_DIR} -Cbuild-dir=${WORK_DIR}/build
                RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "pip install failed (${result}):\n${out}\n${err}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E env PYTHONPATH=${WORK_DIR}/site
                        ${PYTHON} -c "import octopus, numpy; c = octopus.Codec('octopus', 64, 3); x = numpy.ones((2, 64), numpy.float32); assert c.decode(c.encode(x)).shape == (2, 64); print(octopus.__file__)"
                WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT result EQUAL 0 OR NOT out MATCHES "pip_install/site/octopus")
  message(FATAL_ERROR "the pip-installed package did not import (${result}):\n${out}\n${err}")
endif()
