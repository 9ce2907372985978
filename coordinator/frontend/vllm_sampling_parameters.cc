#include "coordinator/frontend/vllm_sampling_parameters.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/frontend/quote.h"
#include "nlohmann/json.hpp"

namespace strata::coordinator::frontend {
namespace {

using Json = nlohmann::json;

// One key and how messages name it: "sampling_parameters: key 'top_p'" or
// "parameter 'top_p'".
struct Key {
  std::string name;
  std::string label;
};

absl::Status KeyError(const Key& key, absl::string_view what, const Json& value) {
  // replace: a dump never throws on invalid UTF-8; quoted: never unbounded.
  return absl::InvalidArgumentError(absl::StrCat(
      key.label, " ", what, ", got ",
      QuoteForError(value.dump(-1, ' ', false, Json::error_handler_t::replace))));
}

absl::StatusOr<double> AsNumber(const Key& key, const Json& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    double d = 0;
    if (absl::SimpleAtod(v.get<std::string>(), &d)) return d;
  }
  return KeyError(key, "must be a number", v);
}

absl::StatusOr<int64_t> AsInteger(const Key& key, const Json& v, int64_t min, int64_t max) {
  int64_t i = 0;
  bool ok = false;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    ok = u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    i = static_cast<int64_t>(u);
  } else if (v.is_number_integer()) {
    i = v.get<int64_t>();
    ok = true;
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    ok = std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e18;
    // Cast only in range: converting 5e30 to int64_t is undefined (found by
    // the sampling_parameters fuzzer).
    if (ok) i = static_cast<int64_t>(d);
  } else if (v.is_string()) {
    ok = absl::SimpleAtoi(v.get<std::string>(), &i);
  }
  if (!ok) return KeyError(key, "must be an integer", v);
  if (i < min || i > max) return KeyError(key, absl::StrCat("must be in [", min, ", ", max, "]"), v);
  return i;
}

absl::StatusOr<uint64_t> AsSeed(const Key& key, const Json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_string()) {
    uint64_t u = 0;
    if (absl::SimpleAtoi(v.get<std::string>(), &u)) return u;
  }
  ASSIGN_OR_RETURN(int64_t i, AsInteger(key, v, 0, std::numeric_limits<int64_t>::max()));
  return static_cast<uint64_t>(i);
}

absl::StatusOr<bool> AsBool(const Key& key, const Json& v) {
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

absl::StatusOr<std::vector<std::string>> AsStringList(const Key& key, const Json& v) {
  if (v.is_string()) return std::vector<std::string>{v.get<std::string>()};
  if (!v.is_array()) return KeyError(key, "must be a string or a list of strings", v);
  std::vector<std::string> out;
  for (const Json& e : v) {
    if (!e.is_string()) return KeyError(key, "must be a string or a list of strings", v);
    out.push_back(e.get<std::string>());
  }
  return out;
}

bool IsNeutralOnlyKey(absl::string_view key) {
  return key == "n" || key == "best_of" || key == "logprobs" ||
         key == "prompt_logprobs" || key == "use_beam_search" ||
         key == "include_stop_str_in_output" || key == "detokenize" ||
         key == "spaces_between_special_tokens" || key == "length_penalty";
}

// A key Strata accepts only at the value that leaves vLLM's behaviour unchanged.
absl::Status RequireNeutral(const Key& key, const Json& v) {
  const std::string& k = key.name;
  bool neutral = false;
  if (k == "n" || k == "best_of" || k == "length_penalty") {
    neutral = v.is_number() && v.get<double>() == 1.0;
  } else if (k == "logprobs" || k == "prompt_logprobs") {
    neutral = v.is_number() && v.get<double>() == 0.0;
  } else if (k == "use_beam_search" || k == "include_stop_str_in_output") {
    neutral = v.is_boolean() && !v.get<bool>();
  } else if (k == "detokenize" || k == "spaces_between_special_tokens") {
    neutral = v.is_boolean() && v.get<bool>();
  }
  if (neutral) return absl::OkStatus();
  return KeyError(key, "is not supported by Strata except at its default value", v);
}

absl::Status ApplyKey(const Key& key, const Json& v, GenerationRequest* r, bool* parse_special_tokens) {
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  const std::string& k = key.name;
  SamplingParams& s = r->sampling;
  if (v.is_null()) return absl::OkStatus();  // vLLM: None keeps the default
  if (k == "max_tokens") {
    ASSIGN_OR_RETURN(int64_t i, AsInteger(key, v, 0, kInt32Max));
    r->max_tokens = static_cast<int32_t>(i);
  } else if (k == "min_tokens") {
    ASSIGN_OR_RETURN(int64_t i, AsInteger(key, v, 0, kInt32Max));
    r->min_tokens = static_cast<int32_t>(i);
  } else if (k == "temperature") {
    ASSIGN_OR_RETURN(double d, AsNumber(key, v));
    s.temperature = static_cast<float>(d);
  } else if (k == "top_p") {
    ASSIGN_OR_RETURN(double d, AsNumber(key, v));
    s.top_p = static_cast<float>(d);
  } else if (k == "min_p") {
    ASSIGN_OR_RETURN(double d, AsNumber(key, v));
    s.min_p = static_cast<float>(d);
  } else if (k == "top_k") {
    ASSIGN_OR_RETURN(int64_t i, AsInteger(key, v, -1, kInt32Max));
    s.top_k = i < 0 ? 0 : static_cast<int>(i);  // vLLM: -1 (or 0) = all tokens
  } else if (k == "seed") {
    ASSIGN_OR_RETURN(uint64_t u, AsSeed(key, v));
    s.seed = u;
  } else if (k == "repetition_penalty") {
    ASSIGN_OR_RETURN(double d, AsNumber(key, v));
    s.repetition_penalty = static_cast<float>(d);
  } else if (k == "presence_penalty") {
    ASSIGN_OR_RETURN(double d, AsNumber(key, v));
    s.presence_penalty = static_cast<float>(d);
  } else if (k == "frequency_penalty") {
    ASSIGN_OR_RETURN(double d, AsNumber(key, v));
    s.frequency_penalty = static_cast<float>(d);
  } else if (k == "stop") {
    ASSIGN_OR_RETURN(std::vector<std::string> stop, AsStringList(key, v));
    for (std::string& x : stop) {
      if (x.empty()) return KeyError(key, "must not contain an empty string", v);
      r->stop.push_back(std::move(x));
    }
  } else if (k == "stop_token_ids") {
    if (!v.is_array()) return KeyError(key, "must be a list of integers", v);
    for (const Json& e : v) {
      ASSIGN_OR_RETURN(int64_t i, AsInteger(key, e, 0, kInt32Max));
      r->stop_token_ids.push_back(static_cast<int32_t>(i));
    }
  } else if (k == "ignore_eos") {
    ASSIGN_OR_RETURN(r->ignore_eos, AsBool(key, v));
  } else if (k == "skip_special_tokens") {
    ASSIGN_OR_RETURN(r->skip_special_tokens, AsBool(key, v));
  } else if (k == "parse_special_tokens") {
    ASSIGN_OR_RETURN(bool b, AsBool(key, v));
    if (parse_special_tokens != nullptr) *parse_special_tokens = b;
  } else if (IsNeutralOnlyKey(k)) {
    return RequireNeutral(key, v);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(key.label, " is not a known sampling key"));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsVllmSamplingKey(absl::string_view key) {
  return key == "max_tokens" || key == "min_tokens" || key == "temperature" || key == "top_p" || key == "min_p" ||
         key == "top_k" || key == "seed" || key == "repetition_penalty" ||
         key == "presence_penalty" || key == "frequency_penalty" || key == "stop" ||
         key == "stop_token_ids" || key == "ignore_eos" || key == "skip_special_tokens" ||
         key == "parse_special_tokens" || IsNeutralOnlyKey(key);
}

absl::Status ApplyVllmSamplingParameters(absl::string_view json, GenerationRequest* request,
                                         bool* parse_special_tokens) {
  const Json parsed = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling_parameters: not a JSON object: ", QuoteForError(json)));
  }
  for (auto it = parsed.begin(); it != parsed.end(); ++it) {
    const Key key{it.key(), absl::StrCat("sampling_parameters: key ", QuoteForError(it.key()))};
    if (!IsVllmSamplingKey(it.key())) {
      return absl::InvalidArgumentError(absl::StrCat("sampling_parameters: unknown key ",
                                                     QuoteForError(it.key())));
    }
    RETURN_IF_ERROR(ApplyKey(key, it.value(), request, parse_special_tokens));
  }
  return absl::OkStatus();
}

absl::Status ApplyVllmSamplingParameter(absl::string_view name,
                                        const inference::InferParameter& value,
                                        GenerationRequest* request, bool* parse_special_tokens) {
  const Key key{std::string(name), absl::StrCat("parameter ", QuoteForError(name))};
  Json v;
  switch (value.parameter_choice_case()) {
    case inference::InferParameter::kBoolParam:
      v = value.bool_param();
      break;
    case inference::InferParameter::kInt64Param:
      v = value.int64_param();
      break;
    case inference::InferParameter::kUint64Param:
      v = value.uint64_param();
      break;
    case inference::InferParameter::kDoubleParam:
      v = value.double_param();
      break;
    case inference::InferParameter::kStringParam:
      // stop_token_ids as a string holds a JSON list ("[1, 2]"); other keys
      // take the string as vLLM would (numbers in strings are accepted).
      if (name == "stop_token_ids") {
        v = Json::parse(value.string_param(), nullptr, /*allow_exceptions=*/false);
        if (v.is_discarded()) v = value.string_param();
      } else {
        v = value.string_param();
      }
      break;
    case inference::InferParameter::PARAMETER_CHOICE_NOT_SET:
      return absl::OkStatus();
  }
  return ApplyKey(key, v, request, parse_special_tokens);
}

}  // namespace strata::coordinator::frontend
