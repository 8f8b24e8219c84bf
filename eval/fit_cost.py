#!/usr/bin/env python3
"""What fitting `auto` preconditioners costs next to the prompt's own prefill.

    python eval/fit_cost.py --model smollm2 --codec octopus --bits 3

For each of --windows windows of the default text: the prefill of the prompt's --fit-tokens tokens (the model run
with an exact cache, capturing every layer's queries, keys and values), then the `auto` fit of every KV head's
preconditioner on them (the paper setup: window 32, first and last layers' keys exact). Prints the medians.
"""

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perplexity  # noqa: E402
from octopus_kv import CacheSetup, CodecSpec, capture_prompt, fit_preconditioners  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--model-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "models"))
    parser.add_argument("--codec", default="octopus")
    parser.add_argument("--bits", type=float, default=3)
    parser.add_argument("--fit-tokens", type=int, default=512)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer = perplexity.load_model(args.model, args.model_dir)
    text, _ = perplexity.read_text(None)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    prefill, fit, heads = [], [], 0
    for w in range(args.windows):
        prompt = ids[:, w * 2048: w * 2048 + args.fit_tokens]
        start = time.time()
        captured = capture_prompt(model, prompt)
        prefill.append(time.time() - start)
        setup = CacheSetup(keys=CodecSpec(args.codec, args.bits, 1), values=CodecSpec(args.codec, args.bits, 2), window=32,
                           exact_key_layers=(0, -1), fit_tokens=args.fit_tokens)
        start = time.time()
        fit_preconditioners(captured, setup, "auto")
        fit.append(time.time() - start)
        heads = len(setup.preconditioners)
    p, f = statistics.median(prefill), statistics.median(fit)
    print(f"{args.model}: prefill of {args.fit_tokens} tokens {p:.3f} s; auto fit of {heads} KV heads {f:.3f} s "
          f"({1000 * f / heads:.1f} ms a head, {torch.get_num_threads()} threads); fit / prefill {f / p:.2f}")


if __name__ == "__main__":
    main()
