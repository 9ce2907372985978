#include "tools/cli_flags.h"

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace strata {

absl::StatusOr<CliFlags> CliFlags::Parse(const std::vector<std::string>& args,
                                         const std::set<std::string>& valued,
                                         const std::set<std::string>& switches) {
  CliFlags f;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (a.rfind("--", 0) != 0) return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", a, "'"));
    a = a.substr(2);
    std::string value;
    bool has_inline = false;
    if (auto eq = a.find('='); eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_inline = true;
    }
    if (switches.count(a)) {
      if (has_inline) return absl::InvalidArgumentError(absl::StrCat("--", a, " takes no value"));
      f.values_[a] = "1";
    } else if (valued.count(a)) {
      if (!has_inline) {
        if (i + 1 >= args.size()) return absl::InvalidArgumentError(absl::StrCat("--", a, " needs a value"));
        value = args[++i];
      }
      f.values_[a] = value;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", a));
    }
  }
  return f;
}

std::string CliFlags::Get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

absl::StatusOr<int64_t> CliFlags::GetInt(const std::string& name, int64_t fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  int64_t v;
  if (!absl::SimpleAtoi(it->second, &v)) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, ": '", it->second, "' is not an integer"));
  }
  return v;
}

absl::StatusOr<double> CliFlags::GetDouble(const std::string& name, double fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  double v;
  if (!absl::SimpleAtod(it->second, &v)) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, ": '", it->second, "' is not a number"));
  }
  return v;
}

absl::StatusOr<std::vector<int32_t>> CliFlags::GetIntList(const std::string& name) const {
  std::vector<int32_t> out;
  auto it = values_.find(name);
  if (it == values_.end()) return out;
  for (absl::string_view part : absl::StrSplit(it->second, absl::ByAnyChar(", "), absl::SkipEmpty())) {
    int32_t v;
    if (!absl::SimpleAtoi(part, &v)) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, ": '", part, "' is not an integer"));
    }
    out.push_back(v);
  }
  return out;
}

std::string ResolveModelPath(const std::string& model) {
  if (model != "default") return model;
  if (const char* dir = std::getenv("STRATA_MODEL_DIR")) {
    return absl::StrCat(dir, "/SmolLM2-135M-Instruct.Q4_1.gguf");
  }
  const char* home = std::getenv("HOME");
  return absl::StrCat(home ? home : "", "/.cache/strata/models/SmolLM2-135M-Instruct.Q4_1.gguf");
}

}  // namespace strata
