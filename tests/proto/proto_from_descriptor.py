"""Writes .proto source from a compiled protobuf file descriptor.

Strata's KServe v2 schema (proto/inference/*.proto) must be wire compatible
with the clients people already use, so it was reconstructed from the
descriptors that PyPI's `tritonclient[grpc]` ships rather than copied from
any repository:

    python tests/proto/proto_from_descriptor.py tritonclient.grpc.model_config_pb2 \
        inference/model_config.proto > proto/inference/model_config.proto
    python tests/proto/proto_from_descriptor.py tritonclient.grpc.service_pb2 \
        inference/grpc_service.proto > proto/inference/grpc_service.proto

The second argument is the import path the emitted file has inside proto/;
imports of the source file are rewritten to sit beside it. The output keeps
every message, enum, field (name, number, type, label), oneof, map and RPC of
the descriptor; comments are not in descriptors, so the checked-in files may
carry hand-written ones on top. descriptor_equality_test.py proves the
checked-in files still match.

Supports what proto3 schemas use: nested messages and enums, maps, oneofs,
proto3 `optional`, streaming RPCs. Anything else (extensions, custom options,
proto2 defaults) raises, so a future tritonclient that uses it fails loudly.
"""

import importlib
import os
import sys

from google.protobuf import descriptor_pb2

FDP = descriptor_pb2.FieldDescriptorProto

_SCALAR = {
    FDP.TYPE_DOUBLE: "double", FDP.TYPE_FLOAT: "float", FDP.TYPE_INT64: "int64",
    FDP.TYPE_UINT64: "uint64", FDP.TYPE_INT32: "int32", FDP.TYPE_FIXED64: "fixed64",
    FDP.TYPE_FIXED32: "fixed32", FDP.TYPE_BOOL: "bool", FDP.TYPE_STRING: "string",
    FDP.TYPE_BYTES: "bytes", FDP.TYPE_UINT32: "uint32", FDP.TYPE_SFIXED32: "sfixed32",
    FDP.TYPE_SFIXED64: "sfixed64", FDP.TYPE_SINT32: "sint32", FDP.TYPE_SINT64: "sint64",
}


class _Writer:
    def __init__(self, package):
        self.package = package
        self.lines = []
        self.maps = {}  # full name of a map-entry message -> (key, value)

    def emit(self, depth, text=""):
        self.lines.append(("  " * depth + text) if text else "")

    def type_ref(self, field):
        if field.type in _SCALAR:
            return _SCALAR[field.type]
        # Fully qualified with a leading dot: unambiguous whatever the scope.
        return field.type_name

    def field_type(self, field):
        entry = self.maps.get(field.type_name)
        if entry is not None:
            key, value = entry
            return f"map<{self.type_ref(key)}, {self.type_ref(value)}>", ""
        label = ""
        if field.label == FDP.LABEL_REPEATED:
            label = "repeated "
        elif field.proto3_optional:
            label = "optional "
        return self.type_ref(field), label

    def check_field(self, field, where):
        if field.HasField("default_value") or field.HasField("extendee"):
            raise ValueError(f"{where}.{field.name}: defaults/extensions unsupported")
        if field.HasField("options") and str(field.options).strip():
            raise ValueError(f"{where}.{field.name}: field options unsupported: {field.options}")

    def collect_maps(self, scope, messages):
        for m in messages:
            full = f"{scope}.{m.name}"
            if m.options.map_entry:
                self.maps[full] = (m.field[0], m.field[1])
            self.collect_maps(full, m.nested_type)

    def enum(self, depth, e):
        if e.HasField("options") and str(e.options).strip():
            raise ValueError(f"enum {e.name}: options unsupported")
        self.emit(depth, f"enum {e.name} {{")
        for v in e.value:
            self.emit(depth + 1, f"{v.name} = {v.number};")
        self.emit(depth, "}")

    def message(self, depth, scope, m):
        full = f"{scope}.{m.name}"
        if m.extension or m.extension_range:
            raise ValueError(f"message {full}: extensions unsupported")
        opts = str(m.options).strip()
        if opts and not m.options.map_entry:
            raise ValueError(f"message {full}: options unsupported: {opts}")
        self.emit(depth, f"message {m.name} {{")
        for e in m.enum_type:
            self.enum(depth + 1, e)
        for n in m.nested_type:
            if not n.options.map_entry:
                self.message(depth + 1, full, n)
        for r in m.reserved_range:
            self.emit(depth + 1, f"reserved {r.start} to {r.end - 1};")
        for r in m.reserved_name:
            self.emit(depth + 1, f'reserved "{r}";')
        # Fields in declaration order; a real (non-synthetic) oneof is written
        # as a block where its first member appears.
        real_oneof = {}
        for f in m.field:
            if f.HasField("oneof_index") and not f.proto3_optional:
                real_oneof.setdefault(f.oneof_index, []).append(f)
        done = set()
        for f in m.field:
            self.check_field(f, full)
            if f.HasField("oneof_index") and not f.proto3_optional:
                idx = f.oneof_index
                if idx in done:
                    continue
                done.add(idx)
                self.emit(depth + 1, f"oneof {m.oneof_decl[idx].name} {{")
                for member in real_oneof[idx]:
                    t, _ = self.field_type(member)
                    self.emit(depth + 2, f"{t} {member.name} = {member.number};")
                self.emit(depth + 1, "}")
                continue
            t, label = self.field_type(f)
            self.emit(depth + 1, f"{label}{t} {f.name} = {f.number};")
        self.emit(depth, "}")

    def service(self, s):
        self.emit(0, f"service {s.name} {{")
        for rpc in s.method:
            cs = "stream " if rpc.client_streaming else ""
            ss = "stream " if rpc.server_streaming else ""
            self.emit(1, f"rpc {rpc.name}({cs}{rpc.input_type}) returns ({ss}{rpc.output_type}) {{}}")
        self.emit(0, "}")


def proto_source(file_descriptor, import_path):
    """Returns .proto text for `file_descriptor` (a google.protobuf FileDescriptor)."""
    fdp = descriptor_pb2.FileDescriptorProto()
    file_descriptor.CopyToProto(fdp)
    if fdp.extension:
        raise ValueError("top-level extensions unsupported")
    w = _Writer(fdp.package)
    scope = "." + fdp.package if fdp.package else ""
    w.collect_maps(scope, fdp.message_type)
    w.emit(0, "// Generated by tests/proto/proto_from_descriptor.py from the compiled")
    w.emit(0, f"// descriptor of {fdp.name}; descriptor_equality_test.py checks it.")
    w.emit(0, f'syntax = "{fdp.syntax or "proto2"}";')
    w.emit(0)
    if fdp.package:
        w.emit(0, f"package {fdp.package};")
        w.emit(0)
    here = os.path.dirname(import_path)
    for dep in fdp.dependency:
        w.emit(0, f'import "{os.path.join(here, os.path.basename(dep))}";')
    if fdp.dependency:
        w.emit(0)
    for s in fdp.service:
        w.service(s)
        w.emit(0)
    for e in fdp.enum_type:
        w.enum(0, e)
        w.emit(0)
    for m in fdp.message_type:
        w.message(0, scope, m)
        w.emit(0)
    return "\n".join(w.lines).rstrip() + "\n"


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    module = importlib.import_module(argv[1])
    sys.stdout.write(proto_source(module.DESCRIPTOR, argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
