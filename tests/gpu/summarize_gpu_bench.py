#!/usr/bin/env python3
"""Reads the JSON lines of gemm_bench, decode_attention_bench and
prefill_attention_bench (one run, same device) and prints each kernel's rate
against the device's own reference and issue 6's target. Exit 1 if a target
with data is missed, 2 if a reference is missing."""
import json
import statistics
import sys


def main(path):
    rows = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
    by = lambda name: [r for r in rows if r.get("bench") == name]
    copy = [r["gbps"] for r in by("copy_bandwidth")]
    gemm = by("gemm")
    if not copy or not gemm:
        print("missing copy_bandwidth or gemm lines", file=sys.stderr)
        return 2
    copy_gbps = statistics.median(copy)
    big = lambda r: r["m"] >= 4096
    bf16 = max(r["tflops"] for r in gemm if r["dtype"] == "bf16" and big(r))
    print(f"device copy bandwidth {copy_gbps:.0f} GB/s, BF16 GEMM {bf16:.1f} TFLOP/s (best large shape)")
    failed = False

    def check(label, value, target):
        nonlocal failed
        ok = value >= target
        failed |= not ok
        print(f"  {'PASS' if ok else 'MISS'} {label}: {value:.2f} (target >= {target})")

    fp8 = [r["tflops"] for r in gemm if r["dtype"] == "fp8_tensor" and big(r)]
    if fp8:
        check("FP8 GEMM / BF16 GEMM", max(fp8) / bf16, 1.6)
    long_decode = [r for r in by("decode_attention") if r["context"] >= 16384 and "gbps" in r]
    for r in long_decode:
        check(f"decode attention b{r['batch']} ctx{r['context']} {r['kv_dtype']} / copy BW",
              r["gbps"] / copy_gbps, 0.8)
    for r in by("prefill_attention"):
        label = ", ".join(f"{k}={v}" for k, v in r.items() if k not in ("bench", "tflops", "us"))
        check(f"prefill attention ({label}) / BF16 GEMM", r["tflops"] / bf16, 0.5)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
