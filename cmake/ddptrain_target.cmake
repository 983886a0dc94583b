# ddptrain_target(<target>): what every ddptrain target shares: C++17, the warnings (errors with
# DDPTRAIN_WERROR), the sanitizers with DDPTRAIN_SANITIZE, and the version header's build order.
# The public include folder is added by the targets whose headers are public.
add_library(ddptrain_build_flags INTERFACE)
target_compile_features(ddptrain_build_flags INTERFACE cxx_std_17)
target_compile_options(ddptrain_build_flags INTERFACE -Wall -Wextra $<$<BOOL:${DDPTRAIN_WERROR}>:-Werror>)
if(DDPTRAIN_SANITIZE)
  # GCC 12's -Wmaybe-uninitialized misfires on libstdc++'s <regex> and <functional> when the
  # sanitizers instrument them (a false positive of GCC 12); ASan checks those reads at run time.
  target_compile_options(ddptrain_build_flags INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                         -fno-sanitize-recover=undefined -Wno-maybe-uninitialized)
  target_link_options(ddptrain_build_flags INTERFACE -fsanitize=address,undefined)
endif()

function(ddptrain_target target)
  target_link_libraries(${target} PRIVATE $<BUILD_INTERFACE:ddptrain_build_flags>)
  add_dependencies(${target} ddp_version)
endfunction()

# LibTorch ships its own (newer) fmt headers, which would shadow the fmt that the system spdlog
# was built against. ddptrain::spdlog is spdlog with a shim folder holding only spdlog's fmt first
# on the include path; the targets that log link it instead of spdlog::spdlog.
find_package(spdlog REQUIRED)
add_library(ddptrain_spdlog INTERFACE)
target_link_libraries(ddptrain_spdlog INTERFACE spdlog::spdlog)
if(TARGET fmt::fmt)
  get_target_property(_fmt_inc fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
  list(GET _fmt_inc 0 _fmt_inc)
  file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/fmt_shim)
  file(CREATE_LINK ${_fmt_inc}/fmt ${CMAKE_BINARY_DIR}/fmt_shim/fmt SYMBOLIC)
  target_include_directories(ddptrain_spdlog BEFORE INTERFACE ${CMAKE_BINARY_DIR}/fmt_shim)
endif()
add_library(ddptrain::spdlog ALIAS ddptrain_spdlog)
