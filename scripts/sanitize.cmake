# Sanitizer build hook, used by scripts/sanitize.sh through -DCMAKE_PROJECT_INCLUDE (CMakeLists.txt is not changed).
#
# CMakeLists.txt gives its targets their own -O3 / -O2, which come after CMAKE_CXX_FLAGS on the command line and
# so win over a -O1 there. CMake includes this file at the end of project(); the deferred call below runs once the
# whole CMakeLists.txt has been read, and
#  - replaces every -O level in the targets' own compile options with TORCHCONV_SANITIZE_OPT (-O1 unless set);
#  - builds the per-ISA kernel copies named in TORCHCONV_SANITIZE_UNUSED_ISAS (targets torchconv_kernels_<isa>:
#    copies the run will not execute, as the CPU lacks them) at -O0 without sanitizers or debug info: they are only
#    linked, and an instrumented copy of the direct kernels costs minutes of compiling.
# The sanitizer flags themselves come in through CMAKE_CXX_FLAGS and the linker flags.

if(NOT DEFINED TORCHCONV_SANITIZE_OPT)
  set(TORCHCONV_SANITIZE_OPT -O1)
endif()

function(_torchconv_sanitize_targets)
  set(unused "")
  foreach(isa IN LISTS TORCHCONV_SANITIZE_UNUSED_ISAS)
    list(APPEND unused torchconv_kernels_${isa})
  endforeach()
  get_property(targets DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t IN LISTS targets)
    get_target_property(type ${t} TYPE)
    if(type STREQUAL "INTERFACE_LIBRARY" OR type STREQUAL "UTILITY")
      continue()
    endif()
    get_target_property(opts ${t} COMPILE_OPTIONS)
    if(NOT opts)
      set(opts "")
    endif()
    if(t IN_LIST unused)
      list(FILTER opts EXCLUDE REGEX "^-O([0-3sgz]|fast)?$")
      list(APPEND opts -O0 -g0 -fno-sanitize=all)
    else()
      list(TRANSFORM opts REPLACE "^-O([0-3sgz]|fast)?$" "${TORCHCONV_SANITIZE_OPT}")
    endif()
    set_property(TARGET ${t} PROPERTY COMPILE_OPTIONS "${opts}")
    message(STATUS "sanitize: ${t}: ${opts}")
  endforeach()
endfunction()

cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _torchconv_sanitize_targets)
