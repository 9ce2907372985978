"""strata_request_failure_total counts every refused or failed request once,
under the code the client saw: requests the frontends refuse before they reach
the core (a size limit, bad JSON, an out-of-range sampling value, a missing
prompt) and deadlines that pass while generating (DEADLINE_EXCEEDED, not
CANCELLED)."""
import json
import re
import time

import grpc
import numpy as np
import pytest
import tritonclient.grpc as tg
from tritonclient.utils import InferenceServerException


def failures(c):
    out = {}
    for line in c.metrics().splitlines():
        m = re.match(r'strata_request_failure_total\{code="([A-Z_]+)"\} ([0-9.e+]+)', line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def delta(before, after, code):
    return after.get(code, 0.0) - before.get(code, 0.0)


def kserve_inputs(text, params):
    t = tg.InferInput("text_input", [1], "BYTES")
    t.set_data_from_numpy(np.array([text.encode()], dtype=object))
    p = tg.InferInput("sampling_parameters", [1], "BYTES")
    p.set_data_from_numpy(np.array([params.encode()], dtype=object))
    return [t, p]


@pytest.mark.time_limit(120)
def test_frontend_refusals_are_counted_once(tiny_model, make_cluster, pb):
    strata_pb2, strata_pb2_grpc = pb
    c = make_cluster(tiny_model)
    before = failures(c)
    with c.channel() as ch:
        stub = strata_pb2_grpc.StrataStub(ch)
        bad = [
            strata_pb2.GenerateRequest(text="hello", max_tokens=4, sampling=strata_pb2.SamplingParams(top_p=1.5)),
            strata_pb2.GenerateRequest(max_tokens=4),  # no prompt
            strata_pb2.GenerateRequest(text="x" * (1 << 20), max_tokens=4),  # over the prompt's byte limit
            strata_pb2.GenerateRequest(text="hello", max_tokens=5000),  # refused by the core (Submit)
        ]
        for req in bad:
            with pytest.raises(grpc.RpcError) as e:
                list(stub.Generate(req, timeout=30))
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value
    client = tg.InferenceServerClient(c.address)
    for params in ("{not json", '{"temprature": 1}'):
        with pytest.raises(InferenceServerException):
            client.infer("m", kserve_inputs("hello", params), client_timeout=30)
    after = failures(c)
    assert delta(before, after, "INVALID_ARGUMENT") == 6, (before, after)


@pytest.mark.time_limit(120)
def test_a_deadline_passing_mid_generation_counts_as_deadline_exceeded(default_model, make_cluster):
    c = make_cluster(default_model, name="m")
    before = failures(c)
    client = tg.InferenceServerClient(c.address)
    params = json.dumps({"max_tokens": 200, "ignore_eos": True, "temperature": 0})
    # Triton's server-side `timeout` parameter (microseconds).
    with pytest.raises(InferenceServerException) as e:
        client.infer("m", kserve_inputs("Once upon a time " * 20, params), timeout=300000, client_timeout=60)
    assert "deadline" in str(e.value).lower(), e.value
    # The client's own gRPC deadline.
    with pytest.raises(InferenceServerException):
        client.infer("m", kserve_inputs("Once upon a time " * 20, params), client_timeout=0.3)
    # The replica's loop ends each request at its next iteration (after the
    # step in flight), then counts it.
    deadline = time.time() + 20
    after = failures(c)
    while delta(before, after, "DEADLINE_EXCEEDED") < 2 and time.time() < deadline:
        time.sleep(0.1)
        after = failures(c)
    assert delta(before, after, "DEADLINE_EXCEEDED") == 2, (before, after)
    assert delta(before, after, "CANCELLED") == 0, (before, after)
    assert c.wait_blocks_free(0)
