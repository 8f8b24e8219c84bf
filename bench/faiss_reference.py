"""faiss's scans on the same keys as octopus-bench, as an external reference (issue "CPU decode attention").

faiss-cpu 1.15 (PyPI) ships TurboQuant scalar quantizers (QT_<b>bit_tqmse) beside fp16. This script times, on one
thread, a brute-force inner-product scan (IndexScalarQuantizer.search, k = 1) of n unit keys of d = 128 for each, and
faiss's decode, next to octopus's `dot` and `decode` and its lookup-table scan (ScanKeys) through the Python binding on
the same keys; it also reports each codec's per-vector MSE on those keys, so the rows compare like with like. faiss's TurboQuant codecs (QT_<b>bit_tqmse)
quantize coordinates of unit variance and do not rotate: they are given √d·keys (uniform unit keys need no rotation),
and their MSE is measured back on the unit scale.

    pip install faiss-cpu==1.15.0 numpy          # and the binding: pip install . (or PYTHONPATH=build/python)
    python3 bench/faiss_reference.py [--keys 131072] [--repeats 5]
"""
import argparse
import time

import numpy as np


def best_of(repeats, f):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=131072)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import faiss
    import octopus

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(1)
    keys = rng.standard_normal((args.keys, args.dim)).astype(np.float32)
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    query = rng.standard_normal((1, args.dim)).astype(np.float32)
    n = args.keys
    print(f"faiss {faiss.__version__}, {n} unit keys of d = {args.dim}, one thread, best of {args.repeats}")
    print(f"{'codec':<28}{'scan M keys/s':>15}{'decode M keys/s':>17}{'MSE':>10}")

    sq = faiss.ScalarQuantizer
    for label, qtype, scale in [("faiss fp16", sq.QT_fp16, 1.0),
                                ("faiss TurboQuant 2-bit", sq.QT_2bit_tqmse, np.sqrt(args.dim)),
                                ("faiss TurboQuant 3-bit", sq.QT_3bit_tqmse, np.sqrt(args.dim)),
                                ("faiss TurboQuant 4-bit", sq.QT_4bit_tqmse, np.sqrt(args.dim))]:
        index = faiss.IndexScalarQuantizer(args.dim, qtype, faiss.METRIC_INNER_PRODUCT)
        scaled = keys * np.float32(scale)
        index.train(scaled)
        index.add(scaled)
        scan = best_of(args.repeats, lambda: index.search(query, 1))
        codes = index.sa_encode(scaled)
        decode = best_of(args.repeats, lambda: index.sa_decode(codes))
        mse = float(np.mean(np.sum((index.sa_decode(codes) / np.float32(scale) - keys) ** 2, axis=1)))
        print(f"{label:<28}{n / scan / 1e6:>15.1f}{n / decode / 1e6:>17.1f}{mse:>10.4f}")

    for name, bits in [("turboquant", 2), ("turboquant", 3), ("turboquant", 4), ("octopus", 2), ("octopus", 3), ("octopus", 4)]:
        codec = octopus.Codec(name, args.dim, bits, 1)
        packed = codec.encode(keys)
        scan = best_of(args.repeats, lambda: codec.dot(query[0], packed))
        decode = best_of(args.repeats, lambda: codec.decode(packed))
        mse = float(np.mean(np.sum((codec.decode(packed) - keys) ** 2, axis=1)))
        print(f"{'octopus ' + name + f' {bits}-bit':<28}{n / scan / 1e6:>15.1f}{n / decode / 1e6:>17.1f}{mse:>10.4f}")

    for bits in [2, 3, 4]:
        scan_keys = octopus.ScanKeys(args.dim, bits, 1)
        scan_keys.append(keys)
        scan = best_of(args.repeats, lambda: scan_keys.scores(query[0]))
        decoded = octopus.Codec("turboquant", args.dim, bits, 1).decode(scan_keys.codes())
        mse = float(np.mean(np.sum((decoded - keys) ** 2, axis=1)))
        print(f"{f'octopus turboquant scan {bits}-bit':<28}{n / scan / 1e6:>15.1f}{'':>17}{mse:>10.4f}")


if __name__ == "__main__":
    main()
