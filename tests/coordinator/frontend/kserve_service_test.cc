// KServe v2 frontend end to end: a real grpc::Server with KServeService over a
// FakeBackend, called through the generated stubs. Proves the request mapping
// (raw and typed contents, both sampling conventions), every INVALID_ARGUMENT
// names its field, model/version lookup, decoupled response placement, error
// messages on the stream, cancellation and deadlines.
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/coordinator/frontend/kserve_request_builder.h"
#include "tests/coordinator/frontend/test_server.h"

namespace strata::coordinator::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using StreamRW = grpc::ClientReaderWriter<inference::ModelInferRequest,
                                          inference::ModelStreamInferResponse>;

class KServeServiceTest : public FrontendServerTest {
 protected:
  void SetUp() override {
    FrontendServerTest::SetUp();
    stub_ = inference::GRPCInferenceService::NewStub(channel_);
  }

  grpc::Status Infer(const inference::ModelInferRequest& req, inference::ModelInferResponse* resp) {
    grpc::ClientContext ctx;
    Bound(ctx);
    return stub_->ModelInfer(&ctx, req, resp);
  }

  // Sends the requests on one stream, closes its writing side and reads every
  // response until the server ends the call.
  std::vector<inference::ModelStreamInferResponse> StreamAll(
      const std::vector<inference::ModelInferRequest>& requests) {
    grpc::ClientContext ctx;
    Bound(ctx);
    std::unique_ptr<StreamRW> rw = stub_->ModelStreamInfer(&ctx);
    for (const auto& r : requests) EXPECT_TRUE(rw->Write(r));
    rw->WritesDone();
    std::vector<inference::ModelStreamInferResponse> out;
    inference::ModelStreamInferResponse resp;
    while (rw->Read(&resp)) out.push_back(resp);
    const grpc::Status s = rw->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  std::vector<int32_t> Prompt(const std::string& text) {
    return backend_.tokenizer().Encode(text, true, true);
  }

  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

Script Abc() {
  Script s;
  s.chunks = {Chunk("a", {97}, FinishReason::kNone, 1), Chunk("b", {98}, FinishReason::kNone, 2),
              Chunk("c", {99}, FinishReason::kStop, 3)};
  return s;
}

// ---- request mapping

TEST_F(KServeServiceTest, RawInputsTensorRtLlmConvention) {
  Script s;
  s.chunks = {Chunk("wor", {1, 2}, FinishReason::kNone, 2), Chunk("ld", {3}, FinishReason::kLength, 3)};
  backend_.QueueScript(s);
  InferRequestBuilder b(/*raw=*/true);
  b.Id("req-7").Text("hello world").Int32("max_tokens", 7).Fp32("temperature", 0.5f)
      .Int32("top_k", 3).Fp32("top_p", 0.875f).Uint64("random_seed", 1ull << 40)
      .Fp32("min_p", 0.125f).Fp32("repetition_penalty", 1.25f).Fp32("presence_penalty", 0.5f)
      .Fp32("frequency_penalty", -0.25f).Bytes("stop_words", {"x", "", "yz"}).Int32("end_id", 5)
      .Bytes("bad_words", {""}, {1, 1}).Int32("pad_id", 2).Bool("return_log_probs", false)
      .Int32("num_return_sequences", 1).Fp32("length_penalty", 1.0f)
      .Bool("exclude_input_in_output", true).Bool("return_num_input_tokens", true)
      .Bool("return_num_output_tokens", true).Bool("return_finish_reason", true)
      .Int32("beam_width", 1).Int64Param("sequence_id", 3).Int64Param("priority", 2);
  inference::ModelInferResponse resp;
  const grpc::Status st = Infer(b.Build(), &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();

  ASSERT_EQ(backend_.requests().size(), 1u);
  const GenerationRequest g = backend_.request(0);
  EXPECT_EQ(g.request_id, "req-7");
  EXPECT_EQ(g.prompt, Prompt("hello world"));
  EXPECT_EQ(g.prompt.front(), backend_.tokenizer().bos_id());
  EXPECT_EQ(g.max_tokens, 7);
  EXPECT_EQ(g.sampling.temperature, 0.5f);
  EXPECT_EQ(g.sampling.top_k, 3);
  EXPECT_EQ(g.sampling.top_p, 0.875f);
  ASSERT_TRUE(g.sampling.seed.has_value());
  EXPECT_EQ(*g.sampling.seed, 1ull << 40);
  EXPECT_EQ(g.sampling.min_p, 0.125f);
  EXPECT_EQ(g.sampling.repetition_penalty, 1.25f);
  EXPECT_EQ(g.sampling.presence_penalty, 0.5f);
  EXPECT_EQ(g.sampling.frequency_penalty, -0.25f);
  EXPECT_THAT(g.stop, ElementsAre("x", "yz"));
  EXPECT_THAT(g.stop_token_ids, ElementsAre(5));
  EXPECT_FALSE(g.ignore_eos);
  EXPECT_TRUE(g.skip_special_tokens);
  EXPECT_EQ(g.deadline == absl::InfiniteFuture(), false);  // the client's deadline

  EXPECT_EQ(resp.model_name(), "tiny");
  EXPECT_EQ(resp.id(), "req-7");
  EXPECT_EQ(OutputText(resp), "world");  // exclude_input_in_output
  EXPECT_EQ(OutputText(resp, "finish_reason"), "length");
  EXPECT_EQ(OutputUint32(resp, "num_input_tokens"), Prompt("hello world").size());
  EXPECT_EQ(OutputUint32(resp, "num_output_tokens"), 3u);
  EXPECT_EQ(resp.outputs_size(), resp.raw_output_contents_size());
  EXPECT_EQ(resp.outputs(OutputIndex(resp, "text_output")).datatype(), "BYTES");
}

TEST_F(KServeServiceTest, TypedInputsVllmConvention) {
  backend_.QueueScript(Abc());
  InferRequestBuilder b(/*raw=*/false);
  b.Text("hello").Bool("stream", false).Bytes("sampling_parameters",
      {R"({"temperature": "0.7", "top_p": 0.95, "top_k": -1, "max_tokens": "12", "seed": 7,
          "stop": "END", "ignore_eos": true, "skip_special_tokens": false,
          "repetition_penalty": 1.1, "presence_penalty": null, "min_p": 0.05,
          "stop_token_ids": [9, 10], "n": 1, "frequency_penalty": 0.5})"});
  inference::ModelInferResponse resp;
  const grpc::Status st = Infer(b.Build(), &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(backend_.requests().size(), 1u);
  const GenerationRequest g = backend_.request(0);
  EXPECT_EQ(g.prompt, Prompt("hello"));
  EXPECT_FLOAT_EQ(g.sampling.temperature, 0.7f);
  EXPECT_FLOAT_EQ(g.sampling.top_p, 0.95f);
  EXPECT_EQ(g.sampling.top_k, 0);
  EXPECT_EQ(g.max_tokens, 12);
  EXPECT_EQ(g.sampling.seed, 7u);
  EXPECT_THAT(g.stop, ElementsAre("END"));
  EXPECT_TRUE(g.ignore_eos);
  EXPECT_FALSE(g.skip_special_tokens);
  EXPECT_FLOAT_EQ(g.sampling.repetition_penalty, 1.1f);
  EXPECT_EQ(g.sampling.presence_penalty, 0.0f);
  EXPECT_FLOAT_EQ(g.sampling.min_p, 0.05f);
  EXPECT_FLOAT_EQ(g.sampling.frequency_penalty, 0.5f);
  EXPECT_THAT(g.stop_token_ids, ElementsAre(9, 10));
  // exclude_input_in_output defaults to false: the prompt text comes first, as
  // the vLLM backend does; only text_output unless more is asked for.
  EXPECT_EQ(OutputText(resp), "helloabc");
  EXPECT_EQ(resp.outputs_size(), 1);
}

TEST_F(KServeServiceTest, RawAndTypedContentsParseTheSame) {
  for (bool raw : {true, false}) {
    backend_.QueueScript(Abc());
    InferRequestBuilder b(raw);
    b.Text("hello").Bytes("sampling_parameters", {R"({"max_tokens": 4, "stop": ["a", "b"]})"})
        .Fp32("temperature", 0.0f).Bytes("stop_words", {"zz"}, {1, 1});
    b.request().mutable_inputs(0)->clear_shape();
    b.request().mutable_inputs(0)->add_shape(1);
    b.request().mutable_inputs(0)->add_shape(1);  // text_input [1,1] as TRT-LLM clients send
    inference::ModelInferResponse resp;
    const grpc::Status st = Infer(b.Build(), &resp);
    ASSERT_TRUE(st.ok()) << (raw ? "raw: " : "typed: ") << st.error_message();
  }
  ASSERT_EQ(backend_.requests().size(), 2u);
  const std::vector<GenerationRequest> all = backend_.requests();
  for (const GenerationRequest& g : all) {
    EXPECT_EQ(g.max_tokens, 4);
    EXPECT_EQ(g.sampling.temperature, 0.0f);
    EXPECT_THAT(g.stop, ElementsAre("a", "b", "zz"));
    EXPECT_EQ(g.prompt, Prompt("hello"));
  }
}

TEST_F(KServeServiceTest, SeparateTensorsOverrideTheJson) {
  backend_.QueueScript(Abc());
  InferRequestBuilder b(/*raw=*/true);
  b.Text("hi").Bytes("sampling_parameters", {R"({"max_tokens": 10, "top_k": 4})"})
      .Int32("max_tokens", 20).Int32("runtime_top_k", 2).Fp32("runtime_top_p", 0.5f);
  inference::ModelInferResponse resp;
  ASSERT_TRUE(Infer(b.Build(), &resp).ok());
  const GenerationRequest g = backend_.request(0);
  EXPECT_EQ(g.max_tokens, 20);
  EXPECT_EQ(g.sampling.top_k, 2);
  EXPECT_EQ(g.sampling.top_p, 0.5f);
}

TEST_F(KServeServiceTest, SamplingParametersAsRequestParameter) {
  backend_.QueueScript(Abc());
  InferRequestBuilder b(/*raw=*/true);
  b.Text("hi").StringParam("sampling_parameters", R"({"max_tokens": 3, "temperature": 0})")
      .StringParam("some_unknown_parameter", "ignored");
  inference::ModelInferResponse resp;
  const grpc::Status st = Infer(b.Build(), &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(backend_.request(0).max_tokens, 3);
  EXPECT_EQ(backend_.request(0).sampling.temperature, 0.0f);
}

TEST_F(KServeServiceTest, SamplingKeysAsRequestParameters) {
  backend_.QueueScript(Abc());
  InferRequestBuilder b(/*raw=*/true);
  b.Text("hi").Int64Param("max_tokens", 5).StringParam("top_p", "0.5").BoolParam("ignore_eos", true)
      .StringParam("stop", "STOP").Int64Param("seed", 11);
  (*b.request().mutable_parameters())["temperature"].set_double_param(0.25);
  inference::ModelInferResponse resp;
  const grpc::Status st = Infer(b.Build(), &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const GenerationRequest g = backend_.request(0);
  EXPECT_EQ(g.max_tokens, 5);
  EXPECT_EQ(g.sampling.top_p, 0.5f);
  EXPECT_EQ(g.sampling.temperature, 0.25f);
  EXPECT_TRUE(g.ignore_eos);
  EXPECT_THAT(g.stop, ElementsAre("STOP"));
  EXPECT_EQ(g.sampling.seed, 11u);

  InferRequestBuilder bad(/*raw=*/true);
  bad.Text("hi").BoolParam("temperature", true);
  const grpc::Status st2 = Infer(bad.Build(), &resp);
  EXPECT_EQ(st2.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st2.error_message(), HasSubstr("parameter 'temperature'"));
}

TEST_F(KServeServiceTest, RequestedOutputsAreRespected) {
  backend_.QueueScript(Abc());
  InferRequestBuilder b(/*raw=*/true);
  b.Text("hi").Output("num_output_tokens");
  inference::ModelInferResponse resp;
  ASSERT_TRUE(Infer(b.Build(), &resp).ok());
  ASSERT_EQ(resp.outputs_size(), 1);
  EXPECT_EQ(resp.outputs(0).name(), "num_output_tokens");
  EXPECT_EQ(OutputUint32(resp, "num_output_tokens"), 3u);
}

// ---- invalid input

struct BadCase {
  const char* what;
  std::function<void(InferRequestBuilder&)> build;
  const char* names;  // the field the message must name
};

TEST_F(KServeServiceTest, InvalidArgumentNamesTheField) {
  const std::vector<BadCase> cases = {
      {"missing text_input", [](auto& b) { b.Int32("max_tokens", 3); }, "text_input"},
      {"text_input FP32", [](auto& b) { b.Fp32("text_input", 1.0f); }, "text_input"},
      {"text_input two elements", [](auto& b) { b.Bytes("text_input", {"a", "b"}); }, "text_input"},
      {"max_tokens INT64",
       [](auto& b) {
         b.Text("hi");
         auto* t = b.request().add_inputs();
         t->set_name("max_tokens");
         t->set_datatype("INT64");
         t->add_shape(1);
         b.request().add_raw_input_contents(std::string(8, '\0'));
       },
       "max_tokens"},
      {"max_tokens negative", [](auto& b) { b.Text("hi").Int32("max_tokens", -1); }, "max_tokens"},
      {"top_k shape [2]",
       [](auto& b) {
         b.Text("hi").Int32("top_k", 3);
         b.request().mutable_inputs(1)->set_shape(0, 2);
         b.request().mutable_inputs(1)->mutable_contents()->add_int_contents(4);
       },
       "top_k"},
      {"temperature wrong raw size",
       [](auto& b) {
         b.Text("hi").Fp32("temperature", 1.0f);
         b.request().mutable_raw_input_contents(1)->resize(3);
       },
       "temperature"},
      {"temperature out of range", [](auto& b) { b.Text("hi").Fp32("temperature", -1.0f); },
       "temperature"},
      {"random_seed INT32", [](auto& b) { b.Text("hi").Int32("random_seed", 1); }, "random_seed"},
      {"stream FP32", [](auto& b) { b.Text("hi").Fp32("stream", 1.0f); }, "stream"},
      {"stop_words count mismatch",
       [](auto& b) {
         b.Text("hi").Bytes("stop_words", {"a"});
         b.request().mutable_inputs(1)->set_shape(0, 2);
       },
       "stop_words"},
      {"raw BYTES truncated",
       [](auto& b) {
         b.Text("hello");
         b.request().mutable_raw_input_contents(0)->resize(6);
       },
       "text_input"},
      {"unknown input", [](auto& b) { b.Text("hi").Int32("bogus_tensor", 1); }, "bogus_tensor"},
      {"duplicate input", [](auto& b) { b.Text("hi").Text("again"); }, "text_input"},
      {"malformed JSON", [](auto& b) { b.Text("hi").Bytes("sampling_parameters", {"{not json"}); },
       "sampling_parameters"},
      {"JSON not an object", [](auto& b) { b.Text("hi").Bytes("sampling_parameters", {"[1]"}); },
       "sampling_parameters"},
      {"unknown JSON key",
       [](auto& b) { b.Text("hi").Bytes("sampling_parameters", {R"({"bogus_key": 1})"}); },
       "bogus_key"},
      {"JSON wrong type",
       [](auto& b) { b.Text("hi").Bytes("sampling_parameters", {R"({"temperature": "hot"})"}); },
       "temperature"},
      {"JSON stop not strings",
       [](auto& b) { b.Text("hi").Bytes("sampling_parameters", {R"({"stop": [1]})"}); }, "stop"},
      {"JSON max_tokens fraction",
       [](auto& b) { b.Text("hi").Bytes("sampling_parameters", {R"({"max_tokens": 1.5})"}); },
       "max_tokens"},
      {"JSON ignore_eos object",
       [](auto& b) { b.Text("hi").Bytes("sampling_parameters", {R"({"ignore_eos": {}})"}); },
       "ignore_eos"},
      {"JSON n = 2",
       [](auto& b) { b.Text("hi").Bytes("sampling_parameters", {R"({"n": 2})"}); }, "'n'"},
      {"JSON top_k -2",
       [](auto& b) { b.Text("hi").Bytes("sampling_parameters", {R"({"top_k": -2})"}); }, "top_k"},
      {"empty-final parameter not bool",
       [](auto& b) { b.Text("hi").StringParam("triton_enable_empty_final_response", "yes"); },
       "triton_enable_empty_final_response"},
      {"raw_input_contents count",
       [](auto& b) {
         b.Text("hi").Int32("max_tokens", 3);
         b.request().mutable_raw_input_contents()->RemoveLast();
       },
       "raw_input_contents"},
      {"unknown output", [](auto& b) { b.Text("hi").Output("bogus_output"); }, "bogus_output"},
      {"stream on ModelInfer", [](auto& b) { b.Text("hi").Bool("stream", true); }, "stream"},
      {"beam_width 4", [](auto& b) { b.Text("hi").Int32("beam_width", 4); }, "beam_width"},
      {"bad_words given", [](auto& b) { b.Text("hi").Bytes("bad_words", {"darn"}); }, "bad_words"},
      {"return_log_probs true", [](auto& b) { b.Text("hi").Bool("return_log_probs", true); },
       "return_log_probs"},
      {"stop_words rank 3",
       [](auto& b) { b.Text("hi").Bytes("stop_words", {"a"}, {1, 1, 1}); }, "stop_words"},
  };
  for (const BadCase& c : cases) {
    InferRequestBuilder b(/*raw=*/true);
    c.build(b);
    inference::ModelInferResponse resp;
    const grpc::Status st = Infer(b.Build(), &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.what << ": "
                                                                   << st.error_message();
    EXPECT_THAT(st.error_message(), HasSubstr(c.names)) << c.what;
  }
  // Typed contents with the wrong element count, and typed + raw mixed.
  {
    InferRequestBuilder b(/*raw=*/false);
    b.Text("hi").Int32("max_tokens", 3);
    b.request().mutable_inputs(1)->mutable_contents()->add_int_contents(4);
    inference::ModelInferResponse resp;
    const grpc::Status st = Infer(b.Build(), &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(st.error_message(), HasSubstr("max_tokens"));
  }
  {
    InferRequestBuilder b(/*raw=*/true);
    b.Text("hi").Int32("max_tokens", 3);
    b.request().mutable_inputs(1)->mutable_contents()->add_int_contents(4);
    inference::ModelInferResponse resp;
    const grpc::Status st = Infer(b.Build(), &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(st.error_message(), HasSubstr("max_tokens"));
  }
  EXPECT_TRUE(backend_.requests().empty()) << "nothing invalid reaches the backend";
}

// ---- models and versions

TEST_F(KServeServiceTest, UnknownModelOrVersionIsNotFound) {
  InferRequestBuilder b(/*raw=*/true, "nope");
  b.Text("hi");
  inference::ModelInferResponse resp;
  grpc::Status st = Infer(b.Build(), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(st.error_message(), HasSubstr("nope"));

  InferRequestBuilder v(/*raw=*/true);
  v.Text("hi").request().set_model_version("2");
  st = Infer(v.Build(), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(st.error_message(), HasSubstr("'2'"));

  backend_.QueueScript(Abc());
  v.request().set_model_version("1");
  st = Infer(v.Build(), &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.model_version(), "1");

  for (const char* version : {"", "1"}) {
    grpc::ClientContext ctx;
    Bound(ctx);
    inference::ModelReadyRequest req;
    req.set_name("tiny");
    req.set_version(version);
    inference::ModelReadyResponse r;
    ASSERT_TRUE(stub_->ModelReady(&ctx, req, &r).ok());
    EXPECT_TRUE(r.ready());
  }
  {
    grpc::ClientContext ctx;
    Bound(ctx);
    inference::ModelReadyRequest req;
    req.set_name("nochat");
    inference::ModelReadyResponse r;
    ASSERT_TRUE(stub_->ModelReady(&ctx, req, &r).ok());
    EXPECT_FALSE(r.ready());
  }
  {
    grpc::ClientContext ctx;
    Bound(ctx);
    inference::ModelReadyRequest req;
    req.set_name("nope");
    inference::ModelReadyResponse r;
    EXPECT_EQ(stub_->ModelReady(&ctx, req, &r).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    Bound(ctx);
    inference::ModelMetadataRequest req;
    req.set_name("tiny");
    req.set_version("3");
    inference::ModelMetadataResponse r;
    EXPECT_EQ(stub_->ModelMetadata(&ctx, req, &r).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    Bound(ctx);
    inference::ModelConfigRequest req;
    req.set_name("nope");
    inference::ModelConfigResponse r;
    EXPECT_EQ(stub_->ModelConfig(&ctx, req, &r).error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

TEST_F(KServeServiceTest, HealthAndMetadata) {
  {
    grpc::ClientContext ctx;
    Bound(ctx);
    inference::ServerLiveResponse r;
    ASSERT_TRUE(stub_->ServerLive(&ctx, {}, &r).ok());
    EXPECT_TRUE(r.live());
  }
  for (bool ready : {true, false}) {
    backend_.SetReady(ready);
    grpc::ClientContext ctx;
    Bound(ctx);
    inference::ServerReadyResponse r;
    ASSERT_TRUE(stub_->ServerReady(&ctx, {}, &r).ok());
    EXPECT_EQ(r.ready(), ready);
  }
  {
    grpc::ClientContext ctx;
    Bound(ctx);
    inference::ServerMetadataResponse r;
    ASSERT_TRUE(stub_->ServerMetadata(&ctx, {}, &r).ok());
    EXPECT_EQ(r.name(), "strata");
    EXPECT_FALSE(r.version().empty());
  }
  {
    grpc::ClientContext ctx;
    Bound(ctx);
    inference::ModelMetadataRequest req;
    req.set_name("tiny");
    inference::ModelMetadataResponse r;
    ASSERT_TRUE(stub_->ModelMetadata(&ctx, req, &r).ok());
    EXPECT_EQ(r.name(), "tiny");
    EXPECT_THAT(r.versions(), ElementsAre("1"));
    EXPECT_EQ(r.platform(), "strata");
    ASSERT_GT(r.inputs_size(), 0);
    EXPECT_EQ(r.inputs(0).name(), "text_input");
    EXPECT_EQ(r.inputs(0).datatype(), "BYTES");
    EXPECT_THAT(r.inputs(0).shape(), ElementsAre(1));
    EXPECT_EQ(r.outputs(0).name(), "text_output");
  }
  {
    grpc::ClientContext ctx;
    Bound(ctx);
    inference::ModelConfigRequest req;
    req.set_name("tiny");
    inference::ModelConfigResponse r;
    ASSERT_TRUE(stub_->ModelConfig(&ctx, req, &r).ok());
    const inference::ModelConfig& c = r.config();
    EXPECT_EQ(c.name(), "tiny");
    EXPECT_EQ(c.backend(), "strata");
    EXPECT_EQ(c.max_batch_size(), 0);
    EXPECT_TRUE(c.model_transaction_policy().decoupled());
    std::map<std::string, inference::DataType> in;
    for (const auto& i : c.input()) in[i.name()] = i.data_type();
    EXPECT_EQ(in["text_input"], inference::TYPE_STRING);
    EXPECT_EQ(in["stream"], inference::TYPE_BOOL);
    EXPECT_EQ(in["sampling_parameters"], inference::TYPE_STRING);
    EXPECT_EQ(in["max_tokens"], inference::TYPE_INT32);
    EXPECT_EQ(in["temperature"], inference::TYPE_FP32);
    EXPECT_EQ(in["random_seed"], inference::TYPE_UINT64);
    EXPECT_EQ(in["stop_words"], inference::TYPE_STRING);
    EXPECT_EQ(in["end_id"], inference::TYPE_INT32);
    std::map<std::string, inference::DataType> out;
    for (const auto& o : c.output()) out[o.name()] = o.data_type();
    EXPECT_EQ(out["text_output"], inference::TYPE_STRING);
    EXPECT_EQ(out["num_input_tokens"], inference::TYPE_UINT32);
    EXPECT_EQ(out["num_output_tokens"], inference::TYPE_UINT32);
  }
  {
    grpc::ClientContext ctx;
    Bound(ctx);
    inference::ModelStatisticsResponse r;
    const grpc::Status st = stub_->ModelStatistics(&ctx, {}, &r);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_FALSE(st.error_message().empty());
  }
}

// ---- ModelStreamInfer: decoupled response placement

TEST_F(KServeServiceTest, StreamingOneResponsePerChunkFinalOnTheLast) {
  backend_.QueueScript(Abc());
  InferRequestBuilder b(/*raw=*/true);
  b.Id("s1").Text("hello").Bool("stream", true).Bool("return_num_output_tokens", true);
  const auto responses = StreamAll({b.Build()});
  ASSERT_EQ(responses.size(), 3u);
  const char* texts[] = {"a", "b", "c"};
  for (size_t i = 0; i < 3; ++i) {
    const auto& r = responses[i].infer_response();
    EXPECT_TRUE(responses[i].error_message().empty());
    EXPECT_EQ(r.id(), "s1");
    EXPECT_EQ(r.model_name(), "tiny");
    EXPECT_EQ(OutputText(r), texts[i]) << "streaming carries deltas only, no prompt";
    EXPECT_EQ(OutputUint32(r, "num_output_tokens"), 1u);
    EXPECT_EQ(FinalFlag(r), i == 2);
  }
}

TEST_F(KServeServiceTest, StreamingWithEmptyFinalResponse) {
  backend_.QueueScript(Abc());
  InferRequestBuilder b(/*raw=*/false);
  b.Id("s2").Text("hello").Bool("stream", true).BoolParam("triton_enable_empty_final_response", true);
  const auto responses = StreamAll({b.Build()});
  ASSERT_EQ(responses.size(), 4u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(FinalFlag(responses[i].infer_response()), false);
    EXPECT_EQ(responses[i].infer_response().outputs_size(), 1);
  }
  const auto& last = responses[3].infer_response();
  EXPECT_EQ(FinalFlag(last), true);
  EXPECT_EQ(last.outputs_size(), 0);
  EXPECT_EQ(last.raw_output_contents_size(), 0);
  EXPECT_EQ(last.id(), "s2");
}

TEST_F(KServeServiceTest, NonStreamingOnTheStreamIsOneWholeResponse) {
  backend_.QueueScript(Abc());
  backend_.QueueScript(Abc());
  backend_.QueueScript(Abc());
  InferRequestBuilder plain(/*raw=*/true);
  plain.Id("n1").Text("hello");
  InferRequestBuilder empty_final(/*raw=*/true);
  empty_final.Id("n2").Text("hello").Bool("stream", false)
      .BoolParam("triton_enable_empty_final_response", true);
  InferRequestBuilder exclude(/*raw=*/true);
  exclude.Id("n3").Text("hello").Bool("exclude_input_in_output", true);

  auto by_id = [](const std::vector<inference::ModelStreamInferResponse>& rs, const std::string& id) {
    std::vector<inference::ModelInferResponse> out;
    for (const auto& r : rs) if (r.infer_response().id() == id) out.push_back(r.infer_response());
    return out;
  };
  const auto responses = StreamAll({plain.Build(), empty_final.Build(), exclude.Build()});
  const auto n1 = by_id(responses, "n1");
  ASSERT_EQ(n1.size(), 1u);
  EXPECT_EQ(OutputText(n1[0]), "helloabc");
  EXPECT_EQ(FinalFlag(n1[0]), true);
  const auto n2 = by_id(responses, "n2");
  ASSERT_EQ(n2.size(), 2u);
  EXPECT_EQ(OutputText(n2[0]), "helloabc");
  EXPECT_EQ(FinalFlag(n2[0]), false);
  EXPECT_EQ(n2[1].outputs_size(), 0);
  EXPECT_EQ(FinalFlag(n2[1]), true);
  const auto n3 = by_id(responses, "n3");
  ASSERT_EQ(n3.size(), 1u);
  EXPECT_EQ(OutputText(n3[0]), "abc");
}

TEST_F(KServeServiceTest, StreamingRefusesToRepeatThePrompt) {
  InferRequestBuilder b(/*raw=*/true);
  b.Id("x").Text("hello").Bool("stream", true).Bool("exclude_input_in_output", false);
  const auto responses = StreamAll({b.Build()});
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_THAT(responses[0].error_message(), HasSubstr("exclude_input_in_output"));
  EXPECT_EQ(FinalFlag(responses[0].infer_response()), true);
  EXPECT_TRUE(backend_.requests().empty());
}

TEST_F(KServeServiceTest, ErrorsGoIntoErrorMessageAndTheStreamStaysOpen) {
  Script failing;
  failing.chunks = {Chunk("a", {97})};
  failing.stream_error = absl::UnavailableError("replica 0 died");
  backend_.QueueScript(failing);
  backend_.QueueScript(Abc());
  InferRequestBuilder bad(/*raw=*/true);
  bad.Id("bad").Int32("max_tokens", 3);  // no text_input
  InferRequestBuilder dies(/*raw=*/true);
  dies.Id("dies").Text("hello").Bool("stream", true);
  InferRequestBuilder unknown(/*raw=*/true, "nope");
  unknown.Id("unknown").Text("hello");
  InferRequestBuilder good(/*raw=*/true);
  good.Id("good").Text("hello").Bool("exclude_input_in_output", true);

  // Sequential so the scripts reach the intended requests.
  grpc::ClientContext ctx;
  Bound(ctx);
  std::unique_ptr<StreamRW> rw = stub_->ModelStreamInfer(&ctx);
  inference::ModelStreamInferResponse r;
  ASSERT_TRUE(rw->Write(bad.Build()));
  ASSERT_TRUE(rw->Read(&r));
  EXPECT_EQ(r.infer_response().id(), "bad");
  EXPECT_THAT(r.error_message(), HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(r.error_message(), HasSubstr("text_input"));

  ASSERT_TRUE(rw->Write(dies.Build()));
  ASSERT_TRUE(rw->Read(&r));
  EXPECT_TRUE(r.error_message().empty());
  EXPECT_EQ(OutputText(r.infer_response()), "a");
  ASSERT_TRUE(rw->Read(&r));
  EXPECT_EQ(r.infer_response().id(), "dies");
  EXPECT_THAT(r.error_message(), HasSubstr("replica 0 died"));
  EXPECT_THAT(r.error_message(), HasSubstr("UNAVAILABLE"));

  ASSERT_TRUE(rw->Write(unknown.Build()));
  ASSERT_TRUE(rw->Read(&r));
  EXPECT_THAT(r.error_message(), HasSubstr("NOT_FOUND"));
  EXPECT_THAT(r.error_message(), HasSubstr("nope"));

  ASSERT_TRUE(rw->Write(good.Build()));
  ASSERT_TRUE(rw->Read(&r));
  EXPECT_TRUE(r.error_message().empty()) << r.error_message();
  EXPECT_EQ(OutputText(r.infer_response()), "abc");
  rw->WritesDone();
  EXPECT_FALSE(rw->Read(&r));
  EXPECT_TRUE(rw->Finish().ok());
}

TEST_F(KServeServiceTest, RequestsOnOneStreamOverlap) {
  Script held;
  held.chunks = {Chunk("x", {120})};
  held.hold_open = true;
  backend_.QueueScript(held);
  backend_.QueueScript(Abc());
  grpc::ClientContext ctx;
  Bound(ctx);
  std::unique_ptr<StreamRW> rw = stub_->ModelStreamInfer(&ctx);
  InferRequestBuilder slow(/*raw=*/true);
  slow.Id("slow").Text("hello").Bool("stream", true);
  ASSERT_TRUE(rw->Write(slow.Build()));
  inference::ModelStreamInferResponse r;
  ASSERT_TRUE(rw->Read(&r));
  EXPECT_EQ(r.infer_response().id(), "slow");
  InferRequestBuilder fast(/*raw=*/true);
  fast.Id("fast").Text("hello").Bool("stream", true);
  ASSERT_TRUE(rw->Write(fast.Build()));
  // All of "fast" arrives while "slow" is still running.
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(rw->Read(&r));
    ids.push_back(r.infer_response().id());
  }
  EXPECT_THAT(ids, ElementsAre("fast", "fast", "fast"));
  EXPECT_EQ(FinalFlag(r.infer_response()), true);
  EXPECT_FALSE(backend_.stream(0)->IsCancelled());
  ctx.TryCancel();
  EXPECT_TRUE(backend_.WaitUntilCancelled(0, absl::Seconds(5)));
  rw->Finish();
}

// ---- cancellation and deadlines

TEST_F(KServeServiceTest, ClientCancellingTheStreamCancelsItsRequests) {
  Script held;
  held.chunks = {Chunk("a", {97})};
  held.hold_open = true;
  backend_.SetDefaultScript(held);
  grpc::ClientContext ctx;
  Bound(ctx);
  std::unique_ptr<StreamRW> rw = stub_->ModelStreamInfer(&ctx);
  InferRequestBuilder b(/*raw=*/true);
  b.Text("hello").Bool("stream", true);
  ASSERT_TRUE(rw->Write(b.Build()));
  ASSERT_TRUE(rw->Write(b.Build()));
  inference::ModelStreamInferResponse r;
  ASSERT_TRUE(rw->Read(&r));
  ASSERT_TRUE(rw->Read(&r));
  ASSERT_TRUE(backend_.WaitForSubmits(2, absl::Seconds(5)));
  ctx.TryCancel();
  EXPECT_TRUE(backend_.WaitUntilCancelled(0, absl::Seconds(5)));
  EXPECT_TRUE(backend_.WaitUntilCancelled(1, absl::Seconds(5)));
  EXPECT_EQ(rw->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(KServeServiceTest, ClientClosingWhileWaitingCancels) {
  Script held;
  held.hold_open = true;
  backend_.SetDefaultScript(held);
  // Unary call: the client gives up after 300 ms.
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  InferRequestBuilder b(/*raw=*/true);
  b.Text("hello");
  inference::ModelInferResponse resp;
  const absl::Time before = absl::Now();
  const grpc::Status st = stub_->ModelInfer(&ctx, b.Build(), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(backend_.WaitUntilCancelled(0, absl::Seconds(5)));
  ASSERT_EQ(backend_.requests().size(), 1u);
  const absl::Time deadline = backend_.request(0).deadline;
  EXPECT_GT(deadline, before);
  EXPECT_LT(deadline, before + absl::Seconds(2));
}

TEST_F(KServeServiceTest, TimeoutParameterTightensTheDeadline) {
  Script held;
  held.hold_open = true;
  backend_.SetDefaultScript(held);
  grpc::ClientContext ctx;
  Bound(ctx, 20);
  InferRequestBuilder b(/*raw=*/true);
  b.Text("hello").Int64Param("timeout", 200000);  // Triton: microseconds
  inference::ModelInferResponse resp;
  const grpc::Status st = stub_->ModelInfer(&ctx, b.Build(), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << st.error_message();
  EXPECT_TRUE(backend_.WaitUntilCancelled(0, absl::Seconds(5)));
}

TEST_F(KServeServiceTest, BackendErrorsKeepTheirCode) {
  Script full;
  full.submit_error = absl::ResourceExhaustedError("queue full (128 waiting)");
  backend_.QueueScript(full);
  Script deadline;
  deadline.stream_error = absl::DeadlineExceededError("deadline passed in the queue");
  backend_.QueueScript(deadline);
  InferRequestBuilder b(/*raw=*/true);
  b.Text("hello");
  inference::ModelInferResponse resp;
  grpc::Status st = Infer(b.Build(), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(st.error_message(), HasSubstr("queue full"));
  st = Infer(b.Build(), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

}  // namespace
}  // namespace strata::coordinator::testing
