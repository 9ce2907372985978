"""deploy/docker: multi-stage, non-root, no build tools in the runtime stage, and the
CPU runtime stage installs the Debian packages holding every shared library the
binaries load (ldd + dpkg -S on this Debian 12 machine, the image's base)."""
import os
import re
import subprocess

import pytest

import deploy_lib as dl

DOCKER = os.path.join(dl.SOURCE_DIR, "deploy", "docker")
BUILD_TOOLS = re.compile(r"^(build-essential|cmake|ninja-build|gcc|g\+\+|clang|make|pkg-config|git|"
                         r"protobuf-compiler.*|cuda-nvcc.*|.*-dev)$")


def stages(path):
    """[(base, name, [instruction lines])] with continuation lines joined."""
    text = re.sub(r"\\\n", " ", open(path).read())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            out.append((m.group(1), m.group(2), []))
        elif out:
            out[-1][2].append(line)
    return out


def apt_packages(lines):
    pkgs = []
    for line in lines:
        for m in re.finditer(r"apt-get install ((?:\s*(?:-\S+|[a-z0-9][a-z0-9.+\-]*))+)", line):
            pkgs += [p for p in m.group(1).split() if not p.startswith("-")]
    return pkgs


@pytest.mark.parametrize("name", ["Dockerfile.cpu", "Dockerfile.cuda"])
def test_multi_stage_non_root_runtime_without_build_tools(name):
    st = stages(os.path.join(DOCKER, name))
    assert len(st) >= 2, "multi-stage"
    build, runtime = st[0], st[-1]
    assert runtime[1] == "runtime"
    if name == "Dockerfile.cuda":
        assert re.fullmatch(r"nvidia/cuda:\$\{CUDA_VERSION\}-devel-\$\{UBUNTU\}", build[0])
        assert re.fullmatch(r"nvidia/cuda:\$\{CUDA_VERSION\}-runtime-\$\{UBUNTU\}", runtime[0])
        assert any("libnccl" in line for line in runtime[2]), "NCCL in the runtime stage"
        assert any("-DSTRATA_WITH_CUDA=ON" in line for line in build[2])
    else:
        assert build[0] == "debian:12" and runtime[0] == "debian:12-slim"
    users = [line for line in runtime[2] if line.upper().startswith("USER ")]
    assert users and users[-1].split()[1].split(":")[0] not in ("0", "root")
    assert not [p for p in apt_packages(runtime[2]) if BUILD_TOOLS.match(p)], "build tools in the runtime stage"
    copies = " ".join(line for line in runtime[2] if line.upper().startswith("COPY"))
    for f in ("strata-coordinator", "strata-worker", "deploy/bin/strata-worker-group", "deploy/bin/strata-worker-ready"):
        assert f in copies
    assert os.path.exists(os.path.join(DOCKER, name + ".dockerignore"))


def debian_packages_of(binary):
    pkgs = set()
    for line in subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        m = re.match(r"\s*(\S+) => (/\S+)", line)
        if not m:
            continue
        for path in (os.path.realpath(m.group(2)), m.group(2)):
            out = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
            if out.returncode == 0:
                pkgs.add(out.stdout.split(":")[0])
                break
    return pkgs


def test_cpu_runtime_stage_has_every_shared_library(bin_dir):
    runtime = stages(os.path.join(DOCKER, "Dockerfile.cpu"))[-1]
    installed = set(apt_packages(runtime[2]))
    # The CPU image is built with -DSTRATA_WITH_CUDA=OFF; libraries outside Debian
    # packages (a CUDA toolkit on this machine) are not in that build.
    need = set()
    for b in ("strata-coordinator", "strata-worker", "strata"):
        need |= debian_packages_of(os.path.join(bin_dir, b))
    assert need, "dpkg found no packages (not a Debian machine?)"
    assert need <= installed, f"Dockerfile.cpu runtime stage lacks {sorted(need - installed)}"


def test_bundle_libs_keeps_what_the_cuda_runtime_image_lacks(bin_dir, tmp_path):
    out = subprocess.run([os.path.join(DOCKER, "bundle-libs.sh"), str(tmp_path),
                          os.path.join(bin_dir, "strata-worker")], capture_output=True, text=True, check=True)
    libs = set(os.listdir(tmp_path))
    assert any(n.startswith("libgrpc++.so") for n in libs) and any(n.startswith("libabsl_") for n in libs)
    assert not [n for n in libs if re.match(r"lib(c|stdc\+\+|cudart|cublas|cublasLt|nccl)\.so", n)], out.stdout
