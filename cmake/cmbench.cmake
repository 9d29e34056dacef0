# cmbench_add_model(<name> SOURCES <files...> [LIBRARIES <targets...>])
# cmbench_add_workload(<name> SOURCES <files...> [LIBRARIES <targets...>])
#
# Each adds an OBJECT library whose static registration line lands in every program that links
# the suite's parts (cmbench and the tests). Adding a model or a workload is one call here and
# one CMBENCH_REGISTER_* line in its source.
function(_cmbench_add_part kind name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBRARIES" ${ARGN})
  set(target cmbench_${kind}_${name})
  add_library(${target} OBJECT ${ARG_SOURCES})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${target} PUBLIC Threads::Threads ${ARG_LIBRARIES} PRIVATE cmbench_warnings)
  set_property(GLOBAL APPEND PROPERTY CMBENCH_PARTS ${target})
endfunction()

# A model may register its own floor probe (CMBENCH_REGISTER_PROBE, models/floors/probes.hpp), so
# its part links the probes' registry.
function(cmbench_add_model name)
  _cmbench_add_part(model ${name} ${ARGN})
  target_link_libraries(cmbench_model_${name} PUBLIC cmbench_floor_probes cmbench_wire)
endfunction()

function(cmbench_add_workload name)
  _cmbench_add_part(workload ${name} ${ARGN})
endfunction()

# Links every registered model and workload into <target>: at the end of the top-level
# CMakeLists.txt, once every part has been added, so a target may be declared before the last
# part (models/CMakeLists.txt's cmbench_floors, which needs the probes models register).
function(cmbench_link_parts target)
  # EVAL: a deferred call's arguments are expanded when it runs, where `target` is not set.
  cmake_language(EVAL CODE
    "cmake_language(DEFER DIRECTORY [[${PROJECT_SOURCE_DIR}]] CALL _cmbench_link_parts_now [[${target}]])")
endfunction()

function(_cmbench_link_parts_now target)
  get_property(parts GLOBAL PROPERTY CMBENCH_PARTS)
  target_link_libraries(${target} PRIVATE ${parts})
endfunction()
