// c10d behind training/distributed.h: a TCPStore rendezvous and ProcessGroupGloo collectives. The only
// file that includes c10d; without the meson feature `distributed` it builds the lone-process World.
#include "training/distributed.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#ifdef CFF_DISTRIBUTED
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace cff::train {

namespace {

// An integer environment variable, or `fallback` when unset. Throws naming the variable when not a number.
int env_int(const char *name, int fallback) {
  const char *v = std::getenv(name);
  if (!v || !*v) return fallback;
  char *end = nullptr;
  const long value = std::strtol(v, &end, 10);
  if (*end != '\0' || value < 0 || value > 1 << 20) {
    throw std::runtime_error(std::string("distributed: ") + name + "='" + v + "' is not a count");
  }
  return static_cast<int>(value);
}

std::string env_string(const char *name) {
  const char *v = std::getenv(name);
  return v ? v : "";
}

#ifdef CFF_DISTRIBUTED
std::string first_line(const std::string &text) {
  const auto start = text.find_first_not_of('\n');
  if (start == std::string::npos) return text;
  return text.substr(start, text.find('\n', start) - start);
}
#endif

}  // namespace

#ifdef CFF_DISTRIBUTED
struct World::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
};
bool distributed_supported() { return true; }
#else
struct World::Group {};
bool distributed_supported() { return false; }
#endif

World::World() = default;
World::~World() = default;

std::string World::describe() const {
  if (size_ == 1) return "one process";
  return "rank " + std::to_string(rank_) + " of " + std::to_string(size_);
}

std::shared_ptr<World> World::from_environment(double timeout_seconds) {
  auto world = std::make_shared<World>();
  const int size = env_int("WORLD_SIZE", 1);
  if (size <= 1) return world;
  if (std::getenv("RANK") == nullptr) throw std::runtime_error("distributed: WORLD_SIZE is set but RANK is not");
  world->size_ = size;
  world->rank_ = env_int("RANK", 0);
  if (world->rank_ >= size) {
    throw std::runtime_error("distributed: RANK " + std::to_string(world->rank_) + " is not below WORLD_SIZE " +
                             std::to_string(size));
  }
  world->local_rank_ = env_int("LOCAL_RANK", world->rank_);
  world->local_size_ = env_int("LOCAL_WORLD_SIZE", size);
  const std::string addr = env_string("MASTER_ADDR").empty() ? "127.0.0.1" : env_string("MASTER_ADDR");
  const int port = env_int("MASTER_PORT", -1);
  if (port <= 0 || port > 65535) throw std::runtime_error("distributed: MASTER_PORT is not set to a port");
  if (!(timeout_seconds > 0)) throw std::runtime_error("distributed: the timeout must be positive");
#ifndef CFF_DISTRIBUTED
  throw std::runtime_error("distributed: WORLD_SIZE is " + std::to_string(size) +
                           " but this cff-train was built without distributed training (meson feature "
                           "'distributed'; Debian: libgloo-dev)");
#else
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  const std::string where = world->describe() + ": cannot join the others at " + addr + ":" + std::to_string(port);
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(port);
    options.numWorkers = size;
    options.waitWorkers = false;
    options.timeout = timeout;
    options.multiTenant = true;
    auto group = std::make_unique<Group>();
    if (env_string("TORCHELASTIC_USE_AGENT_STORE") == "True") {
      // torchrun's agent hosts the store; its workers keep their keys under the attempt's prefix.
      options.isServer = false;
      group->store = c10::make_intrusive<c10d::PrefixStore>(
          "/worker/attempt_" + env_string("TORCHELASTIC_RESTART_COUNT"), c10::make_intrusive<c10d::TCPStore>(addr, options));
    } else {
      options.isServer = world->rank_ == 0;
      group->store = c10::make_intrusive<c10d::TCPStore>(addr, options);
    }
    auto pg_options = c10d::ProcessGroupGloo::Options::create(timeout);
    const std::string interface = env_string("GLOO_SOCKET_IFNAME");
    pg_options->devices.push_back(interface.empty() ? c10d::ProcessGroupGloo::createDefaultDevice()
                                                    : c10d::ProcessGroupGloo::createDeviceForInterface(interface));
    group->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(group->store, world->rank_, size, pg_options);
    world->group_ = std::move(group);
  } catch (const c10::Error &e) {
    throw std::runtime_error(where + " (" + first_line(e.what_without_backtrace()) + ")");
  } catch (const std::exception &e) {
    throw std::runtime_error(where + " (" + first_line(e.what()) + ")");
  }
  return world;
#endif
}

#ifdef CFF_DISTRIBUTED
namespace {

// A collective that fails leaves the step half done on some ranks: nothing to resume from but the last
// checkpoint. Say so in one line and exit now (the process group's destructor could wait on the dead peer).
template <typename Call>
void collective(const World &world, const char *what, Call &&call) {
  try {
    call();
  } catch (const std::exception &e) {
    const auto *c10 = dynamic_cast<const c10::Error *>(&e);
    const std::string reason = first_line(c10 ? c10->what_without_backtrace() : e.what());
    std::fflush(stdout);
    std::fprintf(stderr, "cff-train: error: %s: %s failed: %s (the last checkpoint is kept; --resume continues)\n",
                 world.describe().c_str(), what, reason.c_str());
    std::fflush(stderr);
    std::_Exit(1);
  }
}

}  // namespace
#endif

void World::sum(torch::Tensor &t, const char *what) {
  if (size_ == 1) return;
#ifdef CFF_DISTRIBUTED
  collective(*this, what, [&] {
    std::vector<at::Tensor> tensors{t};
    group_->pg->allreduce(tensors)->wait();
  });
#endif
}

void World::broadcast(torch::Tensor &t, const char *what) {
  if (size_ == 1) return;
#ifdef CFF_DISTRIBUTED
  collective(*this, what, [&] {
    std::vector<at::Tensor> tensors{t};
    group_->pg->broadcast(tensors)->wait();
  });
#endif
}

std::string World::broadcast_bytes(const std::string &bytes, const char *what) {
  if (size_ == 1) return bytes;
  auto length = torch::tensor({static_cast<int64_t>(bytes.size())}, torch::kLong);
  broadcast(length, what);
  auto buffer = torch::empty({length.item<int64_t>()}, torch::kUInt8);
  if (leader()) std::memcpy(buffer.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  broadcast(buffer, what);
  return std::string(reinterpret_cast<const char *>(buffer.data_ptr<uint8_t>()), static_cast<size_t>(buffer.numel()));
}

void World::barrier(const char *what) {
  if (size_ == 1) return;
#ifdef CFF_DISTRIBUTED
  collective(*this, what, [&] { group_->pg->barrier()->wait(); });
#endif
}

}  // namespace cff::train
