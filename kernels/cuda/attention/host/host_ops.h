// The attention kernels on the host harness (kernels/cuda/harness/host_launch.h):
// same Params, launch shapes and kernel source as kernels/cuda/attention/launchers.h,
// with host pointers. For parity tests, not for speed.
#pragma once

#include "absl/status/status.h"
#include "kernels/cuda/attention/decode_attention_params.h"
#include "kernels/cuda/attention/kv_write_params.h"

namespace strata::cuda {

absl::Status HostRunKvWrite(const KvWriteParams& p);
absl::Status HostRunDecodeAttention(const DecodeAttentionParams& p);

}  // namespace strata::cuda
