#include "coordinator/frontend/vllm_sampling_parameters.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace strata::coordinator {
namespace {

using Json = nlohmann::json;

absl::Status KeyError(const std::string& key, absl::string_view what, const Json& value) {
  return absl::InvalidArgumentError(absl::StrCat("sampling_parameters: key '", key, "' ", what,
                                                 ", got ", value.dump()));
}

absl::StatusOr<double> AsNumber(const std::string& key, const Json& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    double d = 0;
    if (absl::SimpleAtod(v.get<std::string>(), &d)) return d;
  }
  return KeyError(key, "must be a number", v);
}

absl::StatusOr<int64_t> AsInteger(const std::string& key, const Json& v, int64_t min,
                                  int64_t max) {
  int64_t i = 0;
  bool ok = false;
  if (v.is_number_integer() && !v.is_number_unsigned()) {
    i = v.get<int64_t>();
    ok = true;
  } else if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    ok = u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    i = static_cast<int64_t>(u);
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    ok = std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e18;
    i = static_cast<int64_t>(d);
  } else if (v.is_string()) {
    ok = absl::SimpleAtoi(v.get<std::string>(), &i);
  }
  if (!ok) return KeyError(key, "must be an integer", v);
  if (i < min || i > max) {
    return KeyError(key, absl::StrCat("must be in [", min, ", ", max, "]"), v);
  }
  return i;
}

absl::StatusOr<uint64_t> AsSeed(const std::string& key, const Json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_string()) {
    uint64_t u = 0;
    if (absl::SimpleAtoi(v.get<std::string>(), &u)) return u;
  }
  ASSIGN_OR_RETURN(int64_t i, AsInteger(key, v, 0, std::numeric_limits<int64_t>::max()));
  return static_cast<uint64_t>(i);
}

absl::StatusOr<bool> AsBool(const std::string& key, const Json& v) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i == 0 || i == 1) return i == 1;
  }
  if (v.is_string()) {
    const std::string s = absl::AsciiStrToLower(v.get<std::string>());
    if (s == "true") return true;
    if (s == "false") return false;
  }
  return KeyError(key, "must be a boolean", v);
}

absl::StatusOr<std::vector<std::string>> AsStringList(const std::string& key, const Json& v) {
  if (v.is_string()) return std::vector<std::string>{v.get<std::string>()};
  if (!v.is_array()) return KeyError(key, "must be a string or a list of strings", v);
  std::vector<std::string> out;
  for (const Json& e : v) {
    if (!e.is_string()) return KeyError(key, "must be a string or a list of strings", v);
    out.push_back(e.get<std::string>());
  }
  return out;
}

// A key Strata accepts only at the value that leaves vLLM's behaviour unchanged.
absl::Status RequireNeutral(const std::string& key, const Json& v) {
  bool neutral = false;
  if (key == "n" || key == "best_of") {
    neutral = v.is_number() && v.get<double>() == 1.0;
  } else if (key == "min_tokens" || key == "logprobs" || key == "prompt_logprobs") {
    neutral = v.is_number() && v.get<double>() == 0.0;
  } else if (key == "use_beam_search" || key == "include_stop_str_in_output") {
    neutral = v.is_boolean() && !v.get<bool>();
  } else if (key == "detokenize" || key == "spaces_between_special_tokens") {
    neutral = v.is_boolean() && v.get<bool>();
  } else if (key == "length_penalty") {
    neutral = v.is_number() && v.get<double>() == 1.0;
  }
  if (neutral) return absl::OkStatus();
  return KeyError(key, "is not supported by Strata except at its default value", v);
}

bool IsNeutralOnlyKey(const std::string& key) {
  return key == "n" || key == "best_of" || key == "min_tokens" || key == "logprobs" ||
         key == "prompt_logprobs" || key == "use_beam_search" ||
         key == "include_stop_str_in_output" || key == "detokenize" ||
         key == "spaces_between_special_tokens" || key == "length_penalty";
}

absl::Status ApplyKey(const std::string& key, const Json& v, GenerationRequest* r) {
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  SamplingParams& s = r->sampling;
  if (key == "max_tokens") {
    ASSIGN_OR_RETURN(int64_t i, AsInteger(key, v, 0, kInt32Max));
    r->max_tokens = static_cast<int32_t>(i);
  } else if (key == "temperature") {
    ASSIGN_OR_RETURN(double d, AsNumber(key, v));
    s.temperature = static_cast<float>(d);
  } else if (key == "top_p") {
    ASSIGN_OR_RETURN(double d, AsNumber(key, v));
    s.top_p = static_cast<float>(d);
  } else if (key == "min_p") {
    ASSIGN_OR_RETURN(double d, AsNumber(key, v));
    s.min_p = static_cast<float>(d);
  } else if (key == "top_k") {
    ASSIGN_OR_RETURN(int64_t i, AsInteger(key, v, -1, kInt32Max));
    s.top_k = i < 0 ? 0 : static_cast<int>(i);  // vLLM: -1 (or 0) = all tokens
  } else if (key == "seed") {
    ASSIGN_OR_RETURN(uint64_t u, AsSeed(key, v));
    s.seed = u;
  } else if (key == "repetition_penalty") {
    ASSIGN_OR_RETURN(double d, AsNumber(key, v));
    s.repetition_penalty = static_cast<float>(d);
  } else if (key == "presence_penalty") {
    ASSIGN_OR_RETURN(double d, AsNumber(key, v));
    s.presence_penalty = static_cast<float>(d);
  } else if (key == "frequency_penalty") {
    ASSIGN_OR_RETURN(double d, AsNumber(key, v));
    s.frequency_penalty = static_cast<float>(d);
  } else if (key == "stop") {
    ASSIGN_OR_RETURN(std::vector<std::string> stop, AsStringList(key, v));
    for (std::string& x : stop) r->stop.push_back(std::move(x));
  } else if (key == "stop_token_ids") {
    if (!v.is_array()) return KeyError(key, "must be a list of integers", v);
    for (const Json& e : v) {
      ASSIGN_OR_RETURN(int64_t i, AsInteger(key, e, 0, kInt32Max));
      r->stop_token_ids.push_back(static_cast<int32_t>(i));
    }
  } else if (key == "ignore_eos") {
    ASSIGN_OR_RETURN(r->ignore_eos, AsBool(key, v));
  } else if (key == "skip_special_tokens") {
    ASSIGN_OR_RETURN(r->skip_special_tokens, AsBool(key, v));
  } else if (IsNeutralOnlyKey(key)) {
    return RequireNeutral(key, v);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling_parameters: unknown key '", key, "'"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyVllmSamplingParameters(absl::string_view json, GenerationRequest* request) {
  const Json parsed = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling_parameters: not a JSON object: '", json.substr(0, 200), "'"));
  }
  for (auto it = parsed.begin(); it != parsed.end(); ++it) {
    if (it.value().is_null()) continue;  // vLLM: None keeps the default
    RETURN_IF_ERROR(ApplyKey(it.key(), it.value(), request));
  }
  return absl::OkStatus();
}

}  // namespace strata::coordinator
