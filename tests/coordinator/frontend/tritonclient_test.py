"""tritonclient (PyPI tritonclient[grpc], pinned in tests/requirements.txt)
against Strata's KServe frontend over an echo backend (fake_frontend_server):
the requests Triton's vLLM- and TensorRT-LLM-backend clients send are parsed
as intended, and decoupled streaming ends the way those clients expect.
Fails, never skips, when tritonclient is missing."""

import json
import os
import queue
import subprocess

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

SERVER = os.environ["STRATA_FAKE_FRONTEND_SERVER"]
MODEL = "tiny"


@pytest.fixture(scope="module")
def client():
    proc = subprocess.Popen([SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("PORT "), line
    c = grpcclient.InferenceServerClient(url=f"127.0.0.1:{line.split()[1]}")
    yield c
    c.close()
    proc.stdin.close()
    proc.wait(timeout=10)


def tensor(name, value, datatype, shape=None):
    arr = np.array(value, dtype=object if datatype == "BYTES" else None)
    if datatype != "BYTES":
        arr = arr.astype({"BOOL": np.bool_, "INT32": np.int32, "FP32": np.float32,
                          "UINT64": np.uint64}[datatype])
    if shape is not None:
        arr = arr.reshape(shape)
    t = grpcclient.InferInput(name, list(arr.shape), datatype)
    t.set_data_from_numpy(arr)  # raw_input_contents, tritonclient's default
    return t


def echoed(text):
    return json.loads(text)


def test_health_metadata_config(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    md = client.get_model_metadata(MODEL)
    assert md.name == MODEL and list(md.versions) == ["1"]
    assert [i.name for i in md.inputs][0] == "text_input"
    cfg = client.get_model_config(MODEL).config
    assert cfg.model_transaction_policy.decoupled
    with pytest.raises(InferenceServerException) as e:
        client.is_model_ready("nope")
    assert "nope" in str(e.value)


def test_vllm_style_infer(client):
    params = {"temperature": "0.5", "top_p": "0.9", "max_tokens": "17", "seed": 3,
              "stop": ["\n"], "ignore_eos": True}
    inputs = [tensor("text_input", [b"hello"], "BYTES"),
              tensor("stream", [False], "BOOL"),
              tensor("sampling_parameters", [json.dumps(params).encode()], "BYTES"),
              tensor("exclude_input_in_output", [True], "BOOL")]
    result = client.infer(MODEL, inputs, request_id="v1")
    text = result.as_numpy("text_output")[0].decode()
    e = echoed(text)
    assert e["prompt"] == "<|endoftext|>hello"
    assert e["max_tokens"] == 17
    assert e["temperature"] == pytest.approx(0.5)
    assert e["top_p"] == pytest.approx(0.9)
    assert e["seed"] == 3
    assert e["stop"] == ["\n"]
    assert e["ignore_eos"] is True
    assert e["request_id"] == "v1"
    assert result.get_response().id == "v1"


def test_prompt_is_prepended_unless_excluded(client):
    result = client.infer(MODEL, [tensor("text_input", [b"hello"], "BYTES")])
    text = result.as_numpy("text_output")[0].decode()
    assert text.startswith("hello{")
    echoed(text[len("hello"):])


def test_trtllm_style_infer(client):
    inputs = [tensor("text_input", [[b"hello"]], "BYTES"),
              tensor("max_tokens", [[9]], "INT32"),
              tensor("temperature", [[0.25]], "FP32"),
              tensor("runtime_top_k", [[4]], "INT32"),
              tensor("runtime_top_p", [[0.5]], "FP32"),
              tensor("random_seed", [[2**40]], "UINT64"),
              tensor("repetition_penalty", [[1.5]], "FP32"),
              tensor("stop_words", [[b"END", b"STOP"]], "BYTES"),
              tensor("bad_words", [[b""]], "BYTES"),
              tensor("pad_id", [[2]], "INT32"),
              tensor("beam_width", [[1]], "INT32"),
              tensor("return_log_probs", [[False]], "BOOL"),
              tensor("end_id", [[2]], "INT32"),
              tensor("exclude_input_in_output", [[True]], "BOOL"),
              tensor("return_num_input_tokens", [[True]], "BOOL"),
              tensor("return_num_output_tokens", [[True]], "BOOL")]
    result = client.infer(MODEL, inputs)
    e = echoed(result.as_numpy("text_output")[0].decode())
    assert e["max_tokens"] == 9
    assert e["temperature"] == pytest.approx(0.25)
    assert e["top_k"] == 4
    assert e["top_p"] == pytest.approx(0.5)
    assert e["seed"] == 2**40
    assert e["repetition_penalty"] == pytest.approx(1.5)
    assert e["stop"] == ["END", "STOP"]
    assert e["stop_token_ids"] == [2]
    assert result.as_numpy("num_input_tokens")[0] == e["prompt_tokens"]
    assert result.as_numpy("num_output_tokens")[0] == 3
    assert result.as_numpy("num_output_tokens").dtype == np.uint32


def test_invalid_argument_names_the_tensor(client):
    with pytest.raises(InferenceServerException) as e:
        client.infer(MODEL, [tensor("text_input", [b"hi"], "BYTES"),
                             tensor("max_tokens", [1.0], "FP32")])
    assert e.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "max_tokens" in e.value.message()


def collect(client, inputs, request_id, **kwargs):
    q = queue.Queue()
    client.start_stream(callback=lambda result, error: q.put((result, error)))
    try:
        client.async_stream_infer(MODEL, inputs, request_id=request_id, **kwargs)
        out = []
        while True:
            result, error = q.get(timeout=10)
            out.append((result, error))
            if error is not None:
                return out
            if result.get_response().parameters["triton_final_response"].bool_param:
                return out
    finally:
        client.stop_stream()


@pytest.mark.parametrize("empty_final", [False, True])
def test_streaming_deltas_and_final_flag(client, empty_final):
    inputs = [tensor("text_input", [b"hello"], "BYTES"), tensor("stream", [True], "BOOL")]
    out = collect(client, inputs, "s", enable_empty_final_response=empty_final)
    assert all(err is None for _, err in out)
    responses = [r.get_response() for r, _ in out]
    assert all(r.id == "s" for r in responses)
    with_text = [r for r, _ in out if r.as_numpy("text_output") is not None]
    text = "".join(r.as_numpy("text_output")[0].decode() for r in with_text)
    echoed(text)  # streaming carries deltas only: no prompt in front
    assert len(with_text) == 3
    if empty_final:
        assert len(responses) == 4 and len(responses[-1].outputs) == 0
    else:
        assert len(responses) == 3
    assert [r.parameters["triton_final_response"].bool_param for r in responses][:-1] == \
        [False] * (len(responses) - 1)


def test_stream_error_reaches_the_callback(client):
    out = collect(client, [tensor("stream", [True], "BOOL")], "bad")
    _, error = out[-1]
    assert error is not None
    assert "text_input" in str(error)
