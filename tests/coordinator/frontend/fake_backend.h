// Test double for the frontends' unit tests only: an InferenceBackend serving
// a model "tiny" (a real byte-level BPE Tokenizer built here, ChatML template)
// and "nochat" (same tokenizer, no supported chat template). Submit records
// the GenerationRequest and replays a scripted answer on a real RequestStream.
//
// Thread ownership: thread-safe (gRPC threads call it; the test thread
// scripts and inspects it).
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/unicode_bytes.h"
#include "coordinator/inference_backend.h"

namespace strata::coordinator::testing {

// One Submit's answer.
struct Script {
  std::vector<GenerationChunk> chunks;  // pushed at once; prompt_tokens filled in when 0
  absl::Status submit_error;            // returned by Submit instead of a stream
  absl::Status stream_error;            // Fail()ed after the chunks
  bool hold_open = false;               // never finish: only a Cancel ends it
};

inline GenerationChunk Chunk(std::string text, std::vector<int32_t> ids,
                             FinishReason finish = FinishReason::kNone,
                             int32_t completion_tokens = 0) {
  GenerationChunk c;
  c.text = std::move(text);
  c.token_ids = std::move(ids);
  c.finish = finish;
  c.completion_tokens = completion_tokens;
  return c;
}

// 256 byte symbols, a few merges, and ChatML specials; BOS added.
inline std::unique_ptr<Tokenizer> MakeTinyTokenizer() {
  VocabSpec spec;
  spec.kind = TokenizerKind::kByteLevelBpe;
  spec.pre = "gpt2";
  auto add = [&spec](const std::string& t, TokenType type) {
    spec.tokens.push_back(t);
    spec.token_types.push_back(type);
    return static_cast<int32_t>(spec.tokens.size() - 1);
  };
  for (int b = 0; b < 256; ++b) {
    add(tokenizer_internal::ByteToUnicode(static_cast<uint8_t>(b)), TokenType::kNormal);
  }
  spec.merges = {"h e", "l l", "he ll", "hell o"};
  add("he", TokenType::kNormal);
  add("ll", TokenType::kNormal);
  add("hell", TokenType::kNormal);
  add("hello", TokenType::kNormal);
  const int32_t eot = add("<|endoftext|>", TokenType::kControl);
  add("<|im_start|>", TokenType::kControl);
  add("<|im_end|>", TokenType::kControl);
  spec.bos_id = eot;
  spec.eos_id = eot;
  spec.add_bos = true;
  auto tok = Tokenizer::Create(spec);
  return tok.ok() ? std::move(*tok) : nullptr;
}

class FakeBackend : public InferenceBackend {
 public:
  FakeBackend() : tokenizer_(MakeTinyTokenizer()), chatml_(ChatFormat::kChatMl) {
    tiny_.name = "tiny";
    tiny_.tokenizer = tokenizer_.get();
    tiny_.chat_template = &chatml_;
    tiny_.context_length = 64;
    tiny_.vocab_size = tokenizer_ ? tokenizer_->vocab_size() : 0;
    tiny_.max_prompt_tokens = 63;
    tiny_.max_tokens = 32;
    nochat_ = tiny_;
    nochat_.name = "nochat";
    nochat_.chat_template = nullptr;
    nochat_.chat_template_error = "model 'nochat': chat template 'weird' is not supported";
  }

  const Tokenizer& tokenizer() const { return *tokenizer_; }

  // Scripts are consumed one per Submit, in order; when none is queued the
  // default one answers.
  void QueueScript(Script s) {
    absl::MutexLock lock(&mu_);
    scripts_.push_back(std::move(s));
  }
  void SetDefaultScript(Script s) {
    absl::MutexLock lock(&mu_);
    default_script_ = std::move(s);
  }
  void SetReady(bool ready) {
    absl::MutexLock lock(&mu_);
    ready_ = ready;
  }
  std::vector<GenerationRequest> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  // A copy of the i-th recorded request (bounds-checked by the caller).
  GenerationRequest request(size_t i) const {
    absl::MutexLock lock(&mu_);
    return requests_.at(i);
  }
  std::vector<std::string> submitted_models() const {
    absl::MutexLock lock(&mu_);
    return models_;
  }
  std::shared_ptr<RequestStream> stream(size_t i) const {
    absl::MutexLock lock(&mu_);
    return i < streams_.size() ? streams_[i] : nullptr;
  }
  // Bounded wait for the i-th submitted stream to be cancelled.
  bool WaitUntilCancelled(size_t i, absl::Duration timeout) const {
    const absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      std::shared_ptr<RequestStream> s = stream(i);
      if (s != nullptr && s->IsCancelled()) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }
  // Bounded wait for n Submit calls.
  bool WaitForSubmits(size_t n, absl::Duration timeout) const {
    const absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      if (requests().size() >= n) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }

  std::vector<ModelStatus> ListModels() const override {
    return {{"tiny", 64, tiny_.vocab_size, 1, 2}, {"nochat", 64, nochat_.vocab_size, 0, 1}};
  }
  absl::StatusOr<const ServedModel*> FindModel(absl::string_view name) const override {
    if (name == "tiny") return &tiny_;
    if (name == "nochat") return &nochat_;
    if (name.empty()) return absl::InvalidArgumentError("model: several models are served, name one");
    return absl::NotFoundError(absl::StrCat("model '", name, "' is not served"));
  }
  bool IsModelReady(absl::string_view model) const override { return model == "tiny"; }
  bool IsReady() const override {
    absl::MutexLock lock(&mu_);
    return ready_;
  }
  absl::StatusOr<std::shared_ptr<RequestStream>> Submit(absl::string_view model,
                                                        GenerationRequest request) override {
    absl::MutexLock lock(&mu_);
    if (model != "tiny" && model != "nochat") {
      return absl::NotFoundError(absl::StrCat("model '", model, "' is not served"));
    }
    Script script = default_script_;
    if (!scripts_.empty()) {
      script = std::move(scripts_.front());
      scripts_.pop_front();
    }
    const int32_t prompt_tokens = static_cast<int32_t>(request.prompt.size());
    requests_.push_back(std::move(request));
    models_.emplace_back(model);
    if (!script.submit_error.ok()) return script.submit_error;
    auto stream = std::make_shared<RequestStream>();
    for (GenerationChunk& c : script.chunks) {
      if (c.prompt_tokens == 0) c.prompt_tokens = prompt_tokens;
      stream->Push(std::move(c));
    }
    if (!script.stream_error.ok()) stream->Fail(script.stream_error);
    streams_.push_back(stream);
    return stream;
  }

 private:
  std::unique_ptr<Tokenizer> tokenizer_;
  ChatTemplate chatml_;
  ServedModel tiny_;
  ServedModel nochat_;
  mutable absl::Mutex mu_;
  std::deque<Script> scripts_ ABSL_GUARDED_BY(mu_);
  Script default_script_ ABSL_GUARDED_BY(mu_);
  bool ready_ ABSL_GUARDED_BY(mu_) = true;
  std::vector<GenerationRequest> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> models_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<RequestStream>> streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata::coordinator::testing
