// How the coordinator's worker port differs from its client port: a
// ServerBuilder option that keeps server reflection off it.
//
// grpc::reflection::InitProtoReflectionServerBuilderPlugin() (and the
// reflection library's static initializer) registers reflection for every
// ServerBuilder in the process. The client port wants it (grpcurl); the
// worker port must not describe its services to whoever reaches it, so its
// builder drops the plugin again with this option.
#pragma once

#include <memory>

#include "grpcpp/impl/server_builder_option.h"

namespace strata::coordinator {

// The worker port's receive limit. The largest message a legitimate worker
// sends is a rendezvous Set (a value <= 1 MiB) or a StepResult for
// --max-num-seqs (<= 65536) sequences (~1.3 MiB); anything bigger only costs
// the coordinator memory before it can be refused.
inline constexpr int kWorkerPortMaxMessageBytes = 8 << 20;

// Add to the worker port's builder (builder.SetOption(WithoutReflection())):
// removes the proto_server_reflection plugin; a reflection call there is
// then UNIMPLEMENTED like any unknown method.
std::unique_ptr<grpc::ServerBuilderOption> WithoutReflection();

}  // namespace strata::coordinator
