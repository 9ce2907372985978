#!/usr/bin/env bash
# Builds the model-file fuzzers (GGUF, safetensors) with clang and libFuzzer
# + ASan + UBSan in their own build dir and runs each for SECONDS seconds
# (default 30), both at once (one core each). Exits non-zero when a fuzzer
# finds a crash, a sanitizer error, a leak or a slow input; the reproducer is
# left under $BUILD/artifacts/.
#
#   scripts/fuzz.sh [SECONDS]
#
# Environment:
#   STRATA_FUZZ_BUILD_DIR  build dir (default: <repo>/build-fuzz)
#   FUZZ_CXX               clang++ to use (default: clang++)
#   STRATA_PYTHON          optional: Python with gguf/safetensors for extra seeds
# Needs clang and the libFuzzer runtime (Debian: clang, libclang-rt-14-dev)
# plus libabsl-dev and nlohmann-json3-dev. Without clang it exits 77 (skip),
# or 1 when CI is set.
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
CXXFLAGS=(-std=c++20 -O1 -g -fno-omit-frame-pointer -I"$ROOT")
# Debian's abseil ships pkg-config files, which list the libraries to link.
ABSL_LIBS=$(pkg-config --libs absl_status absl_statusor absl_strings absl_str_format absl_flat_hash_map)

# Library code gets fuzzer coverage instrumentation (fuzzer-no-link).
LIB_SOURCES=(common/tensor_type.cc common/format/mapped_file.cc common/format/gguf_file.cc
             common/format/safetensors_file.cc)
pids=()
objs=()
for src in "${LIB_SOURCES[@]}" tests/fuzz/gguf_fuzzer.cc tests/fuzz/safetensors_fuzzer.cc; do
  obj="$BUILD/obj/$(echo "$src" | tr / _).o"
  objs+=("$obj")
  "${LAUNCHER[@]}" "$CXX" "${CXXFLAGS[@]}" "${SAN[@]}" -fsanitize=fuzzer-no-link -c "$ROOT/$src" -o "$obj" &
  pids+=($!)
done
# The seed writer needs no sanitizers.
"${LAUNCHER[@]}" "$CXX" "${CXXFLAGS[@]}" "$ROOT/tests/fuzz/make_fuzz_seeds.cc" -o "$BUILD/make_fuzz_seeds" &
pids+=($!)
for pid in "${pids[@]}"; do wait "$pid"; done

LIB_OBJS=("${objs[@]:0:${#LIB_SOURCES[@]}}")
# shellcheck disable=SC2086
"$CXX" "${SAN[@]}" -fsanitize=fuzzer "${LIB_OBJS[@]}" "$BUILD/obj/tests_fuzz_gguf_fuzzer.cc.o" \
  $ABSL_LIBS -o "$BUILD/gguf_fuzzer"
# shellcheck disable=SC2086
"$CXX" "${SAN[@]}" -fsanitize=fuzzer "${LIB_OBJS[@]}" "$BUILD/obj/tests_fuzz_safetensors_fuzzer.cc.o" \
  $ABSL_LIBS -o "$BUILD/safetensors_fuzzer"

# Seeds: builder-made files, plus files from the reference Python writers
# when that Python is available.
SEEDS="$BUILD/seeds"
rm -rf "$SEEDS"
mkdir -p "$SEEDS/gguf" "$SEEDS/safetensors" "$BUILD/corpus/gguf" "$BUILD/corpus/safetensors"
"$BUILD/make_fuzz_seeds" "$SEEDS/gguf" "$SEEDS/safetensors"
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

# Run both fuzzers at once. The corpus dir (first) collects new inputs and
# persists between runs; the seed dir is read only. -timeout flags any input
# that takes over 10 s (a hang), -rss_limit_mb any that balloons memory.
run_fuzzer() {
  local name=$1
  "$BUILD/${name}_fuzzer" "$BUILD/corpus/$name" "$SEEDS/$name" \
    -max_total_time="$SECONDS_PER_FUZZER" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/${name}-" >"$BUILD/logs/$name.log" 2>&1
}
status=0
run_fuzzer gguf &
gguf_pid=$!
run_fuzzer safetensors &
st_pid=$!
for entry in "gguf:$gguf_pid" "safetensors:$st_pid"; do
  name=${entry%%:*}
  if wait "${entry#*:}"; then
    echo "fuzz.sh: $name: ok ($(grep -E '^stat::number_of_executed_units' "$BUILD/logs/$name.log" | awk '{print $2}') runs in ${SECONDS_PER_FUZZER}s)"
  else
    status=1
    echo "fuzz.sh: $name FAILED; log $BUILD/logs/$name.log, reproducer under $BUILD/artifacts/" >&2
    tail -n 60 "$BUILD/logs/$name.log" >&2
  fi
done
exit "$status"
