// Minimal "--name value" / "--switch" parsing for the strata subcommands.
// Unknown flags are errors (a typo must not silently change behaviour).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace strata {

class CliFlags {
 public:
  // `valued` flags take a value, `switches` don't.
  static absl::StatusOr<CliFlags> Parse(const std::vector<std::string>& args,
                                        const std::set<std::string>& valued,
                                        const std::set<std::string>& switches);

  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::string Get(const std::string& name, const std::string& fallback) const;
  absl::StatusOr<int64_t> GetInt(const std::string& name, int64_t fallback) const;
  absl::StatusOr<double> GetDouble(const std::string& name, double fallback) const;
  absl::StatusOr<std::vector<int32_t>> GetIntList(const std::string& name) const;

 private:
  std::map<std::string, std::string> values_;
};

// "default" -> the cached default model; anything else is returned as is.
std::string ResolveModelPath(const std::string& model);

}  // namespace strata
