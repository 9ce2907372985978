"""strata.v1 over a real coordinator + workers: outputs equal the
single-process engine's for the same seed, 32 concurrent clients, tokenizer
calls, model listing, cancellation and deadlines freeing KV blocks, limits."""
import random
import threading
import time

import grpc
import pytest

from conftest import engine_tokens


def generate(pb, channel, timeout=60, **kw):
    strata_pb2, strata_pb2_grpc = pb
    stub = strata_pb2_grpc.StrataStub(channel)
    sampling = kw.pop("sampling", {})
    prompt = kw.pop("prompt_ids", None)
    req = strata_pb2.GenerateRequest(**kw)
    if prompt is not None:
        req.token_ids.ids.extend(prompt)
    for k, v in sampling.items():
        setattr(req.sampling, k, v)
    chunks = list(stub.Generate(req, timeout=timeout))
    ids = [t for c in chunks for t in c.token_ids]
    return ids, "".join(c.text for c in chunks), chunks


def prompt_of(n, salt, vocab=384):
    rng = random.Random(salt)
    return [rng.randrange(3, vocab) for _ in range(n)]


@pytest.mark.time_limit(120)
def test_streamed_tokens_equal_the_single_process_engine(bins, tiny_model, make_cluster, pb):
    c = make_cluster(tiny_model)
    with c.channel() as ch:
        for temperature, seed in ((0.0, 0), (0.9, 7), (1.3, 12345)):
            p = prompt_of(40, seed)
            ids, text, chunks = generate(pb, ch, prompt_ids=p, max_tokens=48, ignore_eos=True,
                                         sampling=dict(temperature=temperature, seed=seed))
            assert ids == engine_tokens(bins, tiny_model, p, 48, temperature=temperature, seed=seed)
            assert chunks[-1].finish_reason == pb[0].FINISH_REASON_LENGTH
            assert chunks[-1].usage.prompt_tokens == 40 and chunks[-1].usage.completion_tokens == 48
            assert len(chunks) >= 2, "tokens must stream in several chunks"


@pytest.mark.time_limit(240)
def test_32_concurrent_clients_all_finish_with_correct_outputs(bins, tiny_model, make_cluster, pb):
    c = make_cluster(tiny_model, replicas=2, coordinator_args=["--max-num-seqs", "8"])
    cases = [(prompt_of(8 + 5 * i, 100 + i), 20 + i % 9, 0.8 if i % 2 else 0.0, 1000 + i) for i in range(32)]
    results = [None] * 32
    errors = []

    def client(i):
        p, n, t, s = cases[i]
        try:
            with c.channel() as ch:
                results[i] = generate(pb, ch, prompt_ids=p, max_tokens=n, ignore_eos=True,
                                      sampling=dict(temperature=t, seed=s), timeout=180)[0]
        except Exception as e:  # reported below
            errors.append((i, e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(200)
    assert not errors, errors[:3]
    for i, (p, n, t, s) in enumerate(cases):
        assert results[i] == engine_tokens(bins, tiny_model, p, n, temperature=t, seed=s), f"client {i}"
    # Both replicas served, and everything was released.
    text = c.metrics()
    assert c.wait_blocks_free(0) and c.wait_blocks_free(1)
    assert 'strata_request_success_total{finish_reason="length"} 32' in text


@pytest.mark.time_limit(60)
def test_tokenize_detokenize_and_list_models(tiny_model, make_cluster, pb):
    strata_pb2, strata_pb2_grpc = pb
    c = make_cluster(tiny_model, name="tiny")
    with c.channel() as ch:
        stub = strata_pb2_grpc.StrataStub(ch)
        text = "the first people walked on the moon"
        ids = stub.Tokenize(strata_pb2.TokenizeRequest(text=text), timeout=10).token_ids
        assert len(ids) > 3
        back = stub.Detokenize(strata_pb2.DetokenizeRequest(token_ids=ids), timeout=10).text
        assert back == text
        models = stub.ListModels(strata_pb2.ListModelsRequest(), timeout=10).models
        assert [(m.name, m.ready_replicas, m.replicas, m.vocab_size) for m in models] == [("tiny", 1, 1, 384)]
        with pytest.raises(grpc.RpcError) as e:
            stub.Detokenize(strata_pb2.DetokenizeRequest(token_ids=[5, 99999]), timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "99999" in e.value.details()


@pytest.mark.time_limit(90)
def test_client_cancel_mid_stream_frees_blocks_at_once(default_model, make_cluster, pb):
    strata_pb2, strata_pb2_grpc = pb
    c = make_cluster(default_model)
    with c.channel() as ch:
        stub = strata_pb2_grpc.StrataStub(ch)
        req = strata_pb2.GenerateRequest(text="Once upon a time", max_tokens=1000, ignore_eos=True)
        req.sampling.temperature = 0
        call = stub.Generate(req, timeout=60)
        got = 0
        for chunk in call:
            got += len(chunk.token_ids)
            if got >= 3:
                break
        assert c.gauge("strata_kv_blocks_free", 0) < c.gauge("strata_kv_blocks_total", 0)
        call.cancel()
        t0 = time.time()
        assert c.wait_blocks_free(0, timeout=5), "cancelled request's blocks were not freed"
        assert time.time() - t0 < 2
        # The replica keeps serving.
        ids, _, _ = generate(pb, ch, text="Hello", max_tokens=4, ignore_eos=True, sampling=dict(temperature=0))
        assert len(ids) == 4


@pytest.mark.time_limit(90)
def test_deadline_is_deadline_exceeded_and_frees_blocks(default_model, make_cluster, pb):
    c = make_cluster(default_model)
    with c.channel() as ch:
        with pytest.raises(grpc.RpcError) as e:
            generate(pb, ch, timeout=0.5, text="Once upon a time", max_tokens=1000, ignore_eos=True,
                     sampling=dict(temperature=0))
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert c.wait_blocks_free(0, timeout=5)


@pytest.mark.time_limit(120)
def test_limits_and_bad_input_name_the_field(tiny_model, make_cluster, pb):
    c = make_cluster(tiny_model, coordinator_args=["--max-prompt-tokens", "32", "--max-tokens", "50"])
    with c.channel() as ch:
        def err(**kw):
            with pytest.raises(grpc.RpcError) as e:
                generate(pb, ch, timeout=10, **kw)
            return e.value.code(), e.value.details()

        code, msg = err(prompt_ids=prompt_of(40, 1), max_tokens=4)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "max_prompt_tokens = 32" in msg
        code, msg = err(prompt_ids=prompt_of(10, 1), max_tokens=51)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "max_tokens" in msg and "50" in msg
        code, msg = err(prompt_ids=[1, 2, 100000], max_tokens=4)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "100000" in msg
        code, msg = err(prompt_ids=prompt_of(10, 1), max_tokens=4, sampling=dict(temperature=-1.0))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "temperature" in msg
        code, msg = err(model="nope", prompt_ids=prompt_of(10, 1), max_tokens=4)
        assert code == grpc.StatusCode.NOT_FOUND and "nope" in msg
        code, msg = err(max_tokens=4)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "prompt" in msg


@pytest.mark.time_limit(120)
def test_full_queue_is_resource_exhausted(default_model, make_cluster, pb):
    c = make_cluster(default_model, coordinator_args=["--max-num-seqs", "1", "--max-queue", "1"])
    strata_pb2, strata_pb2_grpc = pb
    with c.channel() as ch:
        stub = strata_pb2_grpc.StrataStub(ch)
        req = strata_pb2.GenerateRequest(text="Once upon a time", max_tokens=500, ignore_eos=True)
        calls = [stub.Generate(req, timeout=60)]
        assert next(calls[0]).token_ids  # the first is running
        calls.append(stub.Generate(req, timeout=60))  # the second waits
        deadline = time.time() + 10
        while c.gauge("strata_num_requests_waiting", 0) != 1.0 and time.time() < deadline:
            time.sleep(0.02)
        assert c.gauge("strata_num_requests_running", 0) == 1.0  # --max-num-seqs 1
        with pytest.raises(grpc.RpcError) as e:
            generate(pb, ch, timeout=10, text="x", max_tokens=4)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_queue = 1" in e.value.details()
        for call in calls:
            call.cancel()
    assert c.wait_blocks_free(0)


def counter(c, name):
    for line in c.metrics().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


@pytest.mark.time_limit(120)
def test_shared_prefix_hits_the_prefix_cache_and_outputs_stay_exact(bins, tiny_model, make_cluster, pb):
    c = make_cluster(tiny_model)
    system = prompt_of(48, 999)  # 3 full KV blocks of 16 tokens, shared by every request
    with c.channel() as ch:
        for i in range(4):
            p = system + prompt_of(10, i)
            ids, _, _ = generate(pb, ch, prompt_ids=p, max_tokens=8, ignore_eos=True,
                                 sampling=dict(temperature=0.7, seed=i))
            # KV reused from another request's blocks gives exactly the tokens of a cold run.
            assert ids == engine_tokens(bins, tiny_model, p, 8, temperature=0.7, seed=i), i
    assert counter(c, "strata_prefix_cache_queries_total") == 4 * 58
    assert counter(c, "strata_prefix_cache_hits_total") == 3 * 48  # all but the first request
    assert c.gauge("strata_prefix_cache_blocks", 0) >= 3


@pytest.mark.time_limit(60)
def test_min_tokens_keeps_stop_tokens_and_strings_away_until_reached(tiny_model, make_cluster, pb):
    c = make_cluster(tiny_model)
    p = prompt_of(20, 31)
    with c.channel() as ch:
        free, _, _ = generate(pb, ch, prompt_ids=p, max_tokens=12, ignore_eos=True, sampling=dict(temperature=0))
        t0 = free[0]
        # Without min_tokens, making the first greedy token a stop token ends at once.
        ids, _, chunks = generate(pb, ch, prompt_ids=p, max_tokens=12, stop_token_ids=[t0],
                                  ignore_eos=True, sampling=dict(temperature=0))
        assert ids == [t0] and chunks[-1].finish_reason == pb[0].FINISH_REASON_STOP
        # With min_tokens 5 the sampler may not pick it for the first 5 tokens.
        ids, _, chunks = generate(pb, ch, prompt_ids=p, max_tokens=12, stop_token_ids=[t0], min_tokens=5,
                                  ignore_eos=True, sampling=dict(temperature=0))
        assert len(ids) >= 5 and t0 not in ids[:5]
        assert t0 not in ids[:-1]
        if len(ids) < 12:
            assert ids[-1] == t0 and chunks[-1].finish_reason == pb[0].FINISH_REASON_STOP
        with pytest.raises(grpc.RpcError) as e:
            generate(pb, ch, timeout=10, prompt_ids=p, max_tokens=4, min_tokens=5)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "min_tokens" in e.value.details()
