#!/usr/bin/env bash
# bundle-libs.sh DEST BINARY...: copies the shared libraries BINARY... load (ldd)
# into DEST, except those the runtime base image provides: the C/C++ runtime
# (glibc, libstdc++, libgcc_s), the CUDA libraries and NCCL (the CUDA runtime
# image), and the driver's libcuda. Used by Dockerfile.cuda, whose runtime stage
# is an Ubuntu image where naming packages would tie the image to one release.
set -euo pipefail
dest="$1"; shift
mkdir -p "$dest"
provided='^(linux-vdso|ld-linux|libc|libm|libdl|librt|libpthread|libresolv|libutil|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcublasLt|libnccl|libnvrtc|libnvJitLink)\.so'
for bin in "$@"; do
  ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  if [[ "$name" =~ $provided ]]; then continue; fi
  cp -L "$path" "$dest/$name"
done
ls "$dest"
