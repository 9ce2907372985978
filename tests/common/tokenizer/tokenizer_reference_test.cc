// Cross-check against Hugging Face `tokenizers` and jinja2:
// make_reference.py rebuilds SmolLM2's tokenizer from the default model's
// GGUF vocab + merges, trains a small Llama-3-style byte-level BPE and a
// small SentencePiece-style BPE, writes them as tokenizer.json (and GGUF),
// and records the ids HF produces for a varied text set and the chat
// templates' Jinja renderings. Our FromGguf and FromHfFile tokenizers must
// produce the same ids, and decoding must give the text back.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/format/gguf_file.h"
#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/tokenizer.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Runs the script once per process; every test reads its output.
class Reference {
 public:
  static Reference& Get() {
    static Reference* r = new Reference();
    return *r;
  }
  std::string error;  // non-empty when the script could not run
  std::string skip;   // non-empty when the reference is unavailable here
  json expected;

 private:
  Reference() {
    const std::string python = STRATA_PYTHON;
    if (!fs::exists(python)) {
      (std::getenv("CI") ? error : skip) = "reference Python not found at " + python + "; run scripts/setup.sh";
      return;
    }
    const std::string dir =
        (fs::path(::testing::TempDir()) / ("strata_tokenizer_ref_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir);
    const std::string cmd = "timeout 120 '" + python + "' '" STRATA_SOURCE_DIR
                            "/tests/common/tokenizer/make_reference.py' '" + dir + "' '" STRATA_DEFAULT_MODEL "'";
    const int rc = std::system(cmd.c_str());
    if (!(WIFEXITED(rc) && WEXITSTATUS(rc) == 0)) {
      error = "failed (rc " + std::to_string(rc) + "): " + cmd;
      return;
    }
    std::ifstream in(dir + "/expected.json");
    expected = json::parse(in);
    std::atexit([] { fs::remove_all(fs::path(::testing::TempDir()) /
                                    ("strata_tokenizer_ref_" + std::to_string(::getpid()))); });
  }
};

#define REQUIRE_REFERENCE()                                   \
  const Reference& ref = Reference::Get();                    \
  ASSERT_TRUE(ref.error.empty()) << ref.error;                \
  if (!ref.skip.empty()) {                                    \
    GTEST_SKIP() << ref.skip;                                 \
  }

std::string Ids(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

// Compares one of our tokenizers with HF's ids for every text.
void CheckAgainst(const Tokenizer& tok, const json& want, const json& texts, const std::string& what,
                  bool sentencepiece) {
  int mismatches = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string text = texts[i];
    const std::vector<int32_t> expected = want["ids"][i].get<std::vector<int32_t>>();
    const std::vector<int32_t> got = tok.Encode(text, /*add_special=*/false, /*parse_special=*/true);
    if (got != expected && ++mismatches <= 5) {
      ADD_FAILURE() << what << " text[" << i << "] '" << text << "'\n  want " << Ids(expected) << "\n  got  "
                    << Ids(got);
    }
    // Decoding: byte-level gives the text back byte for byte; SentencePiece
    // gives what HF's decoder gives (the prefix space after a special token
    // stays, as in SentencePiece itself).
    const std::string decoded = tok.Decode(got, /*skip_special=*/sentencepiece);
    EXPECT_EQ(decoded, want["decoded"][i].get<std::string>()) << what << " decode of text[" << i << "]";
    if (!sentencepiece) {
      EXPECT_EQ(decoded, text) << what << " round trip of text[" << i << "]";
    }
    if (want.contains("with_bos")) {
      EXPECT_EQ(tok.Encode(text, /*add_special=*/true, true), want["with_bos"][i].get<std::vector<int32_t>>())
          << what << " with BOS, text[" << i << "]";
    }
  }
  EXPECT_EQ(mismatches, 0) << what;
}

void CheckTokenizer(const std::string& name, bool sentencepiece) {
  REQUIRE_REFERENCE();
  if (!ref.expected["tokenizers"].contains(name)) {
    if (std::getenv("CI")) FAIL() << "default model missing at " STRATA_DEFAULT_MODEL;
    GTEST_SKIP() << "default model not found at " STRATA_DEFAULT_MODEL << "; run scripts/setup.sh";
  }
  const json& want = ref.expected["tokenizers"][name];
  auto hf = Tokenizer::FromHfFile(want["tokenizer_json"]);
  ASSERT_TRUE(hf.ok()) << hf.status();
  CheckAgainst(**hf, want, ref.expected["texts"], name + " FromHfFile", sentencepiece);

  auto gguf = GgufFile::Open(want["gguf"]);
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  auto tok = Tokenizer::FromGguf(**gguf);
  ASSERT_TRUE(tok.ok()) << tok.status();
  CheckAgainst(**tok, want, ref.expected["texts"], name + " FromGguf", sentencepiece);
  EXPECT_EQ((*tok)->vocab_size(), (*hf)->vocab_size());
  EXPECT_EQ((*tok)->bos_id(), (*hf)->bos_id());
  EXPECT_EQ((*tok)->add_bos(), (*hf)->add_bos());
  EXPECT_EQ((*tok)->eos_id(), (*hf)->eos_id());
  EXPECT_TRUE((*tok)->IsEndOfGeneration((*tok)->eos_id()));
  if (!(*hf)->chat_template().empty()) {
    EXPECT_EQ((*tok)->chat_template(), (*hf)->chat_template());
  }
}

TEST(TokenizerReferenceTest, SmolLM2MatchesHuggingFace) { CheckTokenizer("smollm", false); }
TEST(TokenizerReferenceTest, Llama3StyleMatchesHuggingFace) { CheckTokenizer("llama3", false); }
TEST(TokenizerReferenceTest, SentencePieceMatchesHuggingFace) { CheckTokenizer("spm", true); }

TEST(TokenizerReferenceTest, ChatTemplatesMatchJinja) {
  REQUIRE_REFERENCE();
  ASSERT_GT(ref.expected["chat"].size(), 0u);
  for (const json& c : ref.expected["chat"]) {
    auto tmpl = ChatTemplate::FromJinja(c["template"]);
    ASSERT_TRUE(tmpl.ok()) << c["template_name"] << ": " << tmpl.status();
    std::vector<ChatMessage> messages;
    for (const json& m : c["messages"]) messages.push_back({m["role"], m["content"]});
    EXPECT_EQ(tmpl->Apply(messages, c["add_generation_prompt"]), c["expected"].get<std::string>())
        << c["template_name"] << " with " << c["messages"].dump() << " gen=" << c["add_generation_prompt"];
  }
}

}  // namespace
}  // namespace strata
