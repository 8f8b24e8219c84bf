"""The Python binding against the C++ library's own contracts (numpy only; torch is optional)."""

import threading

import numpy as np
import pytest

import octopus


def unit_rows(n, dim, seed):
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def offset_rows(n, dim, seed, offset):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, dim)) + offset * rng.standard_normal(dim)).astype(np.float32)


@pytest.mark.parametrize("name", ["turboquant", "octopus", "polarquant", "uniform"])
def test_round_trip_and_scores_from_codes(name):
    codec = octopus.Codec(name, dim=128, bits=3, seed=7)
    assert codec.name == name and codec.dim == 128 and codec.bits == 3 and codec.seed == 7 and codec.norm == "fp32"
    assert codec.bits_per_coordinate == pytest.approx(8 * codec.bytes_per_vector / 128)
    keys = unit_rows(200, 128, 1)
    codes = codec.encode(keys)
    assert codes.shape == (200, codec.bytes_per_vector) and codes.dtype == np.uint8
    decoded = codec.decode(codes)
    assert decoded.shape == keys.shape and decoded.dtype == np.float32
    mse = np.mean(np.sum((keys - decoded) ** 2, axis=1))
    assert 0.005 < mse < 0.1  # 3 bits: TurboQuant 0.034, OCTOPUS 0.027 on unit keys
    query = unit_rows(1, 128, 2)[0] * 5
    np.testing.assert_allclose(codec.dot(query, codes), decoded @ query, rtol=1e-5, atol=1e-5)


def test_leading_axes_and_element_types():
    codec = octopus.Codec("octopus", 64, 2.67, seed=3)
    x = offset_rows(24, 64, 3, 0.0).reshape(2, 3, 4, 64)
    codes = codec.encode(x)
    assert codes.shape == (2, 3, 4, codec.bytes_per_vector)
    assert codec.decode(codes).shape == (2, 3, 4, 64)
    halves = x.astype(np.float16)
    np.testing.assert_array_equal(codec.encode(halves), codec.encode(halves.astype(np.float32)))
    # A scores array keeps the codes' leading axes.
    assert codec.dot(x[0, 0, 0], codes).shape == (2, 3, 4)


def test_out_arguments_write_in_place():
    codec = octopus.Codec("turboquant", 64, 4, seed=1)
    x = unit_rows(10, 64, 4)
    codes = np.empty((10, codec.bytes_per_vector), np.uint8)
    assert codec.encode(x, out=codes) is codes
    np.testing.assert_array_equal(codes, codec.encode(x))
    decoded = np.empty((10, 64), np.float32)
    assert codec.decode(codes, out=decoded) is decoded
    scores = np.empty(10, np.float32)
    assert codec.dot(x[0], codes, out=scores) is scores
    np.testing.assert_allclose(scores, decoded @ x[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(octopus.error, match="out has shape"):
        codec.decode(codes, out=np.empty((10, 63), np.float32))


def test_errors_carry_the_library_message():
    assert issubclass(octopus.error, ValueError)
    with pytest.raises(octopus.error, match="unknown codec 'zip'"):
        octopus.Codec("zip", 64, 3)
    with pytest.raises(octopus.error, match="not one of 1, 2, 3, 4"):
        octopus.Codec("turboquant", 64, 5)
    with pytest.raises(octopus.error, match="head dim 100 is not supported"):
        octopus.Codec("octopus", 100, 3)
    with pytest.raises(octopus.error, match="norm 'fp8'"):
        octopus.Codec("octopus", 64, 3, norm="fp8")
    codec = octopus.Codec("octopus", 64, 3)
    bad = unit_rows(4, 64, 5)
    bad[2, 7] = np.nan
    with pytest.raises(octopus.error, match="key 2 has a non-finite value at coordinate 7"):
        codec.encode(bad)
    with pytest.raises(octopus.error, match="does not end in the head dim 64"):
        codec.encode(np.zeros((3, 63), np.float32))
    with pytest.raises(octopus.error, match="float32, float16 or bfloat16"):
        codec.encode(np.zeros((3, 64), np.float64))
    with pytest.raises(octopus.error, match="C-contiguous"):
        codec.encode(np.zeros((64, 3), np.float32).T)
    codes = codec.encode(unit_rows(3, 64, 6))
    codes[1, -4:] = np.frombuffer(np.float32(np.nan).tobytes(), np.uint8)  # damage vector 1's norm
    with pytest.raises(octopus.error, match="packed vector 1 is damaged"):
        codec.decode(codes)


def test_batch_calls_release_the_gil():
    codec = octopus.Codec("octopus", 128, 3, seed=1)
    keys = unit_rows(100_000, 128, 7)
    counter, running = [0], [True]

    def count():
        while running[0]:
            counter[0] += 1

    thread = threading.Thread(target=count)
    thread.start()
    try:
        before = counter[0]
        codes = codec.encode(keys)
        during = counter[0] - before
    finally:
        running[0] = False
        thread.join()
    # Holding the GIL for the whole call, the counting thread would barely move.
    assert during > 10_000
    # Concurrent calls on one codec give the single-threaded bytes.
    results = [None] * 4

    def encode(i):
        results[i] = codec.encode(keys[i * 1000:(i + 1) * 1000])

    threads = [threading.Thread(target=encode, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(np.concatenate(results), codes[:4000])


def test_preconditioner_fit_and_head_codec_are_exact_around_the_codec():
    dim, n = 64, 400
    keys, values = offset_rows(n, dim, 8, 6.0), offset_rows(n, dim, 9, 2.0)
    queries = offset_rows(200, dim, 10, 0.0) * 3
    codec = octopus.Codec("turboquant", dim, 3, seed=2)
    center = octopus.fit_preconditioner("center", keys, values)
    assert center.mode == "center" and center.center_values
    np.testing.assert_allclose(center.key_offset, keys.mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(center.value_offset, values.mean(axis=0), rtol=1e-5, atol=1e-5)
    chosen = octopus.fit_preconditioner("auto", keys, values, queries, key_codec=codec)
    assert chosen.mode in ("center", "scale")
    head = octopus.HeadCodec(codec, codec, chosen)
    key_codes, value_codes = head.encode_keys(keys), head.encode_values(values)
    k_hat, v_hat = head.decode_keys(key_codes), head.decode_values(value_codes)
    plain = codec.decode(codec.encode(keys))
    assert np.sum((k_hat - keys) ** 2) < 0.2 * np.sum((plain - keys) ** 2)  # offsets cost the plain codec
    np.testing.assert_allclose(head.dot(queries[0], key_codes), k_hat @ queries[0], rtol=1e-4, atol=1e-3)
    out = head.attend(queries[:3], key_codes, value_codes, 0.125)
    logits = 0.125 * (queries[:3].astype(np.float64) @ k_hat.T.astype(np.float64))
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    reference = (weights / weights.sum(axis=1, keepdims=True)) @ v_hat.astype(np.float64)
    np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-4)


def test_preconditioner_refusals_and_fallbacks():
    dim = 64
    keys = offset_rows(100, dim, 11, 3.0)
    with pytest.raises(octopus.error, match="needs the prompt's queries"):
        octopus.fit_preconditioner("scale", keys)
    with pytest.raises(octopus.error, match="pass key_codec"):
        octopus.fit_preconditioner("auto", keys)
    with pytest.raises(octopus.error, match="unknown preconditioning 'centre'"):
        octopus.fit_preconditioner("centre", keys)
    bad = keys.copy()
    bad[3, 4] = np.inf
    with pytest.raises(octopus.error, match="key row 3"):
        octopus.fit_preconditioner("center", bad)
    few = keys[: octopus.min_fit_tokens - 1]
    assert octopus.fit_preconditioner("center", few).mode == "none"
    with pytest.raises(octopus.error, match="not finite and positive"):
        octopus.Preconditioner(np.zeros(dim, np.float32), np.zeros(dim, np.float32), np.zeros(dim, np.float32))
    identity = octopus.Preconditioner(dim)
    assert identity.mode == "none" and identity.stored_bits == 3 * 32 * dim
    codec = octopus.Codec("octopus", dim, 3)
    with pytest.raises(octopus.error, match="must agree"):
        octopus.HeadCodec(codec, codec, octopus.Preconditioner(32))


def test_torch_tensors_are_read_in_place():
    torch = pytest.importorskip("torch")
    codec = octopus.Codec("octopus", 64, 3, seed=1)
    x = torch.randn(6, 64)
    np.testing.assert_array_equal(codec.encode(x), codec.encode(x.numpy()))
    out = torch.empty((6, 64), dtype=torch.float32)
    codec.decode(codec.encode(x), out=out)
    np.testing.assert_array_equal(out.numpy(), codec.decode(codec.encode(x.numpy())))
    np.testing.assert_array_equal(codec.encode(x.to(torch.bfloat16)), codec.encode(x.to(torch.bfloat16).float()))


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_scan_keys_hold_the_codes_and_score_within_their_bound(bits):
    codec = octopus.Codec("turboquant", 64, bits, 5, "fp16")
    keys = unit_rows(70, 64, 1) * np.linspace(0.5, 3.0, 70, dtype=np.float32)[:, None]
    scan = octopus.ScanKeys(64, bits, 5, "fp16")
    scan.append(keys[:33])
    scan.append_codes(codec.encode(keys[33:]))
    assert len(scan) == 70 and scan.dim == 64 and scan.bits == bits
    assert np.array_equal(scan.codes(), codec.encode(keys))
    query = 2.0 * unit_rows(1, 64, 2)[0]
    exact = codec.dot(query, codec.encode(keys))
    norms = np.linalg.norm(keys, axis=1)
    bound = norms * (scan.max_error(query) + 1e-5 * 2.0)
    assert np.all(np.abs(scan.scores(query) - exact) <= bound)


def test_scan_keys_attend_as_a_softmax_of_their_scores():
    codec = octopus.Codec("turboquant", 64, 3, 1)
    values_codec = octopus.Codec("octopus", 64, 2, 2)
    keys, values = unit_rows(150, 64, 3), unit_rows(150, 64, 4)
    scan = octopus.ScanKeys(64, 3, 1)
    scan.append(keys.astype(np.float16))
    value_codes = values_codec.encode(values)
    queries = 3.0 * unit_rows(4, 64, 5)
    scale = 1.0 / 8.0
    out = scan.attend(queries, values_codec, value_codes, scale, threads=2)
    decoded = values_codec.decode(value_codes).astype(np.float64)
    for g in range(4):
        s = scale * scan.scores(queries[g]).astype(np.float64)
        p = np.exp(s - s.max())
        assert np.allclose(out[g], p @ decoded / p.sum(), atol=2e-5)
    wide = octopus.Codec("octopus", 128, 2, 2)
    with pytest.raises(octopus.error, match="differs from the value codec's 128"):
        scan.attend(queries, wide, wide.encode(unit_rows(150, 128, 6)), scale)
    with pytest.raises(octopus.error, match="value bytes are not 150 records"):
        scan.attend(queries, values_codec, value_codes[:-1], scale)
    with pytest.raises(octopus.error, match="bits 5 is not one of 1, 2, 3, 4"):
        octopus.ScanKeys(64, 5)
    with pytest.raises(octopus.error, match="record 1 is damaged"):
        bad = codec.encode(keys[:2])
        bad[1, -4:] = np.frombuffer(np.float32(np.nan).tobytes(), np.uint8)
        scan.append_codes(bad)
    assert len(scan) == 150
