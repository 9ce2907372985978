// Turns gRPC's answer to a request message that does not parse into a
// useful status for the client.
//
// gRPC C++ parses the request before any handler runs; when parsing fails
// (most often a proto3 `string` field holding invalid UTF-8, which protobuf
// C++ rejects, or a truncated message) the sync server answers INTERNAL with
// an empty message (grpcpp's GenericDeserialize uses the message's
// InitializationErrorString, empty for proto3), which reads as a server bug.
// This interceptor rewrites exactly that status (INTERNAL, empty message) on
// the client port into INVALID_ARGUMENT naming the method's request type and
// the likely cause. Strata's handlers never return INTERNAL without a message.
// Which field is at fault is not known at this point; the message lists the
// string fields.
//
// Thread ownership: one interceptor per call, created by gRPC.
#pragma once

#include <memory>

#include <grpcpp/support/server_interceptor.h>

namespace strata::coordinator::frontend {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeRequestParseErrorInterceptorFactory();

}  // namespace strata::coordinator::frontend
