"""Proves proto/inference/*.proto is wire compatible with PyPI's tritonclient.

Compiles our KServe v2 schema with protoc and compares it with the descriptors
compiled into `tritonclient[grpc]`, message by message and field by field:
names, numbers, types, labels, type names, oneofs, maps, enum values and RPC
signatures. Anything missing or different fails (never skips): a client built
from tritonclient must work against Strata unchanged.

Run by ctest (tests/proto/CMakeLists.txt) with STRATA_PROTOC set to the protoc
the build uses.
"""

import os
import pathlib
import subprocess

import pytest
from google.protobuf import descriptor_pb2
from tritonclient.grpc import model_config_pb2, service_pb2

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "proto"
PROTOC = os.environ.get("STRATA_PROTOC", "protoc")

# tritonclient file name -> ours (relative to proto/).
FILES = {
    "model_config.proto": ("inference/model_config.proto", model_config_pb2),
    "grpc_service.proto": ("inference/grpc_service.proto", service_pb2),
}


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    out = tmp_path_factory.mktemp("desc") / "inference.pb"
    subprocess.run(
        [PROTOC, f"-I{PROTO_DIR}", f"--descriptor_set_out={out}", "--include_imports",
         *(ours_name for ours_name, _ in FILES.values())],
        check=True, cwd=PROTO_DIR)
    fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return {f.name: f for f in fds.file}


def theirs(module):
    fdp = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(fdp)
    return fdp


def field_key(f):
    return {
        "name": f.name, "number": f.number, "label": f.label, "type": f.type,
        "type_name": f.type_name,
        "oneof_index": f.oneof_index if f.HasField("oneof_index") else None,
        "proto3_optional": f.proto3_optional,
        "default_value": f.default_value if f.HasField("default_value") else None,
    }


def compare_enum(path, a, b, errors):
    va = [(v.name, v.number) for v in a.value]
    vb = [(v.name, v.number) for v in b.value]
    if va != vb:
        errors.append(f"enum {path}: values {va} != tritonclient's {vb}")


def compare_message(path, a, b, errors):
    fa = {f.number: f for f in a.field}
    fb = {f.number: f for f in b.field}
    for n in sorted(set(fa) | set(fb)):
        if n not in fa:
            errors.append(f"{path}: field {fb[n].name} = {n} missing in ours")
        elif n not in fb:
            errors.append(f"{path}: field {fa[n].name} = {n} not in tritonclient")
        elif field_key(fa[n]) != field_key(fb[n]):
            errors.append(f"{path}.{fb[n].name}: ours {field_key(fa[n])} != "
                          f"tritonclient {field_key(fb[n])}")
    oa = [o.name for o in a.oneof_decl]
    ob = [o.name for o in b.oneof_decl]
    if oa != ob:
        errors.append(f"{path}: oneofs {oa} != tritonclient's {ob}")
    if a.options.map_entry != b.options.map_entry:
        errors.append(f"{path}: map_entry differs")
    compare_lists(path, a.nested_type, b.nested_type, compare_message, errors)
    compare_lists(path, a.enum_type, b.enum_type, compare_enum, errors)


def compare_lists(scope, ours_list, theirs_list, compare, errors):
    a = {x.name: x for x in ours_list}
    b = {x.name: x for x in theirs_list}
    for name in sorted(set(a) | set(b)):
        path = f"{scope}.{name}"
        if name not in a:
            errors.append(f"{path} missing in ours")
        elif name not in b:
            errors.append(f"{path} not in tritonclient")
        else:
            compare(path, a[name], b[name], errors)


def compare_service(path, a, b, errors):
    def sig(m):
        return (m.input_type, m.output_type, m.client_streaming, m.server_streaming)
    ma = {m.name: sig(m) for m in a.method}
    mb = {m.name: sig(m) for m in b.method}
    if ma != mb:
        errors.append(f"service {path}: ours {ma} != tritonclient {mb}")


@pytest.mark.parametrize("their_name", sorted(FILES))
def test_file_matches_tritonclient(ours, their_name):
    our_name, module = FILES[their_name]
    assert our_name in ours, f"protoc did not emit {our_name}"
    a, b = ours[our_name], theirs(module)
    assert a.package == b.package == "inference"
    assert (a.syntax or "proto2") == (b.syntax or "proto2")
    errors = []
    scope = "." + b.package
    compare_lists(scope, a.message_type, b.message_type, compare_message, errors)
    compare_lists(scope, a.enum_type, b.enum_type, compare_enum, errors)
    compare_lists(scope, a.service, b.service, compare_service, errors)
    assert not errors, "\n".join(errors)
    # Sanity: the comparison really walked the schema.
    assert len(a.message_type) == len(b.message_type) > 10


def test_serialized_request_parses_both_ways(ours):
    """A ModelInferRequest built by tritonclient round-trips through our schema."""
    from google.protobuf import descriptor_pool, message_factory

    pool = descriptor_pool.DescriptorPool()
    for name in ("inference/model_config.proto", "inference/grpc_service.proto"):
        pool.Add(ours[name])
    ours_cls = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("inference.ModelInferRequest"))

    req = service_pb2.ModelInferRequest(model_name="smollm2", id="r1")
    t = req.inputs.add(name="text_input", datatype="BYTES", shape=[1])
    t.contents.bytes_contents.append(b"Hello")
    req.parameters["sampling_parameters"].string_param = '{"max_tokens": 8}'
    req.raw_input_contents.append(b"\x01")

    ours_msg = ours_cls.FromString(req.SerializeToString())
    assert ours_msg.inputs[0].contents.bytes_contents[0] == b"Hello"
    assert ours_msg.parameters["sampling_parameters"].string_param == '{"max_tokens": 8}'
    assert service_pb2.ModelInferRequest.FromString(ours_msg.SerializeToString()) == req
