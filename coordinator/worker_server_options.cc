#include "coordinator/worker_server_options.h"

#include <algorithm>
#include <string>
#include <vector>

#include "grpcpp/impl/server_builder_plugin.h"

namespace strata::coordinator {

namespace {

class WithoutReflectionOption final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    // The name grpc's ProtoServerReflectionPlugin::name() reports.
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [](const std::unique_ptr<grpc::ServerBuilderPlugin>& p) {
                                    return p->name() == "proto_server_reflection";
                                  }),
                   plugins->end());
  }
};

}  // namespace

std::unique_ptr<grpc::ServerBuilderOption> WithoutReflection() {
  return std::make_unique<WithoutReflectionOption>();
}

}  // namespace strata::coordinator
