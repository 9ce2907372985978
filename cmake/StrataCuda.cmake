# CUDA is optional: the toolkit is found on PATH or where it installs.
find_program(STRATA_NVCC nvcc PATHS /usr/local/cuda/bin /usr/local/cuda-13.0/bin NO_CACHE)
if(STRATA_NVCC AND NOT DEFINED STRATA_WITH_CUDA)
  set(STRATA_WITH_CUDA ON)
endif()
option(STRATA_WITH_CUDA "Build the CUDA backend" OFF)
if(STRATA_WITH_CUDA)
  message(STATUS "strata: nvcc found at ${STRATA_NVCC}; CUDA parts will be built as they land")
else()
  message(STATUS "strata: CUDA parts disabled (no nvcc)")
endif()

# CUDA language setup. Every .cu compiles for each architecture of
# STRATA_CUDA_ARCHITECTURES (sm_80 = A100, sm_90a = H100/H200 with wgmma/TMA), so keep
# .cu files small: one op (or one template instantiation) per file.
# Warnings are errors in CUDA targets: see strata_cuda_target_options().
set(STRATA_CUDA_ARCHITECTURES "80;90a" CACHE STRING "CUDA architectures to build for")
if(STRATA_WITH_CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    set(CMAKE_CUDA_COMPILER ${STRATA_NVCC})
  endif()
  if(NOT CMAKE_CUDA_HOST_COMPILER)
    set(CMAKE_CUDA_HOST_COMPILER ${CMAKE_CXX_COMPILER})
  endif()
  set(CMAKE_CUDA_ARCHITECTURES ${STRATA_CUDA_ARCHITECTURES})
  # CMake 3.25 knows no CUDA20 dialect flags for nvcc; kernels are C++17.
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  set(CMAKE_CUDA_EXTENSIONS OFF)
  if(CCACHE_PROGRAM)
    set(CMAKE_CUDA_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
endif()

# strata_cuda_target_options(<target>): nvcc warnings (its own and the host
# compiler's) as errors for the CUDA sources of <target>. The project-wide
# add_compile_options() flags are g++ flags, so CUDA directories drop them for CUDA
# sources (see kernels/cuda/CMakeLists.txt) and get these instead.
set(STRATA_CUDA_WARNING_FLAGS
    --Werror=all-warnings
    -Xcompiler=-Wall,-Wextra,-Wno-unused-parameter,-Werror)
function(strata_cuda_target_options target)
  target_compile_options(${target} PRIVATE
    "$<$<COMPILE_LANGUAGE:CUDA>:${STRATA_CUDA_WARNING_FLAGS}>")
endfunction()
