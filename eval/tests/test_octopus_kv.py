"""The compressed transformers cache (eval/octopus_kv.py): needs torch and transformers, skipped without them."""

import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import octopus  # noqa: E402
from octopus_kv import CacheSetup, CodecSpec, OctopusLayer, _window_attention  # noqa: E402


def reference_attention(q, k, v, scale):
    """softmax(scale q k^T) v for one query row against keys [T, D] (float64)."""
    logits = scale * (k.double() @ q.double())
    w = torch.softmax(logits, dim=0)
    return w @ v.double()


@pytest.mark.parametrize("window", [0, 1, 5, 64])
def test_one_pass_equals_token_by_token(window):
    torch.manual_seed(0)
    kv_heads, group, tokens, dim = 2, 3, 40, 64
    k = torch.randn(1, kv_heads, tokens, dim) * 3 + 2
    v = torch.randn(1, kv_heads, tokens, dim)
    q = torch.randn(1, kv_heads * group, tokens, dim)
    setup = CacheSetup(keys=CodecSpec("turboquant", 3, 1), values=CodecSpec("octopus", 2, 2), window=window,
                       precondition="center", fit_tokens=tokens)
    # One pass: every query gets its own mix of exact and decoded keys.
    whole = OctopusLayer(setup, 1, 4)
    key_view, value_view = whole.update(k, v)
    mixed = _window_attention(whole, q, key_view, value_view, dim ** -0.5, block=16)[0]   # [tokens, Hq, D]
    # Token by token, with the same preconditioners (fitted on all tokens by the one-pass layer).
    setup_b = CacheSetup(**{**setup.__dict__})
    setup_b.preconditioners = {(1, 0, h): whole.heads[0][h].preconditioner for h in range(kv_heads)}
    steps = OctopusLayer(setup_b, 1, 4)
    for t in range(tokens):
        kt, vt = steps.update(k[:, :, t:t + 1], v[:, :, t:t + 1])
        for h in range(kv_heads * group):
            expected = reference_attention(q[0, h, t], kt[0, h // group], vt[0, h // group], dim ** -0.5)
            np.testing.assert_allclose(mixed[t, h].numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
    # Both coded the same tokens to the same bytes.
    for h in range(kv_heads):
        if whole.key_codes[0][h]:
            np.testing.assert_array_equal(np.concatenate(whole.key_codes[0][h]), np.concatenate(steps.key_codes[0][h]))
    assert whole.encoded == steps.encoded == max(0, tokens - window)


def test_exact_layers_and_stored_bits():
    torch.manual_seed(1)
    k, v = torch.randn(1, 2, 50, 64), torch.randn(1, 2, 50, 64)
    setup = CacheSetup(keys=CodecSpec("turboquant", 4, 1), values=CodecSpec("turboquant", 4, 2), window=10,
                       exact_key_layers=(0, -1))
    first, middle = OctopusLayer(setup, 0, 3), OctopusLayer(setup, 1, 3)
    kf, _ = first.update(k, v)
    km, vm = middle.update(k, v)
    np.testing.assert_array_equal(kf.numpy(), k.half().float().numpy())   # exact keys: fp16-rounded
    assert not torch.equal(km[:, :, :40], k.half().float()[:, :, :40])    # coded before the window
    np.testing.assert_array_equal(km[:, :, 40:].numpy(), k.half().float()[:, :, 40:].numpy())
    bits, coordinates = middle.stored_bits()
    codec = octopus.Codec("turboquant", 64, 4)
    assert bits == 2 * 2 * (40 * codec.bytes_per_vector * 8 + 10 * 16 * 64)
    assert coordinates == 2 * 2 * 50 * 64
