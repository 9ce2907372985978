"""Rewrites a GGUF model with its quantized matrices dequantized to F16 (other
tensors as F32), metadata unchanged: the same model without the int8
activation quantization of Strata's quantized matmuls, for exactness checks of
sharded forward passes (tests/worker/model/model_shard_test.cc).

usage: gguf_to_f16.py IN.gguf OUT.gguf
"""
import gguf, numpy as np, sys
src = sys.argv[1]; dst = sys.argv[2]
r = gguf.GGUFReader(src)
arch = r.fields['general.architecture'].parts[-1].tobytes().decode()
w = gguf.GGUFWriter(dst, arch)
for name, f in r.fields.items():
    if name.startswith('GGUF.') or name == 'general.architecture' or name == 'general.file_type':
        continue
    vt = f.types[0]
    if vt == gguf.GGUFValueType.ARRAY:
        et = f.types[1]
        if et == gguf.GGUFValueType.STRING:
            vals = [bytes(f.parts[i]).decode('utf-8', errors='surrogateescape') for i in f.data]
        else:
            vals = [f.parts[i].tolist()[0] for i in f.data]
        w.add_array(name, vals)
    elif vt == gguf.GGUFValueType.STRING:
        w.add_string(name, bytes(f.parts[-1]).decode())
    else:
        w.add_key_value(name, f.parts[-1].tolist()[0], vt)
for t in r.tensors:
    data = gguf.quants.dequantize(t.data, t.tensor_type)
    shape = [int(x) for x in reversed(t.shape.tolist())]
    arr = np.asarray(data, dtype=np.float32).reshape(shape)
    if t.tensor_type not in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16) and arr.ndim == 2:
        arr = arr.astype(np.float16)
    w.add_tensor(t.name, arr)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
