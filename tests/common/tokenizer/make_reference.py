"""Independent reference for the tokenizer tests (Hugging Face `tokenizers`,
`gguf`, `jinja2`).

Usage: make_reference.py OUT_DIR [DEFAULT_MODEL_GGUF]

Writes, under OUT_DIR:
  smollm/tokenizer.json      SmolLM2's tokenizer rebuilt from the default
                             model's GGUF vocab + merges, with the
                             pre-tokenizer SmolLM2's real tokenizer.json has
                             (Digits(individual) then GPT-2 ByteLevel;
                             llama.cpp calls it "smollm")
  llama3/tokenizer.json      a small byte-level BPE trained here with
  llama3/tokenizer_config.json  Llama-3's Split regex, ignore_merges, BOS
  llama3/vocab.gguf          the same vocab as llama.cpp's converter writes it
  spm/tokenizer.json         a small SentencePiece-style BPE (U+2581,
  spm/vocab.gguf             byte_fallback, <s>/</s>/<unk>) as Llama 2 has it
  expected.json              {"texts": [...], "tokenizers": {name: {...,
                             "ids": [[...] per text]}}, "chat": [...]}
"""
import json
import os
import sys

import gguf
import jinja2
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

TEXTS = [
    "",
    "Hello world",
    "Hello, world! How are you doing today?",
    " leading space and trailing space ",
    "don't you'll we've they're I'm he'd it's DON'T YOU'LL",
    "Numbers: 7 42 123 1234 12345678901234567890 3.14159 -0.5 1,000,000 2024-06-01",
    "    indented code\n\tif (x == 1) {\n\t\treturn y;\n\t}\n",
    "def f(a, b):\n    return a**2 + b  # comment\n\n\nprint(f(1, 2))\n",
    "whitespace   runs\t\t\tand\n\n\nnewlines \n \n  \r\n end",
    "Café naïve résumé façade Ångström Straße",
    "日本語のテキストと中文文本，还有한국어 텍스트。",
    "Русский текст и ελληνικά γράμματα",
    "مرحبا بالعالم — שלום עולם",
    "Emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🇫🇷",
    "Math ∑∫√∞ ≠ ≤ ≥ and symbols ©®™ §¶ •…",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more text <|im_end|>tail",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>",
    "<s>[INST] Hello [/INST] Hi </s>",
    "Mixed: abc123def 456ghi  x1y2z3 0x1F 1e10",
    "URLs https://example.com/path?q=1&r=2#frag and emails a.b@c.de",
    "Punctuation!!! ??? ... --- ''' \"\"\" ((())) [[[]]] {{{}}}",
    "A" * 300,
    "the quick brown fox jumps over the lazy dog " * 20,
    " ",
    "\n",
    "   ",
    "a\u00a0b\u2009c\u3000d",
    "Zalgo: Z\u0351\u036b\u0343a\u0352\u036bl\u0351g\u0354o",
]

LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
    r"\s*[\r\n]+|\s+(?!\S)|\s+"
)

LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)

MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)

CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}],
    [
        {"role": "user", "content": "  Tell me a joke. \n"},
        {"role": "assistant", "content": "Why did the chicken cross the road?"},
        {"role": "user", "content": "Why?"},
    ],
    [
        {"role": "system", "content": "Be nice."},
        {"role": "user", "content": "Héllo 😀"},
        {"role": "assistant", "content": " Hi!\n"},
        {"role": "user", "content": "Bye"},
    ],
]


def corpus():
    """Deterministic training text: this file's texts, the Zen of Python and
    some standard-library source."""
    import codecs
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        import this  # prints the Zen on import

    lines = list(TEXTS)
    lines += codecs.decode(this.s, "rot13").splitlines()
    import json as json_module

    for mod in (json_module.decoder, json_module.encoder, os):
        with open(mod.__file__, encoding="utf-8") as f:
            lines += f.read().splitlines()
    return lines


def gguf_reader_strings(reader, key):
    field = reader.fields[key]
    return [bytes(field.parts[i]).decode("utf-8") for i in field.data]


def gguf_reader_ints(reader, key):
    field = reader.fields[key]
    return [int(field.parts[i][0]) for i in field.data]


def encode_all(tk):
    return [tk.encode(t, add_special_tokens=False).ids for t in TEXTS]


def write_gguf(path, model, pre, tokens, types, merges=None, scores=None, bos=None, eos=None, unk=None,
               add_bos=False, add_space_prefix=None, chat_template=None):
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model(model)
    if pre:
        w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    if merges is not None:
        w.add_token_merges(merges)
    if scores is not None:
        w.add_token_scores(scores)
    if bos is not None:
        w.add_bos_token_id(bos)
    if eos is not None:
        w.add_eos_token_id(eos)
    if unk is not None:
        w.add_unk_token_id(unk)
    w.add_add_bos_token(add_bos)
    if add_space_prefix is not None:
        w.add_add_space_prefix(add_space_prefix)
    if chat_template:
        w.add_chat_template(chat_template)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def smollm(out, model_path):
    reader = gguf.GGUFReader(model_path)
    tokens = gguf_reader_strings(reader, "tokenizer.ggml.tokens")
    merges = gguf_reader_strings(reader, "tokenizer.ggml.merges")
    types = gguf_reader_ints(reader, "tokenizer.ggml.token_type")
    vocab = {t: i for i, t in enumerate(tokens)}
    pairs = [tuple(m.split(" ", 1)) for m in merges]
    tk = Tokenizer(models.BPE(vocab=vocab, merges=pairs))
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3])
    os.makedirs(f"{out}/smollm", exist_ok=True)
    tk.save(f"{out}/smollm/tokenizer.json")
    # As SmolLM2-135M-Instruct's tokenizer_config.json has it.
    template = gguf_reader_strings(reader, "tokenizer.chat_template")[0]
    with open(f"{out}/smollm/tokenizer_config.json", "w") as f:
        json.dump({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>",
                   "chat_template": template}, f)
    return {"tokenizer_json": f"{out}/smollm/tokenizer.json", "gguf": model_path, "ids": encode_all(tk),
            "decoded": [tk.decode(ids, skip_special_tokens=False) for ids in encode_all(tk)]}


def llama3(out):
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    tk = Tokenizer(models.BPE(ignore_merges=True))
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train_from_iterator(corpus(), trainer)
    bos = tk.token_to_id("<|begin_of_text|>")
    tk.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    d = f"{out}/llama3"
    os.makedirs(d, exist_ok=True)
    tk.save(f"{d}/tokenizer.json")
    with open(f"{d}/tokenizer_config.json", "w") as f:
        json.dump({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "add_bos_token": True,
                   "chat_template": LLAMA3_TEMPLATE}, f)
    model = json.loads(tk.to_str())["model"]
    vocab = model["vocab"]
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    merges = [" ".join(m) if isinstance(m, list) else m for m in model["merges"]]
    types = [3 if t in specials else 1 for t in tokens]
    write_gguf(f"{d}/vocab.gguf", "gpt2", "llama-bpe", tokens, types, merges=merges, bos=bos,
               eos=tk.token_to_id("<|eot_id|>"), add_bos=True, chat_template=LLAMA3_TEMPLATE)
    ids = encode_all(tk)
    return {"tokenizer_json": f"{d}/tokenizer.json", "gguf": f"{d}/vocab.gguf", "ids": ids,
            "with_bos": [tk.encode(t).ids for t in TEXTS], "bos": bos,
            "decoded": [tk.decode(x, skip_special_tokens=False) for x in ids]}


def spm(out):
    """A SentencePiece-style BPE as Llama 2's tokenizer.json has it: no
    pre-tokenizer, Prepend + Replace normalizers, byte fallback. The merges
    are regenerated from the vocab the way transformers converts a
    SentencePiece model (every split of a piece into two pieces, ordered by
    the merged piece's score), so rank order agrees with GGUF's scores."""
    trainer = trainers.BpeTrainer(vocab_size=1500, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False,
                                  limit_alphabet=120)
    t0 = Tokenizer(models.BPE(unk_token="<unk>"))
    t0.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    t0.train_from_iterator(corpus(), trainer)
    trained = json.loads(t0.to_str())["model"]["vocab"]
    ordered = sorted(trained.items(), key=lambda kv: kv[1])
    # <unk> <s> </s>, 256 byte tokens, then the trained pieces in merge order.
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [t for t, _ in ordered if t not in ("<unk>", "<s>", "</s>")]
    vocab = {t: i for i, t in enumerate(tokens)}
    scores = [0.0] * len(tokens)
    for i, t in enumerate(tokens):
        if i >= 259:
            scores[i] = -float(i - 259)
    merges = []
    for i, t in enumerate(tokens[259:], start=259):
        for k in range(1, len(t)):
            left, right = t[:k], t[k:]
            if left in vocab and right in vocab:
                merges.append((vocab[t], vocab[left], vocab[right], left, right))
    merges.sort(key=lambda m: (m[0], m[1], m[2]))
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[(m[3], m[4]) for m in merges], unk_token="<unk>",
                              byte_fallback=True, fuse_unk=True))
    tk.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tk.pre_tokenizer = None
    tk.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                    decoders.Strip(" ", 1, 0)])
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ["<unk>", "<s>", "</s>"]])
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                      special_tokens=[("<s>", 1)])
    d = f"{out}/spm"
    os.makedirs(d, exist_ok=True)
    tk.save(f"{d}/tokenizer.json")
    types = [2, 3, 3] + [6] * 256 + [1] * (len(tokens) - 259)
    write_gguf(f"{d}/vocab.gguf", "llama", None, tokens, types, scores=scores, bos=1, eos=2, unk=0,
               add_bos=True, add_space_prefix=True, chat_template=LLAMA2_TEMPLATE)
    ids = encode_all(tk)
    return {"tokenizer_json": f"{d}/tokenizer.json", "gguf": f"{d}/vocab.gguf", "ids": ids,
            "with_bos": [tk.encode(t).ids for t in TEXTS], "bos": 1,
            "decoded": [tk.decode(x, skip_special_tokens=True) for x in ids]}


def chat(model_path):
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)  # as transformers renders

    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)

    env.globals["raise_exception"] = raise_exception
    smol = None
    if model_path:
        smol = gguf_reader_strings(gguf.GGUFReader(model_path), "tokenizer.chat_template")[0]
    templates = {"smollm2": (smol, "", ""), "llama3": (LLAMA3_TEMPLATE, "<|begin_of_text|>", "<|end_of_text|>"),
                 "llama2": (LLAMA2_TEMPLATE, "<s>", "</s>"), "mistral": (MISTRAL_TEMPLATE, "<s>", "</s>")}
    cases = []
    for name, (src, bos, eos) in templates.items():
        if src is None:
            continue
        for conv in CONVERSATIONS:
            if name == "mistral" and conv[0]["role"] == "system":
                continue  # the Mistral template rejects a system role
            for gen in (False, True):
                text = env.from_string(src).render(messages=conv, add_generation_prompt=gen, bos_token=bos,
                                                   eos_token=eos)
                if bos and text.startswith(bos):
                    text = text[len(bos):]
                cases.append({"template_name": name, "template": src, "messages": conv,
                              "add_generation_prompt": gen, "expected": text})
    return cases


def main():
    out = sys.argv[1]
    model_path = sys.argv[2] if len(sys.argv) > 2 and os.path.exists(sys.argv[2]) else None
    os.makedirs(out, exist_ok=True)
    result = {"texts": TEXTS, "tokenizers": {}}
    if model_path:
        result["tokenizers"]["smollm"] = smollm(out, model_path)
    result["tokenizers"]["llama3"] = llama3(out)
    result["tokenizers"]["spm"] = spm(out)
    result["chat"] = chat(model_path)
    with open(f"{out}/expected.json", "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
