// The real strata-worker binary against a fake coordinator hosted in this
// test (a minimal WorkerLink server): it registers with the right facts,
// executes step plans with the engine's tokens, heartbeats, re-attaches with
// empty state when the stream is dropped, dials until a late coordinator
// appears, leaves its replica on SIGTERM (Leave, then exit 0 once the
// coordinator answered, or within its bound when it does not), exits 0 on
// Shutdown, 1 when the coordinator stays unreachable or refuses it, and 2 with
// the flag named on bad flags.
#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "strata/v1/worker.grpc.pb.h"
#include "worker/backend/backend_factory.h"
#include "worker/engine.h"
#include "worker/step_executor.h"
#include "worker/worker_flags.h"

extern char** environ;

namespace strata {
namespace {

namespace wire = ::strata::worker::v1;
using ::testing::HasSubstr;
using ::testing::Not;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

const char* const kModel = STRATA_DEFAULT_MODEL;

bool HaveModel() {
  if (std::ifstream(kModel).good()) return true;
  if (std::getenv("CI")) ADD_FAILURE() << "default model missing at " << kModel;
  return false;
}

// ---------------------------------------------------------------- the process

class WorkerProcess {
 public:
  explicit WorkerProcess(const std::vector<std::string>& args) {
    static int counter = 0;
    log_path_ = ::testing::TempDir() + "/strata_worker_" + std::to_string(getpid()) + "_" +
                std::to_string(counter++) + ".log";
    std::vector<std::string> all = {STRATA_WORKER_BINARY};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    const int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    EXPECT_EQ(rc, 0) << "cannot spawn " << argv[0];
    if (rc != 0) pid_ = -1;
  }
  ~WorkerProcess() {
    if (pid_ > 0 && !status_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (!::testing::Test::HasFailure()) std::remove(log_path_.c_str());
  }

  // The wait status once the process exited within `timeout`.
  std::optional<int> Wait(Clock::duration timeout) {
    const auto deadline = Clock::now() + timeout;
    while (pid_ > 0 && !status_) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        status_ = st;
        break;
      }
      if (Clock::now() > deadline) break;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return status_;
  }
  // Exit code, or -1 (not exited in time / killed by a signal).
  int ExitCode(Clock::duration timeout) {
    std::optional<int> st = Wait(timeout);
    return st && WIFEXITED(*st) ? WEXITSTATUS(*st) : -1;
  }
  void Signal(int sig) {
    if (pid_ > 0 && !status_) kill(pid_, sig);
  }
  std::string Output() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string log_path_;
};

// ---------------------------------------------------------------- the fake coordinator

// One worker's Attach stream. The gRPC handler thread reads (Serve); the test
// thread writes, pops messages and drops the stream.
class Connection {
 public:
  using Stream = grpc::ServerReaderWriter<wire::CoordinatorMessage, wire::WorkerMessage>;
  Connection(grpc::ServerContext* context, Stream* stream) : context_(context), stream_(stream) {}

  // Handler thread: until the worker or Drop() ends the stream.
  void Serve() {
    wire::WorkerMessage m;
    while (stream_->Read(&m)) {
      std::lock_guard<std::mutex> lock(mu_);
      if (m.has_heartbeat()) {
        ++heartbeats_;
        last_heartbeat_ = m.heartbeat();
      } else {
        inbox_.push_back(m);
      }
      cv_.notify_all();
    }
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }

  bool Send(const wire::CoordinatorMessage& m) {
    std::lock_guard<std::mutex> lock(mu_);
    return !closed_ && stream_->Write(m);
  }
  // The next non-heartbeat message, or nullopt after `timeout` / stream end.
  std::optional<wire::WorkerMessage> Next(Clock::duration timeout = seconds(30)) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !inbox_.empty() || closed_; });
    if (inbox_.empty()) return std::nullopt;
    wire::WorkerMessage m = inbox_.front();
    inbox_.pop_front();
    return m;
  }
  void Drop() { context_->TryCancel(); }
  bool WaitClosed(Clock::duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return closed_; });
  }
  int heartbeats() {
    std::lock_guard<std::mutex> lock(mu_);
    return heartbeats_;
  }
  wire::Heartbeat last_heartbeat() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_heartbeat_;
  }

 private:
  grpc::ServerContext* const context_;
  Stream* const stream_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<wire::WorkerMessage> inbox_;
  int heartbeats_ = 0;
  wire::Heartbeat last_heartbeat_;
  bool closed_ = false;
};

class FakeCoordinator final : public wire::WorkerLink::Service {
 public:
  // port 0: any free port.
  explicit FakeCoordinator(int port = 0, grpc::Status reject = grpc::Status::OK) : reject_(reject) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
  }
  ~FakeCoordinator() override { Stop(); }
  void Stop() {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + seconds(2));
    server_.reset();
  }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  grpc::Status Attach(grpc::ServerContext* context, Connection::Stream* stream) override {
    if (!reject_.ok()) {
      wire::WorkerMessage first;
      stream->Read(&first);
      std::lock_guard<std::mutex> lock(mu_);
      ++rejected_;
      cv_.notify_all();
      return reject_;
    }
    auto conn = std::make_shared<Connection>(context, stream);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto token = context->client_metadata().find("x-strata-join-token");
      join_tokens_.push_back(token == context->client_metadata().end()
                                 ? "(none)"
                                 : std::string(token->second.data(), token->second.size()));
      pending_.push_back(conn);
      cv_.notify_all();
    }
    conn->Serve();
    return grpc::Status::OK;
  }

  std::shared_ptr<Connection> NextConnection(Clock::duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !pending_.empty(); });
    if (pending_.empty()) return nullptr;
    auto c = pending_.front();
    pending_.pop_front();
    return c;
  }
  int rejected() {
    std::lock_guard<std::mutex> lock(mu_);
    return rejected_;
  }
  // The x-strata-join-token of every accepted Attach, in order ("(none)").
  std::vector<std::string> join_tokens() {
    std::lock_guard<std::mutex> lock(mu_);
    return join_tokens_;
  }

 private:
  const grpc::Status reject_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Connection>> pending_;
  int rejected_ = 0;
  std::vector<std::string> join_tokens_;
};

// ---------------------------------------------------------------- helpers

std::vector<std::string> WorkerArgs(const std::string& address, const std::string& connect_timeout_s = "30") {
  std::vector<std::string> a = {"--coordinator", address, "--model", kModel,      "--replica",
                                "3",             "--kv-blocks", "64",  "--max-context", "256",
                                "--block-size",  "16",          "--threads", "1", "--connect-timeout-s",
                                connect_timeout_s};
  return a;
}

wire::SamplingParams Params(float temperature, uint64_t seed) {
  wire::SamplingParams p;
  p.set_temperature(temperature);
  p.set_top_k(temperature > 0 ? 50 : 0);
  p.set_top_p(1);
  p.set_repetition_penalty(1);
  p.set_penalty_last_n(64);
  p.set_seed(seed);
  return p;
}

// Waits for a Register on `conn`, checks it and answers Registered.
void ExpectRegister(Connection& conn, const Engine& engine) {
  std::optional<wire::WorkerMessage> m = conn.Next(seconds(60));
  ASSERT_TRUE(m.has_value()) << "no Register";
  ASSERT_TRUE(m->has_register_());
  const wire::Register& r = m->register_();
  EXPECT_EQ(r.protocol_version(), 1u);
  EXPECT_EQ(r.replica(), 3u);
  EXPECT_EQ(r.pp_stage(), 0u);
  EXPECT_EQ(r.pp_size(), 1u);
  EXPECT_EQ(r.tp_rank(), 0u);
  EXPECT_EQ(r.tp_size(), 1u);
  EXPECT_EQ(r.device(), "cpu");
  EXPECT_EQ(r.kv_capacity_blocks(), 64u);
  EXPECT_EQ(r.block_size(), 16u);
  EXPECT_EQ(r.model().name(), "SmolLM2-135M-Instruct.Q4_1");
  EXPECT_EQ(r.model().source(), kModel);
  EXPECT_THAT(r.model().fingerprint(), HasSubstr("size:"));
  EXPECT_EQ(r.model().vocab_size(), static_cast<uint32_t>(engine.model_config().vocab_size));
  EXPECT_EQ(r.model().num_layers(), static_cast<uint32_t>(engine.model_config().n_layers));
  EXPECT_EQ(r.model().context_length(), 256u);
  wire::CoordinatorMessage reply;
  reply.mutable_registered()->set_worker_id("r3-w1");
  ASSERT_TRUE(conn.Send(reply));
}

wire::StepResult RunStep(Connection& conn, const wire::StepPlan& plan) {
  wire::CoordinatorMessage m;
  *m.mutable_step_plan() = plan;
  EXPECT_TRUE(conn.Send(m));
  std::optional<wire::WorkerMessage> r = conn.Next(seconds(30));
  EXPECT_TRUE(r.has_value() && r->has_step_result()) << "no StepResult for step " << plan.step_id();
  return r.has_value() ? r->step_result() : wire::StepResult();
}

class WorkerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveModel()) GTEST_SKIP() << "default model not installed (scripts/install_deps.sh)";
    EngineConfig c;
    c.model_path = kModel;
    c.max_context = 256;
    c.max_sequences = 2;
    c.threads = 1;
    auto e = Engine::Create(c);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
  }
  std::unique_ptr<Engine> engine_;
};

// ---------------------------------------------------------------- tests

TEST_F(WorkerProcessTest, RegistersGeneratesReattachesAndExitsOnSigterm) {
  FakeCoordinator coordinator;
  ASSERT_GT(coordinator.port(), 0);
  WorkerProcess worker(WorkerArgs(coordinator.address()));
  std::shared_ptr<Connection> conn = coordinator.NextConnection(seconds(60));
  ASSERT_NE(conn, nullptr) << worker.Output();
  ASSERT_NO_FATAL_FAILURE(ExpectRegister(*conn, *engine_));

  // Two sequences: greedy and seeded sampling, prefilled in one step, then
  // decoded together; the first prompt's prefill is split in two chunks.
  const std::vector<std::vector<int32_t>> prompts = {
      engine_->tokenizer().Encode("The capital of France is", true, false),
      engine_->tokenizer().Encode("Once upon a time, in a land far away,", true, false)};
  const std::vector<wire::SamplingParams> params = {Params(0, 1), Params(0.9f, 4242)};
  const int kTokens = 8;
  std::vector<std::vector<int32_t>> got(2);
  uint64_t step = 0;
  {
    wire::StepPlan p;
    p.set_step_id(++step);
    for (int i = 0; i < 2; ++i) {
      wire::NewSequence* n = p.add_new_sequences();
      n->set_seq_id(10 + i);
      for (int32_t t : prompts[i]) n->add_token_ids(t);
      n->set_num_prompt_tokens(prompts[i].size());
      *n->mutable_sampling() = params[i];
      n->add_block_ids(i == 0 ? 17 : 5);
      n->add_block_ids(i == 0 ? 2 : 40);
      n->set_num_scheduled_tokens(i == 0 ? 2 : prompts[i].size());
    }
    wire::StepResult r = RunStep(*conn, p);
    ASSERT_FALSE(r.has_error()) << r.error().message();
    ASSERT_EQ(r.step_id(), step);
    ASSERT_EQ(r.tokens_size(), 1);  // seq 10 is mid-prefill
    ASSERT_EQ(r.tokens(0).seq_id(), 11u);
    got[1].push_back(r.tokens(0).token_id());
  }
  bool first_rest = true;
  while (got[0].size() < kTokens || got[1].size() < kTokens) {
    wire::StepPlan p;
    p.set_step_id(++step);
    for (int i = 0; i < 2; ++i) {
      if (got[i].size() >= kTokens) continue;
      wire::RunningSequence* s = p.add_running_sequences();
      s->set_seq_id(10 + i);
      if (i == 0 && first_rest) {
        s->set_num_scheduled_tokens(prompts[0].size() - 2);
        first_rest = false;
      } else {
        s->add_new_token_ids(got[i].back());
        s->set_num_scheduled_tokens(1);
      }
    }
    wire::StepResult r = RunStep(*conn, p);
    ASSERT_FALSE(r.has_error()) << r.error().message();
    ASSERT_EQ(r.step_id(), step);
    for (const wire::SampledToken& t : r.tokens()) got[t.seq_id() - 10].push_back(t.token_id());
  }
  for (int i = 0; i < 2; ++i) {
    GenerateRequest req;
    req.prompt = prompts[i];
    req.sampling = FromProto(params[i]);
    req.max_tokens = kTokens;
    req.stop_at_eog = false;
    auto ref = engine_->Generate({req}, nullptr);
    ASSERT_TRUE(ref.ok()) << ref.status();
    EXPECT_EQ(got[i], (*ref)[0].tokens) << "seq " << 10 + i;
  }

  // Heartbeats flow (about one a second) and report the last step.
  const auto hb_deadline = Clock::now() + seconds(5);
  while (Clock::now() < hb_deadline &&
         (conn->heartbeats() == 0 || conn->last_heartbeat().last_completed_step_id() != step)) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_GT(conn->heartbeats(), 0);
  EXPECT_EQ(conn->last_heartbeat().last_completed_step_id(), step);
  EXPECT_GT(conn->last_heartbeat().unix_time_millis(), 1600000000000u);

  // The coordinator drops the stream: the worker attaches again, registers
  // anew and starts with empty per-sequence state at step 1.
  conn->Drop();
  std::shared_ptr<Connection> conn2 = coordinator.NextConnection(seconds(20));
  ASSERT_NE(conn2, nullptr) << worker.Output();
  ASSERT_NO_FATAL_FAILURE(ExpectRegister(*conn2, *engine_));
  {
    wire::StepPlan p;
    p.set_step_id(1);
    wire::RunningSequence* s = p.add_running_sequences();
    s->set_seq_id(11);
    s->set_num_scheduled_tokens(1);
    wire::StepResult r = RunStep(*conn2, p);
    ASSERT_TRUE(r.has_error());
    EXPECT_EQ(r.error().code(), 3);
    EXPECT_THAT(r.error().message(), HasSubstr("seq 11: running_sequences.seq_id is not held"));

    wire::StepPlan q;
    q.set_step_id(2);
    wire::NewSequence* n = q.add_new_sequences();
    n->set_seq_id(20);
    for (int32_t t : prompts[0]) n->add_token_ids(t);
    n->set_num_prompt_tokens(prompts[0].size());
    *n->mutable_sampling() = params[0];
    n->add_block_ids(63);
    n->add_block_ids(1);
    n->set_num_scheduled_tokens(prompts[0].size());
    r = RunStep(*conn2, q);
    ASSERT_FALSE(r.has_error()) << r.error().message();
    ASSERT_EQ(r.tokens_size(), 1);
    EXPECT_EQ(r.tokens(0).token_id(), got[0][0]);
  }

  // SIGTERM: the worker tells the coordinator it leaves, executes no plan
  // after that, and exits 0 as soon as the coordinator answers.
  worker.Signal(SIGTERM);
  std::optional<wire::WorkerMessage> leave = conn2->Next(seconds(10));
  ASSERT_TRUE(leave.has_value() && leave->has_leave()) << worker.Output();
  EXPECT_EQ(leave->leave().reason(), "SIGTERM received");
  EXPECT_EQ(leave->leave().last_completed_step_id(), 2u);
  {
    wire::CoordinatorMessage late;  // sent before the coordinator read Leave
    late.mutable_step_plan()->set_step_id(3);
    EXPECT_TRUE(conn2->Send(late));
  }
  const auto acked = Clock::now();
  wire::CoordinatorMessage ack;
  ack.mutable_shutdown()->set_reason("left replica 3");
  ASSERT_TRUE(conn2->Send(ack));
  EXPECT_EQ(worker.ExitCode(seconds(10)), 0) << worker.Output();
  EXPECT_LT(Clock::now() - acked, seconds(3));
  EXPECT_TRUE(conn2->WaitClosed(seconds(5)));
  EXPECT_FALSE(conn2->Next(milliseconds(10)).has_value()) << "the plan after Leave was answered";
  const std::string out = worker.Output();
  EXPECT_THAT(out, HasSubstr("[worker r3] "));
  EXPECT_THAT(out, HasSubstr("SIGTERM received; leaving the replica"));
  EXPECT_THAT(out, HasSubstr("left the replica; the coordinator acknowledged"));
}

// A coordinator that does not answer Leave (one that predates it ignores the
// message): the worker closes the stream itself after its 5 s bound, exit 0.
TEST_F(WorkerProcessTest, SigtermWithoutAnAnswerStillExitsZeroWithinTheBound) {
  FakeCoordinator coordinator;
  WorkerProcess worker(WorkerArgs(coordinator.address()));
  std::shared_ptr<Connection> conn = coordinator.NextConnection(seconds(60));
  ASSERT_NE(conn, nullptr) << worker.Output();
  ASSERT_NO_FATAL_FAILURE(ExpectRegister(*conn, *engine_));
  const auto start = Clock::now();
  worker.Signal(SIGTERM);
  std::optional<wire::WorkerMessage> leave = conn->Next(seconds(10));
  ASSERT_TRUE(leave.has_value() && leave->has_leave()) << worker.Output();
  EXPECT_EQ(worker.ExitCode(seconds(15)), 0) << worker.Output();
  EXPECT_LT(Clock::now() - start, seconds(8));
  EXPECT_TRUE(conn->WaitClosed(seconds(5)));
  EXPECT_THAT(worker.Output(), HasSubstr("no answer to Leave in time"));
}

// SIGTERM while the worker is still dialing: nothing to leave, exit 0 at once.
TEST_F(WorkerProcessTest, SigtermWhileDialingExitsZeroAtOnce) {
  int port = 0;
  {
    FakeCoordinator probe;  // a port nobody listens on
    port = probe.port();
  }
  WorkerProcess worker(WorkerArgs("127.0.0.1:" + std::to_string(port)));
  const auto loaded = Clock::now() + seconds(60);
  while (worker.Output().find("not reachable yet") == std::string::npos && Clock::now() < loaded) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_THAT(worker.Output(), HasSubstr("not reachable yet"));
  const auto start = Clock::now();
  worker.Signal(SIGTERM);
  EXPECT_EQ(worker.ExitCode(seconds(10)), 0) << worker.Output();
  EXPECT_LT(Clock::now() - start, seconds(2));
}

// A step still running past --max-step-s ends the process with status 3 and a
// line saying why, without waiting for the step: here a 200-token prefill on
// one thread against a 50 ms bound stands in for a device call that never
// returns. Steps within the bound (registration, idle time) do not trip it.
TEST_F(WorkerProcessTest, AStepPastMaxStepSEndsTheProcessWithThree) {
  FakeCoordinator coordinator;
  std::vector<std::string> args = WorkerArgs(coordinator.address());
  args.insert(args.end(), {"--max-step-s", "0.05"});
  WorkerProcess worker(args);
  std::shared_ptr<Connection> conn = coordinator.NextConnection(seconds(60));
  ASSERT_NE(conn, nullptr) << worker.Output();
  ASSERT_NO_FATAL_FAILURE(ExpectRegister(*conn, *engine_));
  std::this_thread::sleep_for(milliseconds(300));  // idle, well past the bound: no step, no exit
  ASSERT_FALSE(worker.Wait(milliseconds(1)).has_value()) << worker.Output();
  wire::CoordinatorMessage m;
  wire::StepPlan* p = m.mutable_step_plan();
  p->set_step_id(1);
  wire::NewSequence* n = p->add_new_sequences();
  n->set_seq_id(1);
  for (int i = 0; i < 200; ++i) n->add_token_ids(100 + (i * 37) % 5000);
  n->set_num_prompt_tokens(200);
  *n->mutable_sampling() = Params(0, 1);
  for (int b = 1; b <= 13; ++b) n->add_block_ids(b);
  n->set_num_scheduled_tokens(200);
  ASSERT_TRUE(conn->Send(m));
  EXPECT_EQ(worker.ExitCode(seconds(30)), 3) << worker.Output();
  EXPECT_THAT(worker.Output(), HasSubstr("past --max-step-s: wedged in the device; exiting with status 3"));
}

// --join-token-file: the token goes out as metadata on every Attach (also
// after a re-attach) and never into the log.
TEST_F(WorkerProcessTest, SendsItsJoinTokenOnEveryAttachWithoutLoggingIt) {
  const std::string token = "worker-test-join-token-0123456789";
  const std::string file = ::testing::TempDir() + "/strata_join_token_" + std::to_string(getpid());
  {
    std::ofstream out(file);
    out << "  " << token << "  \n";
  }
  FakeCoordinator coordinator;
  std::vector<std::string> args = WorkerArgs(coordinator.address());
  args.insert(args.end(), {"--join-token-file", file});
  WorkerProcess worker(args);
  std::shared_ptr<Connection> conn = coordinator.NextConnection(seconds(60));
  ASSERT_NE(conn, nullptr) << worker.Output();
  ASSERT_NO_FATAL_FAILURE(ExpectRegister(*conn, *engine_));
  conn->Drop();  // a broken stream: the worker dials again
  std::shared_ptr<Connection> again = coordinator.NextConnection(seconds(30));
  ASSERT_NE(again, nullptr) << worker.Output();
  EXPECT_EQ(coordinator.join_tokens(), (std::vector<std::string>{token, token}));
  ASSERT_NO_FATAL_FAILURE(ExpectRegister(*again, *engine_));
  wire::CoordinatorMessage m;
  m.mutable_shutdown()->set_reason("test over");
  ASSERT_TRUE(again->Send(m));
  EXPECT_EQ(worker.ExitCode(seconds(30)), 0) << worker.Output();
  EXPECT_THAT(worker.Output(), Not(HasSubstr(token)));
  std::remove(file.c_str());
}

TEST(WorkerFlagsTest, JoinTokenFileMustHoldAToken) {
  const std::string file = ::testing::TempDir() + "/strata_short_token_" + std::to_string(getpid());
  {
    std::ofstream out(file);
    out << "short-secret\n";
  }
  for (const std::string& path : {file, std::string("/nonexistent/token")}) {
    WorkerProcess worker({"--coordinator", "localhost:1", "--model", kModel, "--join-token-file", path});
    EXPECT_EQ(worker.ExitCode(seconds(20)), 2) << worker.Output();
    EXPECT_THAT(worker.Output(), HasSubstr("--join-token-file"));
    EXPECT_THAT(worker.Output(), Not(HasSubstr("short-secret")));
  }
  std::remove(file.c_str());
}

TEST_F(WorkerProcessTest, ShutdownMessageEndsTheProcessWithZero) {
  FakeCoordinator coordinator;
  WorkerProcess worker(WorkerArgs(coordinator.address()));
  std::shared_ptr<Connection> conn = coordinator.NextConnection(seconds(60));
  ASSERT_NE(conn, nullptr) << worker.Output();
  ASSERT_NO_FATAL_FAILURE(ExpectRegister(*conn, *engine_));
  wire::CoordinatorMessage m;
  m.mutable_shutdown()->set_reason("test over");
  ASSERT_TRUE(conn->Send(m));
  EXPECT_EQ(worker.ExitCode(seconds(15)), 0) << worker.Output();
  EXPECT_THAT(worker.Output(), HasSubstr("test over"));
}

TEST_F(WorkerProcessTest, DialsUntilALateCoordinatorAppears) {
  int port = 0;
  {
    FakeCoordinator probe;  // learn a free port, then free it
    port = probe.port();
  }
  ASSERT_GT(port, 0);
  WorkerProcess worker(WorkerArgs("127.0.0.1:" + std::to_string(port)));
  std::this_thread::sleep_for(milliseconds(1500));
  FakeCoordinator coordinator(port);
  ASSERT_EQ(coordinator.port(), port);
  std::shared_ptr<Connection> conn = coordinator.NextConnection(seconds(30));
  ASSERT_NE(conn, nullptr) << worker.Output();
  ASSERT_NO_FATAL_FAILURE(ExpectRegister(*conn, *engine_));
  worker.Signal(SIGINT);
  std::optional<wire::WorkerMessage> leave = conn->Next(seconds(10));
  ASSERT_TRUE(leave.has_value() && leave->has_leave()) << worker.Output();
  EXPECT_EQ(leave->leave().reason(), "SIGINT received");
  wire::CoordinatorMessage ack;
  ack.mutable_shutdown()->set_reason("left replica 3");
  conn->Send(ack);
  EXPECT_EQ(worker.ExitCode(seconds(10)), 0) << worker.Output();
}

TEST_F(WorkerProcessTest, UnreachableOrRefusingCoordinatorExitsOne) {
  int port = 0;
  {
    FakeCoordinator probe;
    port = probe.port();
  }
  {
    WorkerProcess worker(WorkerArgs("127.0.0.1:" + std::to_string(port), "1"));
    EXPECT_EQ(worker.ExitCode(seconds(30)), 1) << worker.Output();
    EXPECT_THAT(worker.Output(), HasSubstr("could not reach the coordinator"));
  }
  FakeCoordinator refusing(0, grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "block_size 16 != 32"));
  WorkerProcess worker(WorkerArgs(refusing.address()));
  EXPECT_EQ(worker.ExitCode(seconds(30)), 1) << worker.Output();
  EXPECT_THAT(worker.Output(), HasSubstr("block_size 16 != 32"));
  EXPECT_EQ(refusing.rejected(), 1);
}

struct BadFlags {
  std::vector<std::string> args;
  std::string flag;
};

TEST(WorkerFlagsTest, BadFlagsExitTwoNamingTheFlag) {
  const std::string m = kModel;
  const std::vector<BadFlags> cases = {
      {{"--model", m}, "--coordinator"},
      {{"--coordinator", "localhost"}, "--coordinator"},
      {{"--coordinator", "localhost:1"}, "--model"},
      {{"--coordinator", "localhost:1", "--model", "/nonexistent/x.gguf"}, "--model"},
      {{"--coordinator", "localhost:1", "--model", m, "--replica", "-1"}, "--replica"},
      {{"--coordinator", "localhost:1", "--model", m, "--replica", "x"}, "--replica"},
      {{"--coordinator", "localhost:1", "--model", m, "--threads", "0"}, "--threads"},
      {{"--coordinator", "localhost:1", "--model", m, "--tp-size", "0"}, "--tp-size"},
      {{"--coordinator", "localhost:1", "--model", m, "--pp-size", "2", "--pp-layer-split", "5"}, "--pp-layer-split"},
      {{"--coordinator", "localhost:1", "--model", m, "--pp-size", "2", "--pp-layer-split", "5,x"}, "--pp-layer-split"},
      {{"--coordinator", "localhost:1", "--model", m, "--collective-timeout-s", "0"}, "--collective-timeout-s"},
      {{"--coordinator", "localhost:1", "--model", m, "--tp-rank", "1"}, "--tp-rank"},
      {{"--coordinator", "localhost:1", "--model", m, "--device", "cuda:x"}, "--device"},
      // Parses, but no machine has 1000 GPUs: refused before the model loads.
      {{"--coordinator", "localhost:1", "--model", m, "--device", "cuda:999"}, "--device cuda:999"},
      {{"--coordinator", "localhost:1", "--model", m, "--device", "tpu"}, "--device"},
      {{"--coordinator", "localhost:1", "--model", m, "--kv-dtype", "q8"}, "--kv-dtype"},
      {{"--coordinator", "localhost:1", "--model", m, "--kv-blocks", "9", "--kv-cache-mb", "9"}, "--kv-blocks"},
      {{"--coordinator", "localhost:1", "--model", m, "--connect-timeout-s", "-3"}, "--connect-timeout-s"},
      {{"--coordinator", "localhost:1", "--model", m, "--max-step-s", "-1"}, "--max-step-s"},
      {{"--coordinator", "localhost:1", "--model", m, "--bogus", "1"}, "--bogus"},
      {{"--coordinator", "localhost:1", "--model", m, "--threads"}, "--threads"},
      {{"--coordinator", "localhost:1", "--model", m, "--gpu-memory-utilization", "0"}, "--gpu-memory-utilization"},
      {{"--coordinator", "localhost:1", "--model", m, "--gpu-memory-utilization", "1.01"},
       "--gpu-memory-utilization"},
      {{"--coordinator", "localhost:1", "--model", m, "--collective-transport", "udp"}, "--collective-transport"},
      // Host-buffer transports cannot read GPU activations; NCCL needs a GPU.
      // Refused while parsing, before the device is checked.
      {{"--coordinator", "localhost:1", "--model", m, "--device", "cuda:0", "--collective-transport", "tcp"},
       "--collective-transport tcp"},
      {{"--coordinator", "localhost:1", "--model", m, "--device", "cuda:0", "--collective-transport", "shm"},
       "--collective-transport shm"},
      {{"--coordinator", "localhost:1", "--model", m, "--collective-transport", "nccl"}, "--collective-transport nccl"},
  };
  for (const BadFlags& c : cases) {
    WorkerProcess worker(c.args);
    EXPECT_EQ(worker.ExitCode(seconds(20)), 2) << c.flag << ": " << worker.Output();
    EXPECT_THAT(worker.Output(), HasSubstr(c.flag));
  }
}

// A worker started for a GPU on a machine without one exits 2 at once (before
// loading the model) with a message naming the device and the reason.
TEST(WorkerFlagsTest, CudaDeviceWithoutAGpuIsAClearError) {
  if (CheckDevice(DeviceSpec{DeviceKind::kCuda, 0}).ok()) GTEST_SKIP() << "this machine has CUDA device 0";
  WorkerProcess worker({"--coordinator", "localhost:1", "--model", kModel, "--device", "cuda:0"});
  EXPECT_EQ(worker.ExitCode(seconds(20)), 2) << worker.Output();
  EXPECT_THAT(worker.Output(), HasSubstr("--device cuda:0"));
  EXPECT_THAT(worker.Output(), ::testing::AnyOf(HasSubstr("no CUDA device"), HasSubstr("no CUDA backend")));
  EXPECT_THAT(worker.Output(), ::testing::Not(HasSubstr("loading")));
}

// Flags whose check needs the model (KV budget, context) also exit 2.
TEST(WorkerFlagsTest, KvBudgetAndContextChecksNameTheFlag) {
  if (!HaveModel()) GTEST_SKIP() << "default model not installed";
  const std::vector<BadFlags> cases = {
      {{"--coordinator", "localhost:1", "--model", kModel, "--kv-cache-mb", "1"}, "--kv-cache-mb"},
      {{"--coordinator", "localhost:1", "--model", kModel, "--kv-blocks", "10"}, "--kv-blocks"},
      {{"--coordinator", "localhost:1", "--model", kModel, "--max-context", "100000"}, "--max-context"},
      // 3 KV heads do not split over 4 ranks; 30 layers not over 31 stages.
      {{"--coordinator", "localhost:1", "--model", kModel, "--tp-size", "4"}, "--tp-size"},
      {{"--coordinator", "localhost:1", "--model", kModel, "--pp-size", "31"}, "--pp-size"},
  };
  for (const BadFlags& c : cases) {
    WorkerProcess worker(c.args);
    EXPECT_EQ(worker.ExitCode(seconds(30)), 2) << c.flag << ": " << worker.Output();
    EXPECT_THAT(worker.Output(), HasSubstr(c.flag));
  }
}

TEST(WorkerFlagsTest, HelpExitsZero) {
  WorkerProcess worker({"--help"});
  EXPECT_EQ(worker.ExitCode(seconds(10)), 0);
  EXPECT_THAT(worker.Output(), HasSubstr("--kv-cache-mb"));
}

// ---- flag parsing and the collective transport choice (host logic) ----

absl::StatusOr<WorkerFlags> Parse(std::vector<std::string> extra) {
  std::vector<std::string> args = {"--coordinator", "localhost:1", "--model", "/"};
  args.insert(args.end(), extra.begin(), extra.end());
  return ParseWorkerFlags(args);
}

TEST(WorkerFlagsUnitTest, GpuMemoryUtilizationDefaultRangeAndKvSizing) {
  absl::StatusOr<WorkerFlags> cpu = Parse({});
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_EQ(cpu->gpu_memory_utilization, 0.9);
  EXPECT_EQ(cpu->kv_cache_mb, kDefaultKvCacheMb);  // CPU: the fixed default budget
  EXPECT_FALSE(SizesKvFromDevice(ExecutorConfigFromFlags(*cpu)));

  // CUDA without --kv-cache-mb / --kv-blocks: sized from the device.
  absl::StatusOr<WorkerFlags> cuda = Parse({"--device", "cuda:1", "--gpu-memory-utilization", "0.75"});
  ASSERT_TRUE(cuda.ok()) << cuda.status();
  EXPECT_EQ(cuda->kv_cache_mb, 0);
  StepExecutorConfig config = ExecutorConfigFromFlags(*cuda);
  EXPECT_TRUE(SizesKvFromDevice(config));
  EXPECT_EQ(config.gpu_memory_utilization, 0.75);
  EXPECT_EQ(config.kv_cache_bytes, 0);
  EXPECT_EQ(config.kv_blocks, 0);
  // Either size flag keeps the operator's number on CUDA too.
  EXPECT_FALSE(SizesKvFromDevice(ExecutorConfigFromFlags(*Parse({"--device", "cuda:0", "--kv-cache-mb", "64"}))));
  EXPECT_FALSE(SizesKvFromDevice(ExecutorConfigFromFlags(*Parse({"--device", "cuda:0", "--kv-blocks", "300"}))));
  EXPECT_TRUE(Parse({"--gpu-memory-utilization", "1"}).ok());
  EXPECT_TRUE(Parse({"--gpu-memory-utilization=0.05"}).ok());

  for (const char* bad : {"0", "-0.5", "1.5", "nan", "x", ""}) {
    absl::StatusOr<WorkerFlags> f = Parse({"--gpu-memory-utilization", bad});
    ASSERT_FALSE(f.ok()) << bad;
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(f.status().message()), ::testing::StartsWith("--gpu-memory-utilization"));
    EXPECT_THAT(std::string(f.status().message()), HasSubstr("(0, 1]"));
  }
  WorkerFlags f = *cuda;
  EXPECT_EQ(FlagForKvPlanError("gpu_memory_utilization 0.75: device memory: ...", f), "--gpu-memory-utilization");
  EXPECT_EQ(FlagForKvPlanError("max_context 5000 exceeds", f), "--max-context");
}

TEST(WorkerFlagsUnitTest, CollectiveTransportFollowsTheDevice) {
  const DeviceSpec cpu{DeviceKind::kCpu, 0};
  const DeviceSpec gpu3{DeviceKind::kCuda, 3};
  // auto: NCCL on the worker's GPU, the CPU transports' own auto on the CPU.
  absl::StatusOr<CollectiveChoice> c = ChooseCollective(CollectiveTransport::kAuto, gpu3);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->nccl);
  EXPECT_EQ(c->cuda_device, 3);
  c = ChooseCollective(CollectiveTransport::kNccl, gpu3);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->nccl);
  c = ChooseCollective(CollectiveTransport::kAuto, cpu);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->nccl);
  EXPECT_EQ(c->cpu, parallel::CpuTransport::kAuto);
  EXPECT_EQ(ChooseCollective(CollectiveTransport::kTcp, cpu)->cpu, parallel::CpuTransport::kTcp);
  EXPECT_EQ(ChooseCollective(CollectiveTransport::kSharedMemory, cpu)->cpu, parallel::CpuTransport::kSharedMemory);
  // Mismatches name the flag and the device.
  for (CollectiveTransport t : {CollectiveTransport::kTcp, CollectiveTransport::kSharedMemory}) {
    absl::StatusOr<CollectiveChoice> bad = ChooseCollective(t, gpu3);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(bad.status().message()),
                ::testing::StartsWith(absl::StrCat("--collective-transport ", CollectiveTransportName(t))));
    EXPECT_THAT(std::string(bad.status().message()), HasSubstr("--device cuda:3"));
  }
  absl::StatusOr<CollectiveChoice> nccl_on_cpu = ChooseCollective(CollectiveTransport::kNccl, cpu);
  ASSERT_FALSE(nccl_on_cpu.ok());
  EXPECT_THAT(std::string(nccl_on_cpu.status().message()), ::testing::StartsWith("--collective-transport nccl"));

  // The same through the parser.
  EXPECT_EQ(Parse({"--device", "cuda:0"})->collective_transport, CollectiveTransport::kAuto);
  EXPECT_EQ(Parse({"--device", "cuda:0", "--collective-transport", "nccl"})->collective_transport,
            CollectiveTransport::kNccl);
  EXPECT_EQ(Parse({"--collective-transport", "shm"})->collective_transport, CollectiveTransport::kSharedMemory);
  EXPECT_FALSE(Parse({"--device", "cuda:0", "--collective-transport", "tcp"}).ok());
  EXPECT_FALSE(Parse({"--collective-transport", "nccl"}).ok());
  absl::StatusOr<WorkerFlags> unknown = Parse({"--collective-transport", "udp"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("auto, tcp, shm or nccl"));
  EXPECT_EQ(ParseCollectiveTransport("nccl").value(), CollectiveTransport::kNccl);
}

}  // namespace
}  // namespace strata
