"""Extract the OpenAPI v3 schema of one served version of a CustomResourceDefinition.

usage: extract_crd_schema.py CRD.yaml VERSION OUT.json

Writes {"group", "kind", "version", "schema"} with every "description" removed
(they are most of the bytes and carry no validation), keys sorted. The schemas in
this directory were made with it from the files named in README.md.
"""
import json
import sys

import yaml


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k != "description" or not isinstance(v, str)}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def main():
    src, version, out = sys.argv[1:4]
    crd = yaml.safe_load(open(src))
    (v,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    doc = {"group": crd["spec"]["group"], "kind": crd["spec"]["names"]["kind"], "version": version,
           "schema": strip(v["schema"]["openAPIV3Schema"])}
    with open(out, "w") as f:
        json.dump(doc, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
