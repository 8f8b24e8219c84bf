"""octopus: compress the key/value cache of transformer inference to 2-4 bits per coordinate.

The codecs of the C++ library (OCTOPUS, TurboQuant, PolarQuant, QJL, a per-token uniform quantizer)
and its per-head preconditioning, on numpy arrays and CPU torch tensors:

    import numpy as np, octopus
    codec = octopus.Codec("octopus", dim=128, bits=3, seed=0)
    codes = codec.encode(keys)             # keys: (..., 128) float32/float16/bfloat16 -> uint8 (..., 52)
    keys_hat = codec.decode(codes)         # float32 (..., 128)
    scores = codec.dot(query, codes)       # query . decoded key, from the codes

    p = octopus.fit_preconditioner("auto", prompt_keys, prompt_values, prompt_queries, key_codec=codec)
    head = octopus.HeadCodec(codec, codec, p)   # encode_keys/values, decode_keys/values, dot, attend

    scan = octopus.ScanKeys(dim=128, bits=3)    # TurboQuant keys scored by table lookup (the fastest CPU path)
    scan.append(keys); scan.scores(query); scan.attend(queries, value_codec, value_codes, scale)

Every error of the library is raised as octopus.error (a ValueError) with its message.
"""

from ._octopus import (  # noqa: F401
    Codec,
    HeadCodec,
    Preconditioner,
    ScanKeys,
    codec_names,
    error,
    fit_preconditioner,
    min_fit_tokens,
)

__all__ = ["Codec", "HeadCodec", "Preconditioner", "ScanKeys", "codec_names", "error", "fit_preconditioner", "min_fit_tokens"]
