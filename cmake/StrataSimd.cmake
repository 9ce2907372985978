# Per-ISA compile flags. A source listed for an ISA is compiled only with that
# ISA's flags; the dispatcher (kernels/cpu/cpu_features.h) picks the variant at
# run time, so the binary still starts on a CPU without AVX2.
set(STRATA_FLAGS_AVX2 "-mavx2;-mfma;-mf16c;-mbmi2")
set(STRATA_FLAGS_AVX512 "-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;-mavx512vnni;-mavx2;-mfma;-mf16c;-mbmi2")

# strata_simd_sources(<target> AVX2 <files...> AVX512 <files...>)
function(strata_simd_sources target)
  cmake_parse_arguments(ARG "" "" "AVX2;AVX512" ${ARGN})
  foreach(f IN LISTS ARG_AVX2)
    target_sources(${target} PRIVATE ${f})
    set_source_files_properties(${f} PROPERTIES COMPILE_OPTIONS "${STRATA_FLAGS_AVX2}")
  endforeach()
  foreach(f IN LISTS ARG_AVX512)
    target_sources(${target} PRIVATE ${f})
    set_source_files_properties(${f} PROPERTIES COMPILE_OPTIONS "${STRATA_FLAGS_AVX512}")
  endforeach()
endfunction()
