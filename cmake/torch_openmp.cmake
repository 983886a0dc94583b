# The OpenMP runtime that LibTorch itself loads, for code that shares loops with at::parallel_for.
# ATen's OpenMP backend is inline in its headers, so such code is compiled with -fopenmp, and it
# must then call LibTorch's own runtime (one thread pool, one at::set_num_threads), never a
# second copy. Included after find_package(Torch) by CMakeLists.txt and by ddptrainConfig.cmake.
#
# Defines the INTERFACE IMPORTED target ddptrain::torch_openmp where that runtime is GNU libgomp
# and the compiler is GCC:
#   - the PyPI wheel: torch/lib/libgomp.so.1 (older wheels and LibTorch zips: libgomp-<hash>.so.1);
#   - a LibTorch built against the system's GCC (Debian's libtorch-dev): the system libgomp.so.1.
# No target with Intel's or LLVM's runtime next to LibTorch (conda/MKL builds) or another compiler:
# the loops then run on one thread per rank.
if(NOT TARGET ddptrain::torch_openmp AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  file(GLOB _ddp_gomp LIST_DIRECTORIES false "${TORCH_INSTALL_PREFIX}/lib/libgomp*.so*")
  file(GLOB _ddp_other_omp LIST_DIRECTORIES false "${TORCH_INSTALL_PREFIX}/lib/libiomp5*.so*"
       "${TORCH_INSTALL_PREFIX}/lib/libomp*.so*")
  # Unset, not "": find_library skips its search when the variable already holds a value that
  # does not end in -NOTFOUND, and the empty string is such a value.
  unset(_ddp_gomp_lib)
  if(_ddp_gomp)
    list(GET _ddp_gomp 0 _ddp_gomp_lib)
  elseif(NOT _ddp_other_omp)
    find_library(_ddp_gomp_lib NAMES libgomp.so.1 NO_CACHE)
  endif()
  if(_ddp_gomp_lib)
    add_library(ddptrain::torch_openmp INTERFACE IMPORTED)
    set_target_properties(ddptrain::torch_openmp PROPERTIES INTERFACE_LINK_LIBRARIES "${_ddp_gomp_lib}")
  endif()
endif()
