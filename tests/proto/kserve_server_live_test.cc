// End to end through the generated code: a grpc::Server on 127.0.0.1 (port
// picked by the OS) implementing only KServe's ServerLive, called with the
// generated stub; gRPC's built-in health service answered through our
// grpc.health.v1 stubs; reflection links. Proves codegen and linking, not
// Strata's (future) frontend.
#include "grpc/health/v1/health.grpc.pb.h"
#include "inference/grpc_service.grpc.pb.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

namespace strata {
namespace {

class LiveOnly final : public inference::GRPCInferenceService::Service {
 public:
  grpc::Status ServerLive(grpc::ServerContext*, const inference::ServerLiveRequest*,
                          inference::ServerLiveResponse* response) override {
    response->set_live(true);
    return grpc::Status::OK;
  }
};

class KServeServerLiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                   grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }

  static void Deadline(grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  }

  LiveOnly service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(KServeServerLiveTest, ServerLiveThroughGeneratedStub) {
  auto stub = inference::GRPCInferenceService::NewStub(channel_);
  grpc::ClientContext ctx;
  Deadline(ctx);
  inference::ServerLiveResponse response;
  const grpc::Status s = stub->ServerLive(&ctx, inference::ServerLiveRequest(), &response);
  ASSERT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
  EXPECT_TRUE(response.live());
}

TEST_F(KServeServerLiveTest, UnimplementedRpcSaysSo) {
  auto stub = inference::GRPCInferenceService::NewStub(channel_);
  grpc::ClientContext ctx;
  Deadline(ctx);
  inference::ServerReadyResponse response;
  const grpc::Status s = stub->ServerReady(&ctx, inference::ServerReadyRequest(), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(KServeServerLiveTest, BuiltInHealthServiceSpeaksOurHealthProto) {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext ctx;
  Deadline(ctx);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status s = stub->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &response);
  ASSERT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  server_->GetHealthCheckService()->SetServingStatus("inference.GRPCInferenceService", false);
  grpc::ClientContext ctx2;
  Deadline(ctx2);
  grpc::health::v1::HealthCheckRequest req;
  req.set_service("inference.GRPCInferenceService");
  ASSERT_TRUE(stub->Check(&ctx2, req, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
}

}  // namespace
}  // namespace strata
