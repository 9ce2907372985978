// Where one worker process sits in its replica, and the two process groups it
// talks through.
//
//   replica, TP=2 x PP=2          tp group (per stage)     pp group (per lane)
//     stage 0: rank(0,0) rank(0,1)   {(0,0),(0,1)}            {(0,0),(1,0)}
//     stage 1: rank(1,0) rank(1,1)   {(1,0),(1,1)}            {(0,1),(1,1)}
//
// The tp group all-reduces partial sums and all-gathers LM-head slices; the pp
// group carries hidden states from stage s to stage s+1 of the same lane (its
// rank is the stage). The last stage's tp rank 0 samples.
#pragma once

#include <string>

#include "absl/strings/str_cat.h"
#include "parallel/communicator.h"

namespace strata::parallel {

struct ParallelTopology {
  int tp_rank = 0;
  int tp_size = 1;
  int pp_stage = 0;
  int pp_size = 1;

  bool first_stage() const { return pp_stage == 0; }
  bool last_stage() const { return pp_stage == pp_size - 1; }
  bool samples() const { return last_stage() && tp_rank == 0; }
  int world_size() const { return tp_size * pp_size; }
  // Index of this rank in Registered.peer_addresses.
  int world_rank() const { return pp_stage * tp_size + tp_rank; }
  std::string ToString() const {
    return absl::StrCat("tp ", tp_rank, "/", tp_size, ", pp stage ", pp_stage, "/", pp_size);
  }
};

// Non-owning; a group of size 1 may be null.
struct ParallelGroups {
  Communicator* tp = nullptr;
  Communicator* pp = nullptr;
};

}  // namespace strata::parallel
