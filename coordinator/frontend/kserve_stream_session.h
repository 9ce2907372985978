// One ModelStreamInfer call (bidirectional, decoupled): reads the client's
// requests in order and runs each on its own thread, so requests on one
// stream overlap; their responses are written one at a time.
//
//   gRPC handler thread: Run() ─ Read() ─► request ─► new thread: handler(request, *this)
//                                 ...                    └─ Write() (serialized by mu_)
//                         Read() false (client half-closed or gone) ─► join all ─► return
//
// Thread ownership: Run() is called once, on the gRPC handler thread, and
// returns only after every request thread it started has ended. Write() is
// thread-safe (called from the request threads). The stream outlives Run().
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <grpcpp/support/sync_stream.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "inference/grpc_service.pb.h"

namespace strata::coordinator::frontend {

class KServeStreamSession {
 public:
  using Stream = grpc::ServerReaderWriterInterface<inference::ModelStreamInferResponse,
                                                   inference::ModelInferRequest>;
  // Runs one request to its end, writing its responses through session.Write().
  using Handler =
      std::function<void(const inference::ModelInferRequest& request, KServeStreamSession& session)>;

  // At most `max_in_flight` requests run at once; more are answered with a
  // RESOURCE_EXHAUSTED error_message.
  KServeStreamSession(Stream* stream, int max_in_flight);
  ~KServeStreamSession();
  KServeStreamSession(const KServeStreamSession&) = delete;
  KServeStreamSession& operator=(const KServeStreamSession&) = delete;

  void Run(const Handler& handler);

  // Writes one response. False once a write failed (the client is gone);
  // later writes are dropped.
  bool Write(const inference::ModelStreamInferResponse& response);
  bool broken() const;

 private:
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  void JoinFinished(bool all);

  Stream* const stream_;
  const int max_in_flight_;
  std::vector<Worker> workers_;  // Run()'s thread only
  mutable absl::Mutex mu_;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace strata::coordinator::frontend
