# Writes include/ddp/core/version.h.in into OUT with the current git revision. Run at every build
# (target ddp_version), not only at configure time, so that --version and checkpoint manifests
# name the commit actually built; configure_file leaves OUT untouched when nothing changed, so
# an unchanged revision recompiles nothing.
#   cmake -DSOURCE_DIR=... -DOUT=... -DPROJECT_VERSION=... -P cmake/version.cmake
execute_process(COMMAND git rev-parse --short HEAD WORKING_DIRECTORY ${SOURCE_DIR}
                OUTPUT_VARIABLE DDPTRAIN_GIT_REVISION OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT DDPTRAIN_GIT_REVISION)
  set(DDPTRAIN_GIT_REVISION "unknown")
endif()
configure_file(${SOURCE_DIR}/include/ddp/core/version.h.in ${OUT} @ONLY)
