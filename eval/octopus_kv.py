"""A transformers KV cache whose keys and values are stored as octopus codes, and the attention that reads it.

`OctopusCache` is a `transformers.Cache` of `OctopusLayer`s. Each layer encodes every token that enters
it through the octopus binding (one `octopus.HeadCodec` per sequence and KV head: a key codec, a value
codec and that head's preconditioner), decodes it once, and hands attention the decoded keys and values,
exactly what an engine that attends from the codes computes. The last `window` tokens stay exact (in
fp16, as an engine's cache holds them) and are encoded when they leave the window; layers can keep their
keys or values exact altogether.

One forward pass over many tokens (a prefill, or a perplexity window) needs, for each query, its own
mix of exact and decoded keys: the `window` keys before it exact, older ones decoded. The attention
function `octopus_attention` (registered with transformers as "octopus") computes that mix exactly, so a
single pass gives the same attention as decoding the tokens one by one; with window 0, or one new token,
it is plain scaled-dot-product attention on the cache's keys and values.

Preconditioners are fitted on the prompt: `capture_prompt` runs the model over the prompt with an exact
cache and keeps each layer's queries, keys and values; `fit_preconditioners` fits one per layer and KV
head from them (octopus.fit_preconditioner). A cache given no fitted preconditioners fits its own from
the first tokens it sees, without queries.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import AttentionInterface
from transformers.cache_utils import Cache, DynamicLayer

import octopus


@dataclass(frozen=True)
class CodecSpec:
    """A codec of the octopus library: name, bits per coordinate (thirds for OCTOPUS), rotation seed, norm format."""

    name: str
    bits: float
    seed: int = 1
    norm: str = "fp32"

    def make(self, dim: int) -> octopus.Codec:
        return octopus.Codec(self.name, dim, self.bits, self.seed, self.norm)

    def __str__(self) -> str:
        return f"{self.name}-{self.bits:g}"


@dataclass
class CacheSetup:
    """How a model's cache is stored.

    keys, values: codecs (None keeps them exact, in fp16); window: the most recent tokens kept exact;
    exact_key_layers / exact_value_layers: layer indices (negative from the end) whose keys / values stay
    exact; precondition: the mode a layer fits itself with when it is given no preconditioners (none, center,
    auto; scale needs queries, see fit_preconditioners); fit_tokens: how many of its first tokens it fits on.
    """

    keys: CodecSpec | None
    values: CodecSpec | None
    window: int = 0
    exact_key_layers: tuple[int, ...] = ()
    exact_value_layers: tuple[int, ...] = ()
    precondition: str = "none"
    fit_tokens: int = 512
    sink_tokens: int = 0
    preconditioners: dict[tuple[int, int, int], octopus.Preconditioner] = field(default_factory=dict)

    def layer_keeps(self, layer: int, layers: int) -> tuple[bool, bool]:
        """Whether layer `layer` of `layers` keeps its keys and its values exact."""
        def listed(indices):
            return any(i == layer or i + layers == layer for i in indices)
        return self.keys is None or listed(self.exact_key_layers), self.values is None or listed(self.exact_value_layers)


def _as_rows(x: torch.Tensor) -> np.ndarray:
    """A CPU float32 tensor (..., dim) as a C-contiguous numpy view (no copy when it already is one)."""
    return x.detach().to(torch.float32).contiguous().cpu().numpy()


class OctopusLayer(DynamicLayer):
    """One layer's cache. `keys` / `values` (transformers' names) hold what attention reads: decoded tokens
    older than the window, exact (fp16-rounded) tokens within it; `key_codes` / `value_codes` hold the codes
    per (sequence, KV head), the bytes an engine would keep."""

    is_croppable = False

    def __init__(self, setup: CacheSetup, layer: int, layers: int):
        super().__init__()
        self.setup, self.layer = setup, layer
        self.exact_keys, self.exact_values = setup.layer_keeps(layer, layers)
        self.heads: list[list[octopus.HeadCodec]] | None = None
        self.key_codes: list[list[list[np.ndarray]]] = []
        self.value_codes: list[list[list[np.ndarray]]] = []
        self.encoded = 0          # tokens [0, encoded) are coded (where the layer codes them)
        self.exact_from = 0       # exact_k / exact_v hold the exact tokens [exact_from, length)
        self.exact_k = self.exact_v = None
        self.chunk_start = 0      # first position of the latest update

    # -- transformers' layer interface ------------------------------------------------------------
    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        batch, kv_heads, _, dim = key_states.shape
        self.exact_k = key_states.new_zeros((batch, kv_heads, 0, dim))
        self.exact_v = value_states.new_zeros((batch, kv_heads, 0, dim))
        self.keys = key_states.new_zeros((batch, kv_heads, 0, dim))
        self.values = value_states.new_zeros((batch, kv_heads, 0, dim))
        self.key_codes = [[[] for _ in range(kv_heads)] for _ in range(batch)]
        self.value_codes = [[[] for _ in range(kv_heads)] for _ in range(batch)]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self.heads = self._head_codecs(key_states, value_states)
        # What an fp16 cache holds of the exact tokens.
        key_states = key_states.to(torch.float16).to(key_states.dtype)
        value_states = value_states.to(torch.float16).to(value_states.dtype)
        self.chunk_start = self.get_seq_length()
        length = self.chunk_start + key_states.shape[-2]
        self.exact_k = torch.cat([self.exact_k, key_states], dim=-2)
        self.exact_v = torch.cat([self.exact_v, value_states], dim=-2)
        # Tokens that leave the window are coded (decoded once, for attention).
        coded_until = max(length - self.setup.window, self.encoded)
        if coded_until > self.encoded:
            new_k = self.exact_k[:, :, self.encoded - self.exact_from:coded_until - self.exact_from]
            new_v = self.exact_v[:, :, self.encoded - self.exact_from:coded_until - self.exact_from]
            coded_k = new_k if self.exact_keys else self._code(new_k, keys=True)
            coded_v = new_v if self.exact_values else self._code(new_v, keys=False)
            sinks = max(0, min(self.setup.sink_tokens, coded_until) - self.encoded)  # attention sinks stay exact
            if sinks:
                coded_k[:, :, :sinks], coded_v[:, :, :sinks] = new_k[:, :, :sinks], new_v[:, :, :sinks]
            self.keys = torch.cat([self.keys, coded_k], dim=-2)
            self.values = torch.cat([self.values, coded_v], dim=-2)
            self.encoded = coded_until
        # Keep the exact tokens a query of this update may still see within its window.
        keep_from = max(0, min(self.encoded, self.chunk_start - self.setup.window + 1))
        if keep_from > self.exact_from:
            self.exact_k = self.exact_k[:, :, keep_from - self.exact_from:]
            self.exact_v = self.exact_v[:, :, keep_from - self.exact_from:]
            self.exact_from = keep_from
        return self.view()

    def get_seq_length(self) -> int:
        return 0 if not self.is_initialized else self.exact_from + self.exact_k.shape[-2]

    # -- what attention reads ---------------------------------------------------------------------
    def view(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values as the newest query sees them: decoded before the window, exact within it."""
        tail = self.encoded - self.exact_from
        return (torch.cat([self.keys, self.exact_k[:, :, tail:]], dim=-2),
                torch.cat([self.values, self.exact_v[:, :, tail:]], dim=-2))

    def stored_bits(self) -> tuple[int, int]:
        """(bits stored, coordinates held) of this layer: codes, exact tokens at 16 bits, preconditioners."""
        batch, kv_heads, length, dim = self.view()[0].shape
        bits = 0
        for keys, codes in ((True, self.key_codes), (False, self.value_codes)):
            exact = self.exact_keys if keys else self.exact_values
            coded = 0 if exact else self.encoded
            bits += 16 * batch * kv_heads * (length - coded) * dim
            bits += 8 * sum(c.nbytes for rows in codes for head in rows for c in head)
        if self.heads is not None and not (self.exact_keys and self.exact_values):
            bits += sum(h.preconditioner.stored_bits for rows in self.heads for h in rows
                        if h.preconditioner.mode != "none" or h.preconditioner.center_values)
        return bits, 2 * batch * kv_heads * length * dim

    # -- coding -----------------------------------------------------------------------------------
    def _head_codecs(self, key_states: torch.Tensor, value_states: torch.Tensor):
        batch, kv_heads, tokens, dim = key_states.shape
        setup = self.setup
        key_spec, value_spec = setup.keys or setup.values, setup.values or setup.keys
        if key_spec is None:
            return None
        key_codec, value_codec = key_spec.make(dim), value_spec.make(dim)
        heads = []
        for b in range(batch):
            row = []
            for h in range(kv_heads):
                p = setup.preconditioners.get((self.layer, b, h))
                if p is None:
                    fit = min(tokens, setup.fit_tokens)
                    p = octopus.fit_preconditioner(setup.precondition, _as_rows(key_states[b, h, :fit]),
                                                   _as_rows(value_states[b, h, :fit]), key_codec=key_codec,
                                                   value_codec=value_codec)
                row.append(octopus.HeadCodec(key_codec, value_codec, p))
            heads.append(row)
        return heads

    def _code(self, x: torch.Tensor, keys: bool) -> torch.Tensor:
        """Encodes x [batch, kv_heads, n, dim] head by head, keeps the codes, returns what they decode to."""
        out = torch.empty_like(x, dtype=torch.float32)
        codes = self.key_codes if keys else self.value_codes
        for b, row in enumerate(self.heads):
            for h, head in enumerate(row):
                rows = _as_rows(x[b, h])
                if keys:
                    c = head.encode_keys(rows)
                    head.decode_keys(c, out=out[b, h].numpy())
                else:
                    c = head.encode_values(rows)
                    head.decode_values(c, out=out[b, h].numpy())
                codes[b][h].append(c)
        return out.to(x.dtype)


class OctopusCache(Cache):
    """A transformers Cache whose layers store octopus codes (see the module comment)."""

    def __init__(self, setup: CacheSetup, num_layers: int):
        super().__init__(layers=[OctopusLayer(setup, i, num_layers) for i in range(num_layers)])
        self.setup = setup

    def stored_bits_per_coordinate(self) -> float:
        """Bits stored per key and value coordinate over the whole cache (codes, norms, exact tokens, preconditioners)."""
        bits = coordinates = 0
        for layer in self.layers:
            b, c = layer.stored_bits()
            bits, coordinates = bits + b, coordinates + c
        return bits / max(coordinates, 1)


# -- attention ---------------------------------------------------------------------------------------

_state = {"cache": None, "capture": None}


@contextlib.contextmanager
def attending(cache: OctopusCache | None = None, capture: dict | None = None):
    """While active, octopus_attention mixes `cache`'s exact and decoded tokens per query, or (with
    `capture`, a dict) records each layer's queries, keys and values as capture[layer] = (q, k, v)."""
    previous = dict(_state)
    _state.update(cache=cache, capture=capture)
    try:
        yield
    finally:
        _state.update(previous)


def octopus_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Attention for models run with attn_implementation="octopus": query [B, Hq, n, D], key / value
    [B, Hkv, T, D] as the cache returns them; output [B, n, Hq, D]. Causal, no padding (one sequence per
    row, all of the same length), as a perplexity run or an engine's batch of equal prompts has."""
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    if _state["capture"] is not None:
        _state["capture"][module.layer_idx] = (query.detach().clone(), key.detach().clone(), value.detach().clone())
    cache = _state["cache"]
    layer = cache.layers[module.layer_idx] if cache is not None else None
    n, total = query.shape[-2], key.shape[-2]
    window = layer.setup.window if layer is not None else 0
    mixed = layer is not None and n > 1 and window > 0 and layer.encoded > layer.chunk_start - window + 1
    if not mixed:
        group = query.shape[1] // key.shape[1]
        key, value = key.repeat_interleave(group, dim=1), value.repeat_interleave(group, dim=1)
        out = torch.nn.functional.scaled_dot_product_attention(
            query, key, value, is_causal=n > 1 and n == total, scale=scaling,
            attn_mask=None if n == total or n == 1 else _causal_mask(n, total, query.device))
        return out.transpose(1, 2).contiguous(), None
    return _window_attention(layer, query, key, value, scaling), None


def _causal_mask(n: int, total: int, device) -> torch.Tensor:
    positions = torch.arange(total - n, total, device=device)[:, None]
    return torch.arange(total, device=device)[None, :] <= positions


def _window_attention(layer: OctopusLayer, query, key, value, scaling, block: int = 256):
    """Each query p sees keys p - window < j <= p exact and keys j <= p - window decoded."""
    batch, q_heads, n, dim = query.shape
    kv_heads, total = key.shape[1], key.shape[-2]
    group, window, start = q_heads // kv_heads, layer.setup.window, total - n
    exact_k, exact_v, exact_from = layer.exact_k, layer.exact_v, layer.exact_from
    keys_j = torch.arange(total, device=query.device)
    out = query.new_empty((batch, n, q_heads, dim))
    q = query.reshape(batch, kv_heads, group, n, dim)
    for first in range(0, n, block):
        last = min(n, first + block)
        p = torch.arange(start + first, start + last, device=query.device)[:, None]           # [m, 1]
        distance = p - keys_j[None, :]                                                        # [m, total]
        decoded_part = distance >= window
        exact_part = (distance >= 0) & ~decoded_part
        qb = q[:, :, :, first:last]                                                           # [B, Hkv, G, m, D]
        s_decoded = torch.einsum("bhgmd,bhtd->bhgmt", qb, key) * scaling
        s_exact = torch.full_like(s_decoded, float("-inf"))
        s_exact[..., exact_from:] = torch.einsum("bhgmd,bhtd->bhgmt", qb, exact_k) * scaling
        logits = torch.where(decoded_part, s_decoded, torch.where(exact_part, s_exact, float("-inf")))
        weights = torch.softmax(logits, dim=-1)
        o = torch.einsum("bhgmt,bhtd->bhgmd", weights * decoded_part, value)
        o = o + torch.einsum("bhgmt,bhtd->bhgmd", (weights * exact_part)[..., exact_from:], exact_v)
        out[:, first:last] = o.reshape(batch, q_heads, last - first, dim).transpose(1, 2)
    return out


AttentionInterface.register("octopus", octopus_attention)


# -- fitting on the prompt ---------------------------------------------------------------------------

@torch.no_grad()
def capture_prompt(model, input_ids: torch.Tensor) -> dict:
    """Runs `model` (attn_implementation "octopus") over the prompt with an exact cache; returns
    {layer: (queries [B, Hq, n, D], keys [B, Hkv, n, D], values)} as attention saw them."""
    captured: dict = {}
    with attending(capture=captured):
        model(input_ids, use_cache=False)
    return captured


def fit_preconditioners(captured: dict, setup: CacheSetup, mode: str, attention_scale: float | None = None):
    """Fits setup.preconditioners[(layer, sequence, kv_head)] in `mode` from a capture_prompt result: each KV
    head from its prompt keys and values and the prompt queries of its query heads (causal positions; auto
    leaves the keys within setup.window of a query uncoded, as the cache does). Heads are fitted on
    torch's threads (the binding releases the GIL)."""
    setup.preconditioners = {}
    if mode == "none" or setup.keys is None:
        return setup
    num_layers = len(captured)
    jobs = []
    for layer, (q, k, v) in captured.items():
        keep_keys, keep_values = setup.layer_keeps(layer, num_layers)
        if keep_keys and keep_values:
            continue
        batch, q_heads, n, dim = q.shape
        kv_heads = k.shape[1]
        group = q_heads // kv_heads
        fit = min(n, setup.fit_tokens)
        key_codec, value_codec = setup.keys.make(dim), (setup.values or setup.keys).make(dim)
        positions = np.tile(np.arange(fit, dtype=np.int64), group)
        for b in range(batch):
            for h in range(kv_heads):
                queries = _as_rows(q[b, h * group:(h + 1) * group, :fit].reshape(group * fit, dim))
                jobs.append(((layer, b, h), (mode, _as_rows(k[b, h, :fit]), _as_rows(v[b, h, :fit]), queries, positions),
                             dict(key_codec=key_codec, value_codec=value_codec,
                                  attention_scale=attention_scale or dim ** -0.5, window=setup.window)))
    with ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads())) as pool:
        fitted = pool.map(lambda job: octopus.fit_preconditioner(*job[1], **job[2]), jobs)
        for (key, _, _), p in zip(jobs, fitted):
            setup.preconditioners[key] = p
    return setup
