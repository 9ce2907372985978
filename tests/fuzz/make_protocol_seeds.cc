// Writes the seed corpora for the protocol fuzzers: small valid messages as
// clients and workers send them, so the fuzzers start deep inside the
// decoders rather than from random bytes.
//   make_protocol_seeds KSERVE_DIR JSON_DIR STRATA_DIR WORKER_DIR
#include <cstdint>
#include <cstdio>
#include <string>

#include "inference/grpc_service.pb.h"
#include "strata/v1/strata.pb.h"
#include "strata/v1/worker.pb.h"

namespace {

void Write(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    std::perror(path.c_str());
    return;
  }
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

// A BYTES tensor's raw contents: each element as a 4-byte little-endian
// length and its bytes.
std::string RawBytes(const std::string& s) {
  std::string out(4, '\0');
  const uint32_t n = static_cast<uint32_t>(s.size());
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + s;
}

void KServeSeeds(const std::string& dir) {
  inference::ModelInferRequest r;
  r.set_model_name("m");
  auto* text = r.add_inputs();
  text->set_name("text_input");
  text->set_datatype("BYTES");
  text->add_shape(1);
  auto* params = r.add_inputs();
  params->set_name("sampling_parameters");
  params->set_datatype("BYTES");
  params->add_shape(1);
  auto* stream = r.add_inputs();
  stream->set_name("stream");
  stream->set_datatype("BOOL");
  stream->add_shape(1);
  r.add_raw_input_contents(RawBytes("The capital of France is"));
  r.add_raw_input_contents(RawBytes(R"({"max_tokens": 16, "temperature": 0.7, "stop": ["\n"]})"));
  r.add_raw_input_contents(std::string(1, '\1'));
  Write(dir + "/raw_contents.bin", r.SerializeAsString());

  inference::ModelInferRequest typed;
  typed.set_model_name("m");
  auto* t = typed.add_inputs();
  t->set_name("text_input");
  t->set_datatype("BYTES");
  t->add_shape(1);
  t->add_shape(1);
  t->mutable_contents()->add_bytes_contents("hello");
  auto* max_tokens = typed.add_inputs();
  max_tokens->set_name("max_tokens");
  max_tokens->set_datatype("INT32");
  max_tokens->add_shape(1);
  max_tokens->mutable_contents()->add_int_contents(8);
  auto* stop = typed.add_inputs();
  stop->set_name("stop_words");
  stop->set_datatype("BYTES");
  stop->add_shape(2);
  stop->mutable_contents()->add_bytes_contents("END");
  stop->mutable_contents()->add_bytes_contents("");
  (*typed.mutable_parameters())["temperature"].set_double_param(0.5);
  (*typed.mutable_parameters())["sampling_parameters"].set_string_param(R"({"top_k": 40})");
  (*typed.mutable_parameters())["parse_special_tokens"].set_bool_param(true);
  typed.add_outputs()->set_name("text_output");
  Write(dir + "/typed_contents.bin", typed.SerializeAsString());
}

void JsonSeeds(const std::string& dir) {
  Write(dir + "/full.json",
        R"({"max_tokens": 32, "temperature": 0.8, "top_p": 0.95, "top_k": 40, "min_p": 0.05, "seed": 7,)"
        R"( "repetition_penalty": 1.1, "presence_penalty": 0.5, "frequency_penalty": 0.2,)"
        R"( "stop": ["\n\n", "END"], "stop_token_ids": [2, 7], "ignore_eos": false,)"
        R"( "skip_special_tokens": true, "n": 1, "min_tokens": 0, "parse_special_tokens": "false"})");
  Write(dir + "/strings.json", R"({"temperature": "0.7", "max_tokens": "12", "ignore_eos": 1, "stop": "x"})");
  Write(dir + "/nulls.json", R"({"temperature": null, "stop": null})");
}

void StrataSeeds(const std::string& dir) {
  strata::v1::GenerateRequest g;
  g.set_model("m");
  g.set_text("Once upon a time");
  g.set_max_tokens(16);
  g.add_stop("\n");
  g.add_stop_token_ids(2);
  g.set_request_id("req-1");
  g.mutable_sampling()->set_temperature(0.7f);
  Write(dir + "/generate_text.bin", std::string(1, '\0') + g.SerializeAsString());
  strata::v1::GenerateRequest chat;
  auto* m = chat.mutable_chat()->add_messages();
  m->set_role("user");
  m->set_content("<|im_start|>system\nhi");
  Write(dir + "/generate_chat.bin", std::string(1, '\0') + chat.SerializeAsString());
  strata::v1::TokenizeRequest tok;
  tok.set_model("m");
  tok.set_text("hello");
  Write(dir + "/tokenize.bin", std::string(1, '\1') + tok.SerializeAsString());
}

void WorkerSeeds(const std::string& dir) {
  namespace wire = ::strata::worker::v1;
  wire::WorkerMessage reg;
  auto* r = reg.mutable_register_();
  r->set_protocol_version(1);
  r->set_tp_size(1);
  r->set_pp_size(1);
  r->set_device("cpu");
  r->set_kv_capacity_blocks(1024);
  r->set_block_size(16);
  r->mutable_model()->set_name("m");
  r->mutable_model()->set_fingerprint("size:1-fnv1a64:0000000000000000");
  r->mutable_model()->set_vocab_size(49152);
  r->mutable_model()->set_num_layers(30);
  r->mutable_model()->set_context_length(8192);
  Write(dir + "/register.bin", reg.SerializeAsString());
  wire::WorkerMessage result;
  auto* s = result.mutable_step_result();
  s->set_step_id(1);
  auto* t = s->add_tokens();
  t->set_seq_id(1);
  t->set_token_id(42);
  t->set_logprob(-0.5f);
  s->set_execute_micros(1500);
  Write(dir + "/step_result.bin", result.SerializeAsString());
  wire::WorkerMessage error;
  auto* e = error.mutable_step_result();
  e->set_step_id(1);
  e->mutable_error()->set_code(8);
  e->mutable_error()->set_message("out of blocks");
  e->mutable_error()->add_seq_ids(2);
  Write(dir + "/step_error.bin", error.SerializeAsString());
  wire::WorkerMessage leave;
  leave.mutable_leave()->set_reason("SIGTERM received");
  Write(dir + "/leave.bin", leave.SerializeAsString());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: make_protocol_seeds KSERVE_DIR JSON_DIR STRATA_DIR WORKER_DIR\n");
    return 2;
  }
  KServeSeeds(argv[1]);
  JsonSeeds(argv[2]);
  StrataSeeds(argv[3]);
  WorkerSeeds(argv[4]);
  return 0;
}
