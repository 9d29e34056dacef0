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

function(cmbench_add_model name)
  _cmbench_add_part(model ${name} ${ARGN})
endfunction()

function(cmbench_add_workload name)
  _cmbench_add_part(workload ${name} ${ARGN})
endfunction()

# Links every registered model and workload into <target>.
function(cmbench_link_parts target)
  get_property(parts GLOBAL PROPERTY CMBENCH_PARTS)
  target_link_libraries(${target} PRIVATE ${parts})
endfunction()
