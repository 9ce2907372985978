// `strata cluster up`: a coordinator and its workers as child processes on this
// machine, supervised: a worker that dies is restarted (it re-registers with
// the coordinator), Ctrl-C / SIGTERM stops them all: the coordinator first,
// which drains in-flight requests (--shutdown-grace-s; a second Ctrl-C cancels
// them) and tells the workers to shut down, then any worker still running.
// Children run in their own process groups, so a terminal's Ctrl-C reaches
// only this process, which decides the order.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpcpp/grpcpp.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "common/join_token.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"

extern char** environ;

namespace strata {

namespace {

volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_signals = 0;  // SIGINT/SIGTERM/SIGHUP received
void OnSignal(int) {
  g_stop = 1;
  g_signals = g_signals + 1;
}

struct Child {
  std::string name;
  std::vector<std::string> argv;
  pid_t pid = -1;
  int restarts = 0;
  std::chrono::steady_clock::time_point died;
};

// The cluster's join token (strata-coordinator/strata-worker
// --join-token-file): 32 random bytes as hex in a fresh file only this user
// can read (mkstemp creates it 0600), removed when the cluster stops. Loopback
// clusters are then authenticated too: another local user cannot register a
// worker on the worker port.
class JoinTokenFile {
 public:
  bool Create() {
    char path[] = "/tmp/strata-cluster-token-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0) return false;
    path_ = path;
    const std::string token = RandomHexToken(32) + "\n";
    const bool ok = write(fd, token.data(), token.size()) == static_cast<ssize_t>(token.size());
    close(fd);
    return ok;
  }
  ~JoinTokenFile() {
    if (!path_.empty()) std::remove(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string BinDir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<size_t>(n));
  return p.substr(0, p.rfind('/'));
}

bool Spawn(Child& c) {
  std::vector<char*> argv;
  for (std::string& a : c.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);  // its own group: a terminal's Ctrl-C is ours to order
  const int err = posix_spawn(&pid, argv[0], nullptr, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    std::fprintf(stderr, "strata cluster: cannot start %s (%s)\n", c.name.c_str(), argv[0]);
    return false;
  }
  c.pid = pid;
  return true;
}

void StopAll(std::vector<Child>& children) {
  for (Child& c : children) {
    if (c.pid > 0) kill(c.pid, SIGTERM);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (Child& c : children) {
    while (c.pid > 0) {
      int status;
      pid_t r = waitpid(c.pid, &status, WNOHANG);
      if (r == c.pid || r < 0) {
        c.pid = -1;
      } else if (std::chrono::steady_clock::now() > deadline) {
        kill(c.pid, SIGKILL);
        waitpid(c.pid, &status, 0);
        c.pid = -1;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }
}

// Reaps `c` if it has exited; true when it is gone.
bool Reaped(Child& c) {
  if (c.pid <= 0) return true;
  int status;
  const pid_t r = waitpid(c.pid, &status, WNOHANG);
  if (r == c.pid || r < 0) c.pid = -1;
  return c.pid <= 0;
}

// The coordinator first: SIGTERM makes it stop admitting, let in-flight
// requests finish for its grace period, cancel the rest and send the workers
// Shutdown. A signal to us meanwhile is forwarded once (the coordinator then
// cancels at once). Workers left after that get SIGTERM.
void StopInOrder(std::vector<Child>& children, int grace_s) {
  using Clock = std::chrono::steady_clock;
  Child& coord = children[0];
  if (coord.pid > 0) {
    kill(coord.pid, SIGTERM);
    const int signals = g_signals;
    bool forwarded = false;
    const auto deadline = Clock::now() + std::chrono::seconds(grace_s + 30);
    while (!Reaped(coord)) {
      if (!forwarded && g_signals != signals) {
        std::fprintf(stderr, "strata cluster: cancelling in-flight requests\n");
        kill(coord.pid, SIGTERM);
        forwarded = true;
      }
      if (Clock::now() > deadline) {
        std::fprintf(stderr, "strata cluster: the coordinator did not exit; killing it\n");
        kill(coord.pid, SIGKILL);
        int status;
        waitpid(coord.pid, &status, 0);
        coord.pid = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  // Workers told to shut down exit on their own; give them a moment.
  std::vector<Child> workers(children.begin() + 1, children.end());
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  for (Child& w : workers) {
    while (!Reaped(w) && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  StopAll(workers);
}

bool Healthy(const std::string& address) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  return stub->Check(&ctx, req, &resp).ok() && resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

int Usage() {
  std::fprintf(stderr,
               "usage: strata cluster up [--model PATH|default] [--model-name NAME] [--replicas N]\n"
               "         [--port 8001] [--worker-port 8003] [--metrics-port 8002] [--threads N per worker]\n"
               "         [--kv-cache-mb M per worker] [--kv-dtype f16|...] [--max-num-seqs N] [--max-queue N]\n"
               "         [--max-batched-tokens N] [--long-prefill-chunk N] [--prefix-caching on|off] [--port-file FILE]\n"
               "         [--tensor-parallel-size T] [--pipeline-parallel-size P] [--collective-transport auto|tcp|shm]\n"
               "         [--shutdown-grace-s 25]\n"
               "  starts a coordinator and N replicas of T x P worker processes here; Ctrl-C stops them all\n"
               "  (in-flight requests first finish for up to --shutdown-grace-s; a second Ctrl-C cancels them)\n");
  return 2;
}

}  // namespace

int RunCluster(const std::vector<std::string>& all_args) {
  if (all_args.empty() || all_args[0] != "up") return Usage();
  std::vector<std::string> args(all_args.begin() + 1, all_args.end());
  auto flags = CliFlags::Parse(args,
                               {"model", "model-name", "replicas", "port", "worker-port", "metrics-port", "threads",
                                "kv-cache-mb", "kv-dtype", "max-num-seqs", "max-queue", "max-batched-tokens",
                                "long-prefill-chunk", "prefix-caching", "port-file", "tensor-parallel-size",
                                "pipeline-parallel-size", "collective-transport", "shutdown-grace-s"},
                               {});
  if (!flags.ok()) {
    std::fprintf(stderr, "strata cluster: %s\n", std::string(flags.status().message()).c_str());
    return Usage();
  }
  auto replicas = flags->GetInt("replicas", 1);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  if (!replicas.ok() || *replicas < 1 || *replicas > 64) {
    std::fprintf(stderr, "strata cluster: --replicas must be in [1, 64]\n");
    return 2;
  }
  auto tp = flags->GetInt("tensor-parallel-size", 1);
  auto pp = flags->GetInt("pipeline-parallel-size", 1);
  if (!tp.ok() || !pp.ok() || *tp < 1 || *pp < 1 || *tp * *pp > 64) {
    std::fprintf(stderr, "strata cluster: --tensor-parallel-size and --pipeline-parallel-size must be >= 1 (at most 64 ranks)\n");
    return 2;
  }
  const int64_t ranks = *tp * *pp;
  auto grace = flags->GetInt("shutdown-grace-s", 25);  // the coordinator checks the range too
  if (!grace.ok() || *grace < 0 || *grace > 3600) {
    std::fprintf(stderr, "strata cluster: --shutdown-grace-s must be in [0, 3600]\n");
    return 2;
  }
  auto threads = flags->GetInt("threads", std::max<int64_t>(1, cores / (*replicas * ranks)));
  if (!threads.ok() || *threads < 1) {
    std::fprintf(stderr, "strata cluster: --threads must be >= 1\n");
    return 2;
  }
  const std::string model = ResolveModelPath(flags->Get("model", "default"));
  std::string name = flags->Get("model-name", "");
  if (name.empty()) {
    name = model.substr(model.rfind('/') + 1);
    if (name.size() > 5 && name.substr(name.size() - 5) == ".gguf") name.resize(name.size() - 5);
  }
  const std::string dir = BinDir();
  const std::string port_file = absl::StrCat("/tmp/strata-cluster-", getpid(), ".ports");
  std::remove(port_file.c_str());

  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  signal(SIGHUP, OnSignal);  // the terminal went away: children in their own groups would not see it
  JoinTokenFile token;
  if (!token.Create()) {
    std::fprintf(stderr, "strata cluster: cannot create the join token file in /tmp\n");
    return 1;
  }
  std::vector<Child> children;
  Child coord{"coordinator",
              {dir + "/strata-coordinator", "--model", model, "--model-name", name, "--replicas",
               absl::StrCat(*replicas), "--host", "127.0.0.1", "--port", flags->Get("port", "8001"),
               "--worker-port", flags->Get("worker-port", "8003"), "--metrics-port",
               flags->Get("metrics-port", "8002"), "--port-file", port_file, "--tensor-parallel-size",
               absl::StrCat(*tp), "--pipeline-parallel-size", absl::StrCat(*pp), "--shutdown-grace-s",
               absl::StrCat(*grace), "--join-token-file", token.path()}};
  // Scheduling flags go to the coordinator as given (it validates them).
  for (const char* f : {"max-num-seqs", "max-queue", "max-batched-tokens", "long-prefill-chunk", "prefix-caching"}) {
    if (flags->Has(f)) coord.argv.insert(coord.argv.end(), {absl::StrCat("--", f), flags->Get(f, "")});
  }
  children.push_back(coord);
  if (!Spawn(children[0])) return 1;

  // The coordinator writes "client worker metrics" ports once it listens.
  std::vector<std::string> ports;
  for (int i = 0; i < 600 && ports.size() != 3; ++i) {
    std::ifstream in(port_file);
    std::string line;
    if (in && std::getline(in, line)) ports = std::vector<std::string>(absl::StrSplit(line, ' '));
    int status;
    if (waitpid(children[0].pid, &status, WNOHANG) == children[0].pid) {
      std::fprintf(stderr, "strata cluster: the coordinator exited during startup\n");
      return 1;
    }
    if (g_stop) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (ports.size() != 3) {
    StopAll(children);
    std::fprintf(stderr, "strata cluster: the coordinator did not start listening\n");
    return 1;
  }
  const std::string client_addr = absl::StrCat("127.0.0.1:", ports[0]);
  for (int64_t r = 0; r < *replicas; ++r) {
    for (int64_t rank = 0; rank < ranks; ++rank) {
      Child w{ranks == 1 ? absl::StrCat("worker ", r) : absl::StrCat("worker ", r, " rank ", rank),
              {dir + "/strata-worker", "--coordinator", absl::StrCat("127.0.0.1:", ports[1]), "--replica",
               absl::StrCat(r), "--model", model, "--model-name", name, "--threads", absl::StrCat(*threads),
               "--join-token-file", token.path()}};
      if (ranks > 1) {
        // Ranks of one replica on this machine talk over loopback.
        w.argv.insert(w.argv.end(), {"--tp-rank", absl::StrCat(rank % *tp), "--tp-size", absl::StrCat(*tp),
                                     "--pp-stage", absl::StrCat(rank / *tp), "--pp-size", absl::StrCat(*pp),
                                     "--peer-host", "127.0.0.1"});
      }
      for (const char* f : {"kv-cache-mb", "kv-dtype", "collective-transport"}) {
        if (flags->Has(f)) w.argv.insert(w.argv.end(), {absl::StrCat("--", f), flags->Get(f, "")});
      }
      children.push_back(w);
      if (!Spawn(children.back())) {
        StopAll(children);
        return 1;
      }
    }
  }
  bool announced = false;
  int rc = 0;
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      for (size_t i = 0; i < children.size(); ++i) {
        if (children[i].pid != pid) continue;
        children[i].pid = -1;
        children[i].died = std::chrono::steady_clock::now();
        std::fprintf(stderr, "strata cluster: %s exited (%s %d)\n", children[i].name.c_str(),
                     WIFSIGNALED(status) ? "signal" : "status",
                     WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        if (i == 0) g_stop = 1, rc = 1;
      }
    }
    // Restart dead workers after a second (up to 20 times each).
    for (size_t i = 1; i < children.size() && !g_stop; ++i) {
      Child& c = children[i];
      if (c.pid < 0 && c.restarts < 20 && std::chrono::steady_clock::now() - c.died > std::chrono::seconds(1)) {
        c.restarts++;
        std::fprintf(stderr, "strata cluster: restarting %s\n", c.name.c_str());
        Spawn(c);
      }
    }
    if (!announced && Healthy(client_addr)) {
      announced = true;
      std::fprintf(stderr,
                   "strata cluster: ready. model %s, %lld replica(s); clients on %s (KServe v2 / Triton, strata.v1), "
                   "metrics on http://127.0.0.1:%s/metrics. Ctrl-C stops.\n",
                   name.c_str(), static_cast<long long>(*replicas), client_addr.c_str(), ports[2].c_str());
      if (flags->Has("port-file")) {
        const std::string out = flags->Get("port-file", "");
        { std::ofstream f(out + ".tmp"); f << ports[0] << " " << ports[1] << " " << ports[2] << "\n"; }
        std::rename((out + ".tmp").c_str(), out.c_str());
      }
    }
  }
  std::fprintf(stderr,
               "strata cluster: stopping: the coordinator lets in-flight requests finish (up to %lld s; "
               "Ctrl-C again cancels them)\n",
               static_cast<long long>(*grace));
  StopInOrder(children, static_cast<int>(*grace));
  std::remove(port_file.c_str());
  return rc;
}

}  // namespace strata
