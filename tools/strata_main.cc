// strata: the command-line entry point.
#include <cstdio>
#include <string>
#include <vector>

#include "tools/commands.h"

namespace {

void Usage() {
  std::fprintf(stderr,
               "usage: strata <command> [flags]\n"
               "commands:\n"
               "  generate     --model PATH|default --prompt TEXT [--chat] [--max-tokens N]\n"
               "               [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--seed S]\n"
               "               [--threads N] ...   stream a completion to stdout\n"
               "  eval-logits  --model PATH --tokens 1,2,3 --out FILE   all-position logits (f32)\n"
               "  tokenize     --model PATH --text TEXT [--special]     print token ids\n"
               "  bench        --model PATH [--threads N] [--prompt-tokens N] [--gen-tokens N]\n"
               "               [--repeats N]   prefill/decode tokens/s, fraction of the bandwidth bound\n"
               "  cluster up   [--model PATH|default] [--replicas N] [--port 8001] ...\n"
               "               a coordinator and its workers on this machine; Ctrl-C stops them\n"
               "  client       [--address 127.0.0.1:8001] --prompt TEXT | --chat TEXT [--max-tokens N] ...\n"
               "               stream a completion from a running coordinator (strata.v1)\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    Usage();
    return 2;
  }
  const std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "generate") return strata::RunGenerate(args);
  if (cmd == "eval-logits") return strata::RunEvalLogits(args);
  if (cmd == "tokenize") return strata::RunTokenize(args);
  if (cmd == "bench") return strata::RunBench(args);
#ifdef STRATA_HAVE_GRPC
  if (cmd == "cluster") return strata::RunCluster(args);
  if (cmd == "client") return strata::RunClient(args);
#endif
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    Usage();
    return 0;
  }
  std::fprintf(stderr, "strata: unknown command '%s'\n", cmd.c_str());
  Usage();
  return 2;
}
