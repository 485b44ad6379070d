"""Speed of the multi-scale deformable attention core: PyTorch (grid_sample) vs Triton, at real sizes.

Sizes follow Grounding-DINO Swin-T at 800x1333: 4 levels (strides 8/16/32/64), 8 heads x 32 channels,
4 points; the decoder's 900 queries and the encoder's ~22k queries (one per image token), batch 1 and 8.

For each case it prints the median time of the forward and of forward+backward, and the achieved
bandwidth against a floor of compulsory traffic: every value byte read once + every output byte
written once (+ the locations and weights read once), i.e. ``GB/s = floor_bytes / time``. The floor is a
lower bound on traffic, so the achieved figure is an upper bound on how close the kernel runs to the
memory roofline; compare it with the card's peak (``--peak-gbps``, e.g. 3350 for H100 SXM).

On a machine without CUDA it says so and times only the PyTorch path on CPU (fewer repetitions).

Usage: ``python benchmarks/msda_speed.py [--dtype fp32|fp16|bf16] [--reps N] [--peak-gbps X]``
"""
import argparse
import statistics
import time

import torch

from llmvision.models.ops import multi_scale_deformable_attn, triton_available

STRIDES = (8, 16, 32, 64)
HEADS, HEAD_DIM, POINTS = 8, 32, 4
DTYPES = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}


def level_shapes(height=800, width=1333):
    return [(-(-height // s), -(-width // s)) for s in STRIDES]


def make_inputs(batch, queries, shapes, device, dtype, seed=0):
    generator = torch.Generator(device='cpu').manual_seed(seed)
    spatial = torch.tensor(shapes, dtype=torch.long)
    sizes = spatial[:, 0] * spatial[:, 1]
    starts = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
    num_value = int(sizes.sum())
    levels = len(shapes)
    value = torch.randn(batch, num_value, HEADS, HEAD_DIM, generator=generator).to(device, dtype)
    loc = torch.rand(batch, queries, HEADS, levels, POINTS, 2, generator=generator).to(device)
    weights = torch.rand(batch, queries, HEADS, levels, POINTS, generator=generator).softmax(-1).to(device)
    return value, spatial.to(device), starts.to(device), loc, weights


def floor_bytes(value, loc, weights, queries):
    batch = value.shape[0]
    out_bytes = batch * queries * HEADS * HEAD_DIM * value.element_size()
    return (value.numel() * value.element_size() + out_bytes + loc.numel() * loc.element_size()
            + weights.numel() * weights.element_size())


def time_call(fn, reps, cuda):
    """Median seconds of ``fn()`` over ``reps`` runs after 2 warm-up runs."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(reps):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_case(backend, batch, queries, shapes, device, dtype, reps, peak):
    value, spatial, starts, loc, weights = make_inputs(batch, queries, shapes, device, dtype)
    cuda = device.type == 'cuda'

    def forward():
        with torch.no_grad():
            return multi_scale_deformable_attn(value, spatial, starts, loc, weights, backend=backend)

    grads = [t.detach().requires_grad_() for t in (value, loc, weights)]
    grad_out = torch.randn(batch, queries, HEADS * HEAD_DIM, device=device, dtype=dtype)

    def forward_backward():
        for g in grads:
            g.grad = None
        out = multi_scale_deformable_attn(grads[0], spatial, starts, grads[1], grads[2], backend=backend)
        out.backward(grad_out)

    t_fwd = time_call(forward, reps, cuda)
    t_fb = time_call(forward_backward, reps, cuda)
    nbytes = floor_bytes(value, loc, weights, queries)
    gbps = nbytes / t_fwd / 1e9
    share = f' ({100 * gbps / peak:5.1f}% of peak)' if peak else ''
    print(f'{backend:8s} B={batch} Q={queries:6d}  fwd {t_fwd * 1e3:9.3f} ms  fwd+bwd {t_fb * 1e3:9.3f} ms  '
          f'floor {nbytes / 1e6:8.1f} MB -> {gbps:8.1f} GB/s{share}')
    return t_fwd, t_fb


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--dtype', choices=sorted(DTYPES), default='fp32')
    parser.add_argument('--reps', type=int, default=20)
    parser.add_argument('--peak-gbps', type=float, default=0.0, help='device peak bandwidth, for a percentage')
    args = parser.parse_args()
    dtype = DTYPES[args.dtype]
    shapes = level_shapes()
    encoder_queries = sum(h * w for h, w in shapes)
    print(f'levels {shapes} -> {encoder_queries} tokens; heads {HEADS} x {HEAD_DIM}, points {POINTS}, {args.dtype}')
    if torch.cuda.is_available():
        device = torch.device('cuda')
        backends = ['pytorch'] + (['triton'] if triton_available() else [])
        if not triton_available():
            print('triton cannot be imported: timing only the PyTorch path')
        print(f'device: {torch.cuda.get_device_name()}')
        cases = [(b, q) for b in (1, 8) for q in (900, encoder_queries)]
        reps = args.reps
    else:
        device = torch.device('cpu')
        backends = ['pytorch']
        print('CUDA is not available: the Triton kernel needs a GPU. Timing only the PyTorch path on CPU '
              f'({torch.get_num_threads()} threads), batch 1, 3 repetitions.')
        if dtype != torch.float32:
            print('CPU: using fp32')
            dtype = torch.float32
        cases = [(1, 900), (1, encoder_queries)]
        reps = 3
    results = {}
    for batch, queries in cases:
        for backend in backends:
            results[(backend, batch, queries)] = bench_case(backend, batch, queries, shapes, device, dtype, reps,
                                                            args.peak_gbps)
        if len(backends) == 2:
            ref, tri = results[('pytorch', batch, queries)], results[('triton', batch, queries)]
            print(f'  speed-up triton vs pytorch: fwd x{ref[0] / tri[0]:.2f}, fwd+bwd x{ref[1] / tri[1]:.2f}')


if __name__ == '__main__':
    main()
