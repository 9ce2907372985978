// The strata CLI's subcommands. Each returns the process exit code and
// reports errors on stderr.
#pragma once

#include <string>
#include <vector>

namespace strata {

int RunGenerate(const std::vector<std::string>& args);
int RunEvalLogits(const std::vector<std::string>& args);
int RunTokenize(const std::vector<std::string>& args);
int RunBench(const std::vector<std::string>& args);
// Need the gRPC build (STRATA_WITH_GRPC).
int RunCluster(const std::vector<std::string>& args);
int RunClient(const std::vector<std::string>& args);

}  // namespace strata
