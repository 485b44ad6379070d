"""LLaVolta speed: training step time of every scheme and prefill time / FLOPs of heavy and light vs uncompressed.

The LLM of LLaVA-1.5-7B (LLaMA-7B shapes: hidden 4096, 32 layers, 32 heads, MLP 11008, vocabulary 32000; random
weights, bf16, SDPA, gradient checkpointing in training) on one GPU, fed 576 visual tokens per image (random
projector outputs: the CLIP tower and projector cost the same with and without compression and are left out) and
``--text`` text tokens. All settings run through the same :class:`VisualTokenCompressor` loop (``none`` = no
pooling; it equals transformers' forward, tested).

* training: forward + backward (no optimizer step) of the answer-token loss for each (K, S) a scheme uses; a
  staged scheme's time is the stage times weighted by their share of training (the paper's 16% is on wall time
  of whole runs, which adds the data loading and optimizer steps that do not shrink).
* prefill: batched forward of the prompt (no grad) with a KV cache, heavy (K=2,S=8) and light (K=16,S=8) vs
  uncompressed; FLOPs counted analytically (matmuls: 2 x multiply-adds, causal attention counted in full).

Without a GPU (or with ``--cpu``) it runs a REDUCED setting and says so: hidden 256, 8 layers (K scaled by 8/32:
K=2 -> 1, K=16 -> 4), MLP 688, vocabulary 32000, fp32, batch 2, still 576 visual tokens.

    python benchmarks/llavolta_speed.py                     # GPU: LLaVA-1.5-7B shapes
    OMP_NUM_THREADS=2 python benchmarks/llavolta_speed.py --cpu
"""
import argparse
import json
import statistics
import time

import torch

from llmvision.models.llm.loss import causal_lm_loss
from llmvision.models.lmm.compression_presets import compression_stages, describe
from llmvision.models.lmm.compressor import VisualTokenCompressor, compression_ratio
from llmvision.structures.lmm_sample import IGNORE_INDEX

SCHEMES = ('single', 'two', 'three_deeper', 'three_wider', 'four_wider_deeper', 'four_deeper_wider', 'heavy',
           'light')
GPU_SHAPES = dict(hidden=4096, layers=32, heads=32, mlp=11008, vocab=32000, batch=8, dtype=torch.bfloat16)
CPU_SHAPES = dict(hidden=256, layers=8, heads=4, mlp=688, vocab=32000, batch=2, dtype=torch.float32)


def build_llm(s, device):
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(hidden_size=s['hidden'], num_hidden_layers=s['layers'], num_attention_heads=s['heads'],
                      num_key_value_heads=s['heads'], intermediate_size=s['mlp'], vocab_size=s['vocab'],
                      max_position_embeddings=4096)
    cfg._attn_implementation = 'sdpa'
    torch.manual_seed(0)
    with torch.device(device):
        llm = LlamaForCausalLM(cfg).to(s['dtype'])
    return llm


def make_batch(s, n_vis, n_text, n_answer, device):
    """One image (n_vis tokens) after a few system tokens, then the question and the answer: ``[B, T]`` tensors."""
    B, T = s['batch'], n_vis + n_text
    g = torch.Generator().manual_seed(0)
    embeds = (torch.randn(B, T, s['hidden'], generator=g) * 0.02).to(device, s['dtype'])
    vis = torch.zeros(B, T, dtype=torch.bool)
    lead = min(8, n_text)
    vis[:, lead:lead + n_vis] = True
    labels = torch.full((B, T), IGNORE_INDEX, dtype=torch.long)
    labels[:, T - n_answer:] = torch.randint(0, s['vocab'], (B, n_answer), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    pos = torch.arange(T).expand(B, T).clone()
    return [t.to(device) for t in (embeds, mask, pos, vis, labels)]


def timed(fn, iters, warmup, device):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        if device == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def prefill_flops(s, T, setting, n_vis, batch):
    """Analytic prefill FLOPs (one forward over the prompt, lm_head on the last token only)."""
    H, mlp, N = s['hidden'], s['mlp'], s['layers']
    per_token = 2 * (4 * H * H + 3 * H * mlp)
    total = 0
    for i in range(N):
        t = T
        if setting is not None and i >= max(setting[0], 0):
            t = T - n_vis + -(-n_vis // setting[1])
        total += t * per_token + 2 * 2 * t * t * H
    return batch * (total + 2 * H * s['vocab'])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cpu', action='store_true', help='reduced CPU setting even if a GPU is present')
    parser.add_argument('--visual', type=int, default=576, help='visual tokens per image (LLaVA-1.5: 576)')
    parser.add_argument('--text', type=int, default=64, help='text tokens (system + question + answer)')
    parser.add_argument('--answer', type=int, default=16, help='answer tokens (the loss positions)')
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=1,
                        help='CPU threads (1: on a shared machine, 2+ threads stall on every op and hide the FLOPs)')
    parser.add_argument('--out', help='write the results as json here')
    args = parser.parse_args(argv)

    gpu = torch.cuda.is_available() and not args.cpu
    device = 'cuda' if gpu else 'cpu'
    s = dict(GPU_SHAPES if gpu else CPU_SHAPES)
    if not gpu:
        torch.set_num_threads(args.threads)
    scale = s['layers'] / 32
    shallow, deep = max(1, round(2 * scale)), max(1, round(16 * scale))
    mode = ('GPU, LLaVA-1.5-7B shapes' if gpu else
            f'CPU, REDUCED setting (hidden {s["hidden"]}, {s["layers"]} layers, K=2->{shallow}, K=16->{deep}; '
            'not comparable to the GPU table)')
    print(f'# llavolta_speed: {mode}; batch {s["batch"]}, {args.visual} visual + {args.text} text tokens, '
          f'{s["dtype"]}, {args.iters} timed iters after {args.warmup} warm-up'
          + ('' if gpu else f', {torch.get_num_threads()} CPU thread(s)'), flush=True)

    llm = build_llm(s, device)
    if gpu:
        llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=dict(use_reentrant=False))
    embeds, mask, pos, vis, labels = make_batch(s, args.visual, args.text, args.answer, device)
    comp = VisualTokenCompressor()
    schemes = {name: compression_stages(name, shallow=shallow, deep=deep) for name in SCHEMES}
    settings = {(st['layer'], st['stride']) for stages in schemes.values() for st in stages}
    settings.add((None, 1))

    def train_step():
        llm.zero_grad(set_to_none=True)
        x = embeds.detach().requires_grad_()
        out = comp(llm, x, mask, pos, vis, labels=labels)
        causal_lm_loss(llm.get_output_embeddings(), out.hidden_states, out.labels).backward()

    train_ms = {}
    llm.train()
    comp.train()
    for k, st in sorted(settings, key=lambda t: (t[0] is not None, t)):
        comp.set_stage(k, st)
        train_ms[(k, st)] = timed(train_step, args.iters, args.warmup, device)
        print(f'train step {describe(dict(layer=k, stride=st)):>14}: {train_ms[(k, st)]:.1f} ms', flush=True)
    base = train_ms[(None, 1)]
    rows = []
    for name, stages in schemes.items():
        ends = [st['begin'] for st in stages[1:]] + [1.0]
        ms = sum((end - st['begin']) * train_ms[(st['layer'], st['stride'])] for st, end in zip(stages, ends))
        rows.append(dict(scheme=name, stages=' -> '.join(describe(st) for st in stages), train_ms=ms,
                         saving=1 - ms / base))

    llm.eval()
    comp.keep_at_inference = True
    comp.eval()
    prefill = []
    T = args.visual + args.text
    for name, setting in (('uncompressed', None), ('heavy', (shallow, 8)), ('light', (deep, 8))):
        comp.set_stage(*(setting or (None, 1)))

        @torch.no_grad()
        def run():
            out = comp(llm, embeds, mask, pos, vis, use_cache=True)
            llm.get_output_embeddings()(out.hidden_states[:, -1])

        ms = timed(run, args.iters, args.warmup, device)
        flops = prefill_flops(s, T, setting, args.visual, s['batch'])
        cr = 1.0 if setting is None else compression_ratio(s['layers'], *setting)
        prefill.append(dict(mode=name, ms=ms, gflops=flops / 1e9, cr=cr))
        print(f'prefill {name:>12}: {ms:.1f} ms, {flops / 1e9:.1f} GFLOPs', flush=True)
    for p in prefill:
        p['speedup'] = prefill[0]['ms'] / p['ms']
        p['flops_ratio'] = prefill[0]['gflops'] / p['gflops']

    print(f'\n{mode}\n')
    print('| scheme | stages (K,S per quarter/third/half) | train step ms (weighted) | vs uncompressed |')
    print('|---|---|---|---|')
    print(f'| uncompressed | - | {base:.1f} | - |')
    for r in rows:
        print(f'| {r["scheme"]} | {r["stages"]} | {r["train_ms"]:.1f} | {-100 * r["saving"]:+.1f}% |')
    print('\n| prefill | CR (formula) | ms | speed-up | GFLOPs | FLOPs ratio |')
    print('|---|---|---|---|---|---|')
    for p in prefill:
        print(f'| {p["mode"]} | {100 * p["cr"]:.0f}% | {p["ms"]:.1f} | {p["speedup"]:.2f}x | {p["gflops"]:.1f} '
              f'| {p["flops_ratio"]:.2f}x |')
    result = dict(mode=mode, shapes={k: str(v) for k, v in s.items()}, visual=args.visual, text=args.text,
                  train_ms={describe(dict(layer=k, stride=st)): v for (k, st), v in train_ms.items()},
                  schemes=rows, prefill=prefill)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
