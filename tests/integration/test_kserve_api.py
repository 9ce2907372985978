"""KServe v2 / Triton protocol with NVIDIA's own Python client (tritonclient
gRPC), unchanged: readiness and metadata calls, ModelInfer, decoupled
ModelStreamInfer with triton_final_response, both sampling conventions (the
vLLM backend's sampling_parameters JSON and TensorRT-LLM-style tensors), and
malformed requests answered with INVALID_ARGUMENT naming the tensor."""
import json
import queue

import numpy as np
import pytest
import tritonclient.grpc as tc
from tritonclient.utils import InferenceServerException

from test_native_api import generate


def text_inputs(text, stream=None, params=None, **tensors):
    ins = []
    t = tc.InferInput("text_input", [1], "BYTES")
    t.set_data_from_numpy(np.array([text.encode()], dtype=object))
    ins.append(t)
    if stream is not None:
        s = tc.InferInput("stream", [1], "BOOL")
        s.set_data_from_numpy(np.array([stream], dtype=bool))
        ins.append(s)
    if params is not None:
        p = tc.InferInput("sampling_parameters", [1], "BYTES")
        p.set_data_from_numpy(np.array([json.dumps(params).encode()], dtype=object))
        ins.append(p)
    for name, (dtype, value) in tensors.items():
        x = tc.InferInput(name, [1], dtype)
        x.set_data_from_numpy(np.array([value], dtype={"INT32": np.int32, "FP32": np.float32,
                                                       "UINT64": np.uint64, "BOOL": bool}[dtype]))
        ins.append(x)
    return ins


def stream_text(client, model, inputs, timeout=60):
    q = queue.Queue()
    client.start_stream(callback=lambda result, error: q.put((result, error)))
    try:
        client.async_stream_infer(model, inputs, request_id="r1")
        pieces, finals = [], []
        while True:
            result, error = q.get(timeout=timeout)
            assert error is None, error
            resp = result.get_response()
            final = resp.parameters["triton_final_response"].bool_param
            finals.append(final)
            out = result.as_numpy("text_output")
            if out is not None:
                pieces.append(out[0].decode())
            if final:
                return pieces, finals, resp
    finally:
        client.stop_stream()


@pytest.mark.time_limit(120)
def test_triton_client_non_streaming_and_streaming_match_the_native_api(tiny_model, make_cluster, pb):
    c = make_cluster(tiny_model, name="tiny")
    client = tc.InferenceServerClient(c.address)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("tiny")
    meta = client.get_model_metadata("tiny")
    assert meta.name == "tiny" and "text_input" in [i.name for i in meta.inputs]
    cfg = client.get_model_config("tiny").config
    assert cfg.model_transaction_policy.decoupled
    prompt = "the first people walked on the moon"
    with c.channel() as ch:
        ids, native_text, _ = generate(pb, ch, model="tiny", text=prompt, max_tokens=24, ignore_eos=True,
                                       sampling=dict(temperature=0))
    assert len(ids) == 24
    # Non-streaming: the vLLM backend's default includes the prompt.
    r = client.infer("tiny", text_inputs(prompt, False, {"max_tokens": 24, "temperature": 0, "ignore_eos": True}))
    assert r.as_numpy("text_output")[0].decode() == prompt + native_text
    r = client.infer("tiny", text_inputs(prompt, False, {"max_tokens": 24, "temperature": 0, "ignore_eos": True},
                                         exclude_input_in_output=("BOOL", True)))
    assert r.as_numpy("text_output")[0].decode() == native_text
    # Streaming: deltas that concatenate to the same text; only the last is final.
    pieces, finals, _ = stream_text(client, "tiny",
                                    text_inputs(prompt, True, {"max_tokens": 24, "temperature": 0,
                                                               "ignore_eos": True}))
    assert "".join(pieces) == native_text
    assert len(pieces) > 1 and finals[-1] and not any(finals[:-1])


@pytest.mark.time_limit(120)
def test_trtllm_style_tensors_and_seeded_sampling(tiny_model, make_cluster, pb):
    c = make_cluster(tiny_model, name="tiny")
    client = tc.InferenceServerClient(c.address)
    prompt = "in 2024 there were 8 billion of us"
    with c.channel() as ch:
        _, native_text, _ = generate(pb, ch, model="tiny", text=prompt, max_tokens=16,
                                     sampling=dict(temperature=0.9, seed=42, top_k=20))
    pieces, _, _ = stream_text(client, "tiny", text_inputs(
        prompt, True, None, max_tokens=("INT32", 16), temperature=("FP32", 0.9), random_seed=("UINT64", 42),
        top_k=("INT32", 20), exclude_input_in_output=("BOOL", True)))
    assert "".join(pieces) == native_text
    # min_tokens (vLLM key, as genai-perf's deterministic output lengths send it) and
    # TRT-LLM's min_length: end-of-generation cannot stop the request early.
    for extra in ({"params": {"max_tokens": 8, "min_tokens": 8, "temperature": 0}, "tensors": {}},
                  {"params": None, "tensors": {"max_tokens": ("INT32", 8), "min_length": ("INT32", 8)}}):
        r = client.infer("tiny", text_inputs("hello", False, extra["params"], return_num_output_tokens=("BOOL", True),
                                             **extra["tensors"]))
        assert r.as_numpy("num_output_tokens")[0] == 8
    same = client.infer("tiny", text_inputs(prompt, False, {"max_tokens": 16, "temperature": 0.9, "seed": 42,
                                                            "top_k": 20}, exclude_input_in_output=("BOOL", True)))
    assert same.as_numpy("text_output")[0].decode() == "".join(pieces)


@pytest.mark.time_limit(60)
def test_malformed_requests_are_invalid_argument_naming_the_tensor(tiny_model, make_cluster):
    c = make_cluster(tiny_model, name="tiny")
    client = tc.InferenceServerClient(c.address)

    def fails(inputs, model="tiny"):
        with pytest.raises(InferenceServerException) as e:
            client.infer(model, inputs)
        return e.value.status(), e.value.message()

    status, msg = fails(text_inputs("hi", False, {"max_tokens": 4})[1:])  # no text_input
    assert status == "StatusCode.INVALID_ARGUMENT" and "text_input" in msg
    bad = text_inputs("hi", False, None)
    x = tc.InferInput("max_tokens", [1], "FP32")
    x.set_data_from_numpy(np.array([4.0], dtype=np.float32))
    status, msg = fails(bad + [x])
    assert status == "StatusCode.INVALID_ARGUMENT" and "max_tokens" in msg
    status, msg = fails(text_inputs("hi", False, {"max_tokens": 4, "temprature": 1}))
    assert status == "StatusCode.INVALID_ARGUMENT" and "temprature" in msg
    p = tc.InferInput("sampling_parameters", [1], "BYTES")
    p.set_data_from_numpy(np.array([b"{not json"], dtype=object))
    status, msg = fails(text_inputs("hi", False) + [p])
    assert status == "StatusCode.INVALID_ARGUMENT" and "sampling_parameters" in msg
    two = tc.InferInput("text_input", [2], "BYTES")
    two.set_data_from_numpy(np.array([b"a", b"b"], dtype=object))
    status, msg = fails([two])
    assert status == "StatusCode.INVALID_ARGUMENT" and "text_input" in msg
    status, msg = fails(text_inputs("hi", False, {"max_tokens": 4}), model="nope")
    assert status == "StatusCode.NOT_FOUND" and "nope" in msg
    # A bad request on a stream comes back as that request's error; the stream stays usable.
    q = queue.Queue()
    client.start_stream(callback=lambda result, error: q.put((result, error)))
    try:
        client.async_stream_infer("tiny", text_inputs("hi", True, {"max_tokens": "four"}))
        result, error = q.get(timeout=30)
        assert error is not None and "max_tokens" in str(error)
        client.async_stream_infer("tiny", text_inputs("hi", True, {"max_tokens": 3, "ignore_eos": True}))
        while True:
            result, error = q.get(timeout=30)
            assert error is None, error
            if result.get_response().parameters["triton_final_response"].bool_param:
                break
    finally:
        client.stop_stream()
