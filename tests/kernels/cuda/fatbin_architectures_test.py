#!/usr/bin/env python3
"""Checks what nvcc actually built: every CUDA object (*.cu.o) in the given static
libraries carries SASS (an ELF cubin) for each required architecture, e.g. sm_80 and
the arch-specific sm_90a. Reads the fatbin in each object's .nv_fatbin section
(extracted with binutils' ar/objcopy) and prints one line per object, so the CI log
shows the architectures every kernel was compiled for.

usage: fatbin_architectures_test.py --require 80,90a LIB.a [LIB.a ...]

Fatbin layout (as the CUDA runtime reads it): a 16-byte header (magic 0xBA55ED50,
u16 version, u16 header size, u64 payload size), then entries, each with a header
(u16 kind: 1 PTX, 2 ELF; u16; u32 header size; u64 payload size; ...; u32 arch at
offset 28; u64 flags at offset 40, bit 0x100000 = arch-specific target such as
sm_90a).
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile

FATBIN_MAGIC = 0xBA55ED50
KIND_PTX, KIND_ELF = 1, 2
ARCH_SPECIFIC = 0x100000


def fatbin_targets(blob):
    """[(kind, 'sm_80' | 'sm_90a')] of every entry in a .nv_fatbin section."""
    out = []
    off = 0
    while off + 16 <= len(blob):
        magic, _version, header_size, payload = struct.unpack_from("<IHHQ", blob, off)
        if magic != FATBIN_MAGIC:
            if blob[off:].strip(b"\0"):
                raise ValueError(f"bad fatbin magic {magic:#x} at offset {off}")
            break  # section padding
        p, end = off + header_size, off + header_size + payload
        while p < end:
            kind, _, entry_header, size = struct.unpack_from("<HHIQ", blob, p)
            arch = struct.unpack_from("<I", blob, p + 28)[0]
            flags = struct.unpack_from("<Q", blob, p + 40)[0]
            suffix = "a" if flags & ARCH_SPECIFIC else ""
            out.append((kind, f"{arch}{suffix}"))
            if entry_header == 0:
                raise ValueError("fatbin entry with a zero header size")
            p += entry_header + size
        off = end
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--require", required=True, help="comma-separated, e.g. 80,90a")
    ap.add_argument("libs", nargs="+")
    args = ap.parse_args()
    required = args.require.split(",")
    failures = []
    objects = 0
    for lib in args.libs:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["ar", "x", os.path.abspath(lib)], cwd=tmp, check=True)
            cu_objects = sorted(f for f in os.listdir(tmp) if f.endswith(".cu.o"))
            if not cu_objects:
                failures.append(f"{lib}: no CUDA objects (*.cu.o)")
            for obj in cu_objects:
                section = os.path.join(tmp, obj + ".fatbin")
                subprocess.run(["objcopy", "-O", "binary", "--only-section=.nv_fatbin",
                                os.path.join(tmp, obj), section], check=True)
                blob = open(section, "rb").read() if os.path.exists(section) else b""
                targets = fatbin_targets(blob)
                sass = sorted({a for k, a in targets if k == KIND_ELF})
                ptx = sorted({a for k, a in targets if k == KIND_PTX})
                objects += 1
                print(f"{os.path.basename(lib)}:{obj}: SASS sm_{', sm_'.join(sass) or '-'}; "
                      f"PTX {', '.join('compute_' + a for a in ptx) or '-'}")
                missing = [a for a in required if a not in sass]
                if missing:
                    failures.append(f"{lib}:{obj}: no SASS for sm_{', sm_'.join(missing)}")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"ok: {objects} CUDA objects in {len(args.libs)} libraries carry SASS for "
          f"sm_{', sm_'.join(required)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
