#!/usr/bin/env python3
"""Render every overlay into deploy/k8s/rendered/<overlay>.yaml (documents sorted by
kind, namespace and name, keys sorted), or with --check compare instead. CI runs the
check (tests/deploy/test_manifests.py), so these files always show what
`kubectl apply -k deploy/k8s/overlays/<overlay>` creates.

usage: deploy/k8s/render.py [--check]     (kubectl from $STRATA_KUBECTL or PATH)
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "deploy"))
import deploy_lib  # noqa: E402

HEADER = "# Rendered by deploy/k8s/render.py from deploy/k8s/overlays/{0}; do not edit.\n"


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for overlay in deploy_lib.OVERLAYS:
        text = HEADER.format(overlay) + deploy_lib.dump(deploy_lib.render(overlay))
        path = deploy_lib.golden_path(overlay)
        if check:
            if not os.path.exists(path) or open(path).read() != text:
                stale.append(path)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
    if stale:
        print("stale (run deploy/k8s/render.py): " + " ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
