// A real in-process grpc::Server on 127.0.0.1 (port from the OS) with both
// frontends over a FakeBackend, and channels for the generated stubs.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "coordinator/frontend/kserve_service.h"
#include "coordinator/frontend/request_parse_errors.h"
#include "coordinator/frontend/strata_service.h"
#include "tests/coordinator/frontend/fake_backend.h"

namespace strata::coordinator::testing {

class FrontendServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(&backend_.tokenizer(), nullptr);
    KServeServiceOptions kopts;
    kopts.poll_interval = absl::Milliseconds(10);
    StrataServiceOptions sopts;
    sopts.poll_interval = absl::Milliseconds(10);
    Configure(kopts, sopts);
    kserve_ = std::make_unique<KServeService>(&backend_, kopts);
    strata_ = std::make_unique<StrataService>(&backend_, sopts);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(kserve_.get());
    builder.RegisterService(strata_.get());
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
    interceptors.push_back(frontend::MakeRequestParseErrorInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                   grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }

  // Lets a fixture change the services' options (limits, API keys) before
  // they are built.
  virtual void Configure(KServeServiceOptions&, StrataServiceOptions&) {}

  // Every call in these tests is bounded.
  static void Bound(grpc::ClientContext& ctx, int seconds = 10) {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  }

  FakeBackend backend_;
  std::unique_ptr<KServeService> kserve_;
  std::unique_ptr<StrataService> strata_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace strata::coordinator::testing
