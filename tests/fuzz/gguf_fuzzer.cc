// libFuzzer target for the GGUF reader: any input must give a Status or a
// file whose every getter and tensor range is safe to use. Built and run by
// scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>

#include "common/format/gguf_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = strata::GgufFile::Parse(data, size, "fuzz.gguf");
  if (!file.ok()) return 0;
  const strata::GgufFile& g = **file;
  // Every getter on every key: wrong types must be Statuses, right types
  // must decode in bounds.
  size_t sink = g.version();
  for (const std::string& key : g.keys()) {
    sink += g.HasKey(key);
    if (auto v = g.GetString(key); v.ok()) sink += v->size();
    if (auto v = g.GetInt(key); v.ok()) sink += static_cast<size_t>(*v);
    if (auto v = g.GetFloat(key); v.ok()) sink += *v > 0;
    if (auto v = g.GetBool(key); v.ok()) sink += *v;
    if (auto v = g.GetStringArray(key); v.ok()) {
      for (const std::string& s : *v) sink += s.size();
    }
    if (auto v = g.GetIntArray(key); v.ok()) sink += v->size();
    if (auto v = g.GetFloatArray(key); v.ok()) sink += v->size();
  }
  sink += g.GetInt("missing.key").ok();
  // Touch the first and last byte of every tensor so ASan checks the range.
  for (const strata::GgufTensorInfo& t : g.tensors()) {
    if (g.FindTensor(t.name) != &t) __builtin_trap();
    if (t.size_bytes == 0) continue;
    const auto* p = static_cast<const uint8_t*>(t.data);
    sink += p[0] + p[t.size_bytes - 1];
  }
  // Keep the reads from being optimised away.
  volatile size_t keep = sink;
  (void)keep;
  return 0;
}
