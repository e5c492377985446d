// Data-parallel cff-train (issue 18): ranks on localhost, started with the launcher's variables or by
// torchrun, train what one process trains; a resume may change the number of ranks; a rank that dies,
// stalls or is alone ends the others with a clear message, and the last checkpoint still resumes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "cff/model_file.h"
#include "training/distributed.h"

extern char **environ;

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it; closed again for the rendezvous).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0) return 29500;
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string read_text(const std::string &path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Starts `argv` with the environment plus `extra`, stdout and stderr to `log`.
pid_t spawn(const std::vector<std::string> &argv, const std::map<std::string, std::string> &extra, const std::string &log) {
  std::vector<std::string> env_strings;
  for (char **e = environ; *e; ++e) {
    const std::string entry = *e;
    if (!extra.count(entry.substr(0, entry.find('=')))) env_strings.push_back(entry);
  }
  for (const auto &[key, value] : extra) env_strings.push_back(key + "=" + value);
  std::vector<char *> envp, args;
  for (auto &s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto &s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// The exit status of `pid`, waiting at most `seconds` (then -1: still running).
int wait_for(pid_t pid, double seconds) {
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (true) {
    int status = 0;
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (Clock::now() > end) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

bool wait_for_file(const std::string &path, double seconds) {
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (!fs::exists(path)) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

class Distributed : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("cff_distributed_" + std::to_string(::getpid()));
    fs::create_directories(root_);
    const char *build = std::getenv("CFF_BUILD_ROOT");
    exe_ = build ? std::string(build) + "/training/cff-train" : "";
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  void SetUp() override {
    ASSERT_FALSE(exe_.empty()) << "run through meson test (CFF_BUILD_ROOT)";
    ASSERT_TRUE(cff::train::distributed_supported()) << "built without the meson feature 'distributed' (libgloo-dev)";
  }

  // A tiny run: 256 Fashion-MNIST images, batches of 32 (8 steps an epoch), the force from the first step.
  static std::vector<std::string> args(const std::string &run, const std::vector<std::string> &more = {}) {
    std::vector<std::string> a = {exe_, "--data", "fashion-mnist", "--out", (root_ / run).string(), "--limit", "256",
                                  "--epochs", "1", "--batch", "32", "--widths", "8,16", "--groups", "4",
                                  "--holdout", "200", "--eval-limit", "100", "--samples-every", "0", "--ood", "uniform",
                                  "--threads", "1", "--device", "cpu", "--progress", "1000", "--warmup-accuracy", "0",
                                  "--force-warmup", "0"};
    a.insert(a.end(), more.begin(), more.end());
    return a;
  }

  static std::map<std::string, std::string> rank_env(int rank, int size, int port) {
    return {{"RANK", std::to_string(rank)}, {"WORLD_SIZE", std::to_string(size)}, {"LOCAL_RANK", std::to_string(rank)},
            {"LOCAL_WORLD_SIZE", std::to_string(size)}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", std::to_string(port)}};
  }

  // Runs `size` ranks of cff-train `a` on localhost; returns their exit codes (logs in root/NAME.rankR.log).
  static std::vector<int> run_ranks(int size, const std::vector<std::string> &a, const std::string &name) {
    const int port = free_port();
    std::vector<pid_t> pids;
    for (int r = 0; r < size; ++r) pids.push_back(spawn(a, rank_env(r, size, port), log(name, r)));
    std::vector<int> codes;
    for (auto pid : pids) codes.push_back(pid > 0 ? wait_for(pid, 300) : -2);
    return codes;
  }

  static int run_alone(const std::vector<std::string> &a, const std::string &name) {
    const pid_t pid = spawn(a, {{"WORLD_SIZE", "1"}}, log(name, 0));
    return pid > 0 ? wait_for(pid, 300) : -2;
  }

  static std::string log(const std::string &name, int rank) {
    return (root_ / (name + ".rank" + std::to_string(rank) + ".log")).string();
  }

  // The two runs' exported weights agree to float tolerance (the sums over the ranks are taken in another
  // order), and their metrics lines too.
  static void expect_same_training(const std::string &a, const std::string &b) {
    auto ma = cff::load_model((root_ / a / "model.cff").string());
    auto mb = cff::load_model((root_ / b / "model.cff").string());
    auto pa = ma.network->named_parameters();
    auto pb = mb.network->named_parameters();
    ASSERT_EQ(pa.size(), pb.size());
    double largest = 0;
    for (const auto &item : pa) {
      largest = std::max(largest, (item.value() - pb[item.key()]).abs().max().item<double>());
    }
    EXPECT_LT(largest, 1e-4) << a << " vs " << b;
    for (const char *key : {"train_loss", "train_ce", "train_force", "train_accuracy"}) {
      EXPECT_NEAR(ma.metadata.metrics[key].get<double>(), mb.metadata.metrics[key].get<double>(), 1e-4) << key;
    }
  }

  static inline fs::path root_;
  static inline std::string exe_;
};

}  // namespace

TEST_F(Distributed, TwoRanksTrainWhatOneRankTrains) {
  for (const std::string objective : {"cff", "ce"}) {
    ASSERT_EQ(run_alone(args("one-" + objective, {"--objective", objective}), "one-" + objective), 0);
    const auto codes = run_ranks(2, args("two-" + objective, {"--objective", objective}), "two-" + objective);
    ASSERT_EQ(codes, (std::vector<int>{0, 0})) << read_text(log("two-" + objective, 0)) << read_text(log("two-" + objective, 1));
    expect_same_training("one-" + objective, "two-" + objective);
    // Rank 0 alone writes: its log has the plan and the export, rank 1's nothing but LibTorch's own lines.
    EXPECT_NE(read_text(log("two-" + objective, 0)).find("distributed: 2 ranks"), std::string::npos);
    EXPECT_EQ(read_text(log("two-" + objective, 1)).find("exported"), std::string::npos);
  }
}

TEST_F(Distributed, TorchrunLaunchesTheRanks) {
  ASSERT_EQ(run_alone(args("torchrun-one"), "torchrun-one"), 0);
  std::vector<std::string> a = {"torchrun", "--standalone", "--nproc_per_node", "2", "--no_python", "--redirects", "1",
                                "--tee", "1"};
  const auto train = args("torchrun-two");
  a.insert(a.end(), train.begin(), train.end());
  // Under tools/sanitize.sh the sanitizer runtime is preloaded into every process: LeakSanitizer's tracer crashes
  // at the exit of torchrun itself (Python with LibTorch, not ours), so leaks are not looked for in this test (the
  // ranks' own leaks are, in the other tests).
  std::map<std::string, std::string> env;
  if (const char *asan = std::getenv("ASAN_OPTIONS")) env["ASAN_OPTIONS"] = std::string(asan) + ":detect_leaks=0";
  const pid_t pid = spawn(a, env, log("torchrun-two", 0));
  ASSERT_GT(pid, 0);
  ASSERT_EQ(wait_for(pid, 300), 0) << read_text(log("torchrun-two", 0));
  EXPECT_NE(read_text(log("torchrun-two", 0)).find("distributed: 2 ranks (2 on this machine"), std::string::npos);
  expect_same_training("torchrun-one", "torchrun-two");
}

// --resume with another number of ranks: 2 ranks stop after epoch 1 and 1 rank finishes, and the reverse,
// both equal to one uninterrupted process.
TEST_F(Distributed, ResumeWithAnotherNumberOfRanks) {
  ASSERT_EQ(run_alone(args("resume-ref", {"--epochs", "2"}), "resume-ref"), 0);
  ASSERT_EQ(run_ranks(2, args("resume-a", {"--epochs", "2", "--stop-after", "1"}), "resume-a1"), (std::vector<int>{0, 0}));
  EXPECT_FALSE(fs::exists(root_ / "resume-a" / "model.cff"));
  ASSERT_EQ(run_alone(args("resume-a", {"--epochs", "2", "--resume"}), "resume-a2"), 0) << read_text(log("resume-a2", 0));
  expect_same_training("resume-ref", "resume-a");

  ASSERT_EQ(run_alone(args("resume-b", {"--epochs", "2", "--stop-after", "1"}), "resume-b1"), 0);
  ASSERT_EQ(run_ranks(2, args("resume-b", {"--epochs", "2", "--resume"}), "resume-b2"), (std::vector<int>{0, 0}))
      << read_text(log("resume-b2", 0)) << read_text(log("resume-b2", 1));
  expect_same_training("resume-ref", "resume-b");
}

// Faults: a rank alone times out; a killed rank ends the other at once; a stopped one after --dist-timeout.
// Each says which rank and why in one line, and the checkpoint written before the fault resumes.
TEST_F(Distributed, AFailedRankEndsTheOthersWithAClearMessage_n) {
  {
    const int port = free_port();
    const auto start = Clock::now();
    const pid_t pid = spawn(args("alone", {"--dist-timeout", "3"}), rank_env(0, 2, port), log("alone", 0));
    const int code = wait_for(pid, 120);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const auto text = read_text(log("alone", 0));
    EXPECT_EQ(code, 1) << text;
    EXPECT_NE(text.find("cff-train: error: rank 0 of 2: cannot join the others at 127.0.0.1:" + std::to_string(port)),
              std::string::npos) << text;
    EXPECT_LT(seconds, 60) << text;
  }
  // A longer run (6 epochs of 32 steps), so that the fault lands mid-training.
  const std::vector<std::string> longer = {"--epochs", "6", "--limit", "1024"};
  for (const std::string fault : {"kill", "stop"}) {
    auto a = args("fault-" + fault, longer);
    a.insert(a.end(), {"--dist-timeout", "5"});
    const int port = free_port();
    const pid_t r0 = spawn(a, rank_env(0, 2, port), log("fault-" + fault, 0));
    const pid_t r1 = spawn(a, rank_env(1, 2, port), log("fault-" + fault, 1));
    ASSERT_TRUE(wait_for_file((root_ / ("fault-" + fault) / "checkpoint.pt").string(), 120))
        << read_text(log("fault-" + fault, 0));
    const auto start = Clock::now();
    ::kill(r1, fault == "kill" ? SIGKILL : SIGSTOP);
    const int code = wait_for(r0, 120);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const auto text = read_text(log("fault-" + fault, 0));
    ::kill(r1, SIGKILL);
    wait_for(r1, 30);
    EXPECT_EQ(code, 1) << fault << ": " << text;
    EXPECT_NE(text.find("cff-train: error: rank 0 of 2: "), std::string::npos) << text;
    EXPECT_NE(text.find("failed"), std::string::npos) << text;
    if (fault == "kill") {
      EXPECT_LT(seconds, 10) << "a dead peer is seen at once: " << text;
    } else {
      EXPECT_GT(seconds, 4) << "a stopped peer is waited for --dist-timeout 5: " << text;
      EXPECT_LT(seconds, 30) << text;
    }
    // The checkpoint from before the fault resumes (with one process) to the end.
    auto resume = a;
    resume.push_back("--resume");
    ASSERT_EQ(run_alone(resume, "fault-" + fault + "-resume"), 0) << read_text(log("fault-" + fault + "-resume", 0));
    EXPECT_TRUE(fs::exists(root_ / ("fault-" + fault) / "model.cff"));
  }
}
