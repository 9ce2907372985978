// libFuzzer target for the safetensors reader: any input must give a Status
// or tensors whose [data, data + size_bytes) lies inside the input. Built and
// run by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>

#include "common/format/safetensors_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = strata::SafetensorsFile::Parse(data, size, "fuzz.safetensors");
  if (!file.ok()) return 0;
  size_t sink = 0;
  for (const strata::SafetensorsTensor& t : (*file)->tensors()) {
    if ((*file)->FindTensor(t.name) != &t) __builtin_trap();
    sink += t.dtype.size() + t.shape.size() + static_cast<size_t>(t.num_elements) + t.type.has_value();
    if (t.size_bytes == 0) continue;
    const auto* p = static_cast<const uint8_t*>(t.data);
    sink += p[0] + p[t.size_bytes - 1];
  }
  volatile size_t keep = sink;
  (void)keep;
  return 0;
}
