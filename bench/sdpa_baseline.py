"""fp16 decode-attention baseline for bench_cuda.cu: PyTorch's scaled_dot_product_attention on the
same shapes (one query token, 32 query heads over 8 KV heads, d = 128), K and V rotated through
enough copies to exceed the L2 cache. Prints CSV rows: attention,fp16-sdpa,16,batch,context,time_us."""
import sys

import torch
import torch.nn.functional as F


def median_us(fn, samples=9, inner=10):
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for i in range(3):
        fn(i)
    times, index = [], 0
    for _ in range(samples):
        start.record()
        for _ in range(inner):
            fn(index)
            index += 1
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) * 1000.0 / inner)
    return sorted(times)[len(times) // 2]


def main():
    contexts = [int(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "4096,16384,65536,131072").split(",")]
    batches = [int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "1,16").split(",")]
    peak = None
    print(f"# torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
    for batch in batches:
        for context in contexts:
            kv_bytes = 2 * batch * 8 * context * 128 * 2
            copies = max(1, (200 << 20) // kv_bytes + 1)
            q = torch.randn(batch, 32, 1, 128, device="cuda", dtype=torch.float16)
            ks = [torch.randn(batch, 8, context, 128, device="cuda", dtype=torch.float16) for _ in range(copies)]
            vs = [torch.randn(batch, 8, context, 128, device="cuda", dtype=torch.float16) for _ in range(copies)]
            us = median_us(lambda i: F.scaled_dot_product_attention(q, ks[i % copies], vs[i % copies], enable_gqa=True))
            print(f"attention,fp16-sdpa,16,{batch},{context},{us:.2f},,,{kv_bytes},{kv_bytes / us / 1e3:.0f},")
            del ks, vs
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
