#!/usr/bin/env bash
# Builds the fuzzers of every parser that takes bytes from outside with clang
# and libFuzzer + ASan + UBSan in their own build dir and runs each for
# SECONDS seconds (default 30), two at a time (one core each):
#   model files        gguf, safetensors
#   client requests    kserve_request (KServe v2 ModelInferRequest decoding:
#                      tensors, raw contents, parameters), sampling_parameters
#                      (the vLLM JSON), strata_request (strata.v1 requests)
#   worker messages    worker_message (what the coordinator decodes from a
#                      worker: Register, StepResult, Leave)
# Exits non-zero when a fuzzer finds a crash, a sanitizer error, a leak, a
# slow input or an oversized allocation; the reproducer is left under
# $BUILD/artifacts/.
#
#   scripts/fuzz.sh [SECONDS]
#
# Environment:
#   STRATA_FUZZ_BUILD_DIR  build dir (default: <repo>/build-fuzz)
#   FUZZ_CXX               clang++ to use (default: clang++)
#   STRATA_PYTHON          optional: Python with gguf/safetensors for extra seeds
# Needs clang and the libFuzzer runtime (Debian: clang, libclang-rt-14-dev)
# plus libabsl-dev, nlohmann-json3-dev, libprotobuf-dev and protobuf-compiler.
# Without clang it exits 77 (skip), or 1 when CI is set.
set -euo pipefail

SECONDS_PER_FUZZER="${1:-30}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${STRATA_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
CXX="${FUZZ_CXX:-clang++}"

unavailable() {
  echo "fuzz.sh: $*" >&2
  if [[ -n "${CI:-}" ]]; then exit 1; fi
  echo "fuzz.sh: skipping (install clang and libclang-rt-14-dev)" >&2
  exit 77
}

command -v "$CXX" >/dev/null || unavailable "$CXX not found"
# Compile a trivial fuzz target to prove the libFuzzer runtime is present.
mkdir -p "$BUILD/obj" "$BUILD/artifacts" "$BUILD/logs"
probe="$BUILD/probe.cc"
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' >"$probe"
"$CXX" -fsanitize=fuzzer "$probe" -o "$BUILD/probe" 2>"$BUILD/logs/probe.log" ||
  unavailable "libFuzzer runtime missing ($(head -1 "$BUILD/logs/probe.log"))"

LAUNCHER=()
command -v ccache >/dev/null && LAUNCHER=(ccache)
SAN=(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
GEN="$BUILD/gen"
CXXFLAGS=(-std=c++20 -O1 -g -fno-omit-frame-pointer -I"$ROOT" -I"$GEN")
# Debian's abseil and protobuf ship pkg-config files, which list the libraries to link.
ABSL_LIBS=$(pkg-config --libs absl_status absl_statusor absl_strings absl_str_format absl_flat_hash_map \
  absl_flat_hash_set absl_hash absl_time absl_synchronization)
PROTOBUF_LIBS=$(pkg-config --libs protobuf)

# The protocol messages' C++ code (messages only: no gRPC stubs needed).
mkdir -p "$GEN"
protoc -I"$ROOT/proto" --cpp_out="$GEN" inference/model_config.proto inference/grpc_service.proto \
  strata/v1/strata.proto strata/v1/worker.proto

# Library code gets fuzzer coverage instrumentation (fuzzer-no-link); the
# generated message code only sanitizers.
FORMAT_SOURCES=(common/tensor_type.cc common/format/mapped_file.cc common/format/gguf_file.cc
                common/format/safetensors_file.cc)
PROTOCOL_SOURCES=(coordinator/frontend/kserve_request_parser.cc coordinator/frontend/kserve_tensor_codec.cc
                  coordinator/frontend/vllm_sampling_parameters.cc coordinator/frontend/request_limits.cc
                  coordinator/frontend/quote.cc common/sampling_params.cc common/tokenizer/unicode_bytes.cc
                  coordinator/worker_message_validator.cc)
GEN_SOURCES=("$GEN/inference/model_config.pb.cc" "$GEN/inference/grpc_service.pb.cc"
             "$GEN/strata/v1/strata.pb.cc" "$GEN/strata/v1/worker.pb.cc")
FUZZERS=(gguf safetensors kserve_request sampling_parameters strata_request worker_message)

obj_of() { echo "$BUILD/obj/$(echo "${1#"$ROOT"/}" | tr / _).o"; }
pids=()
compile() {  # compile SRC EXTRA_FLAGS...
  local src=$1
  shift
  local path=$src
  [[ "$path" = /* ]] || path="$ROOT/$src"
  "${LAUNCHER[@]}" "$CXX" "${CXXFLAGS[@]}" "${SAN[@]}" "$@" -c "$path" -o "$(obj_of "$src")" &
  pids+=($!)
  # Two compilers at a time (2 cores).
  if (( ${#pids[@]} >= 2 )); then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
}
for src in "${FORMAT_SOURCES[@]}" "${PROTOCOL_SOURCES[@]}"; do compile "$src" -fsanitize=fuzzer-no-link; done
for src in "${GEN_SOURCES[@]}"; do compile "$src" -w; done
for name in "${FUZZERS[@]}"; do compile "tests/fuzz/${name}_fuzzer.cc" -fsanitize=fuzzer-no-link; done
for pid in "${pids[@]}"; do wait "$pid"; done

# Archives, so each fuzzer links only the objects it uses.
FORMAT_LIB="$BUILD/libformat_fuzz.a"
PROTOCOL_LIB="$BUILD/libprotocol_fuzz.a"
rm -f "$FORMAT_LIB" "$PROTOCOL_LIB"
ar rcs "$FORMAT_LIB" $(for s in "${FORMAT_SOURCES[@]}"; do obj_of "$s"; done)
ar rcs "$PROTOCOL_LIB" $(for s in "${PROTOCOL_SOURCES[@]}" "${GEN_SOURCES[@]}"; do obj_of "$s"; done)
for name in "${FUZZERS[@]}"; do
  # shellcheck disable=SC2086
  "$CXX" "${SAN[@]}" -fsanitize=fuzzer "$(obj_of "tests/fuzz/${name}_fuzzer.cc")" "$PROTOCOL_LIB" "$FORMAT_LIB" \
    $PROTOBUF_LIBS $ABSL_LIBS -o "$BUILD/${name}_fuzzer"
done

# The seed writers need no sanitizers.
"${LAUNCHER[@]}" "$CXX" "${CXXFLAGS[@]}" "$ROOT/tests/fuzz/make_fuzz_seeds.cc" -o "$BUILD/make_fuzz_seeds" &
p1=$!
# shellcheck disable=SC2086
"${LAUNCHER[@]}" "$CXX" "${CXXFLAGS[@]}" -w "$ROOT/tests/fuzz/make_protocol_seeds.cc" "${GEN_SOURCES[@]}" \
  $PROTOBUF_LIBS -o "$BUILD/make_protocol_seeds" &
p2=$!
wait "$p1"
wait "$p2"

# Seeds: builder-made files, plus files from the reference Python writers
# when that Python is available, and protocol messages as clients send them.
SEEDS="$BUILD/seeds"
rm -rf "$SEEDS"
for name in "${FUZZERS[@]}"; do mkdir -p "$SEEDS/$name" "$BUILD/corpus/$name"; done
"$BUILD/make_fuzz_seeds" "$SEEDS/gguf" "$SEEDS/safetensors"
"$BUILD/make_protocol_seeds" "$SEEDS/kserve_request" "$SEEDS/sampling_parameters" "$SEEDS/strata_request" \
  "$SEEDS/worker_message"
PY="${STRATA_PYTHON:-$HOME/.cache/strata/venv/bin/python}"
if [[ -x "$PY" ]]; then
  ref="$BUILD/reference"
  rm -rf "$ref"
  if timeout 60 "$PY" "$ROOT/tests/common/format/write_reference_files.py" "$ref" >/dev/null 2>&1; then
    cp "$ref"/*.gguf "$SEEDS/gguf/"
    cp "$ref"/*.safetensors "$SEEDS/safetensors/"
    cp "$ref"/hf/*.safetensors "$SEEDS/safetensors/"
  else
    echo "fuzz.sh: reference Python writer failed; using builder seeds only" >&2
  fi
fi

# Two fuzzers at a time (one core each). The corpus dir (first) collects new
# inputs and persists between runs; the seed dir is read only. -timeout flags
# any input that takes over 10 s (a hang), -rss_limit_mb any that balloons
# memory, -malloc_limit_mb any single allocation past it (an unbounded
# allocation driven by a length field).
run_fuzzer() {
  local name=$1
  "$BUILD/${name}_fuzzer" "$BUILD/corpus/$name" "$SEEDS/$name" \
    -max_total_time="$SECONDS_PER_FUZZER" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 -max_len=8192 \
    -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/${name}-" >"$BUILD/logs/$name.log" 2>&1
}
status=0
report() {
  local name=$1 pid=$2
  if wait "$pid"; then
    echo "fuzz.sh: $name: ok ($(grep -E '^stat::number_of_executed_units' "$BUILD/logs/$name.log" | awk '{print $2}') runs in ${SECONDS_PER_FUZZER}s)"
  else
    status=1
    echo "fuzz.sh: $name FAILED; log $BUILD/logs/$name.log, reproducer under $BUILD/artifacts/" >&2
    tail -n 60 "$BUILD/logs/$name.log" >&2
  fi
}
for ((i = 0; i < ${#FUZZERS[@]}; i += 2)); do
  a=${FUZZERS[i]}
  run_fuzzer "$a" &
  pa=$!
  if (( i + 1 < ${#FUZZERS[@]} )); then
    b=${FUZZERS[i + 1]}
    run_fuzzer "$b" &
    pb=$!
  fi
  report "$a" "$pa"
  if (( i + 1 < ${#FUZZERS[@]} )); then report "$b" "$pb"; fi
done
exit "$status"
