// The processes that train one model together (data parallel, issue 18). cff-train started by torchrun,
// or by any launcher that sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT, joins the others over c10d's
// Gloo process group; without those variables it is a lone process and every call here is a no-op.
//
// A failed collective (a peer that died, stalled past the timeout or never started) cannot be recovered
// from inside a training step: the process prints one line naming its rank, the operation and the reason,
// and exits with status 1 at once (destructors could wait on the dead peer). The last checkpoint stays valid.
#pragma once

#include <memory>
#include <string>

#include <torch/types.h>

namespace cff::train {

class World {
 public:
  // From the launcher's variables. Throws std::runtime_error with a one-line reason when they are
  // inconsistent, or when WORLD_SIZE > 1 and this build has no distributed support (meson feature
  // `distributed`). `timeout_seconds` bounds the rendezvous and every collective.
  static std::shared_ptr<World> from_environment(double timeout_seconds);
  // A lone process (rank 0 of 1).
  World();
  ~World();
  World(const World &) = delete;
  World &operator=(const World &) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  bool leader() const { return rank_ == 0; }
  // "rank 1 of 2" (or "one process").
  std::string describe() const;

  // In place: the element-wise sum over all processes of a contiguous CPU tensor.
  void sum(torch::Tensor &t, const char *what);
  // In place: rank 0's values (same shape and type on every rank).
  void broadcast(torch::Tensor &t, const char *what);
  // rank 0's bytes on every rank.
  std::string broadcast_bytes(const std::string &bytes, const char *what);
  void barrier(const char *what);

 private:
  struct Group;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  std::unique_ptr<Group> group_;
};

// Whether this build can join other processes (the meson feature `distributed`).
bool distributed_supported();

}  // namespace cff::train
