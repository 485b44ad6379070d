"""VLoRA vs LLaVA prefill per sample: time and FLOPs at 32, 128 and 512 text tokens (one run).

Prefill = what runs before the first generated token, after the (shared, identical) vision tower:

* LLaVA: ``mlp2x_gelu`` projector on the 576 CLIP-L/336 patch tokens, then the LLM decoder over 576 + T
  positions with a KV cache, and the LM head on the last position;
* VLoRA: the perceptual weights generator (d = 512, depth 8, 16 heads, rank 64, alpha 64, q/k/v/o/m, skip 4)
  on the same 576 x 1024 features, then the LLM decoder over the T text positions with the per-sample side path
  active, and the LM head on the last position. The generator is included in VLoRA's time and FLOPs.

Random weights (nothing downloaded), batch 1, median of ``--iters`` after ``--warmup``. FLOPs are counted by
``torch.utils.flop_counter.FlopCounterMode`` (matmuls and attention; 2 per multiply-add) on a ``meta`` copy, so
they are exact for the real shapes on any machine.

GPU: ``qwen2-0.5b`` and ``llama-7b`` shapes (shapes of ``benchmarks/lmm_step.py``), bf16, sdpa:
    python benchmarks/vlora_prefill.py --device cuda
CPU (REDUCED, says so in its output): Qwen2-0.5B shape timed in fp32 with fewer repeats; the 7B shape gets FLOPs
only (time pending a GPU run):
    flock /tmp/llmvision_heavy.lock nice -n -5 python benchmarks/vlora_prefill.py --device cpu
FLOPs alone (any machine, seconds): ``python benchmarks/vlora_prefill.py --device cpu --flops-only``.
"""
import argparse
import json
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lmm_step import TEXT  # noqa: E402  (the two LLM shapes, one definition)

from llmvision.models.lmm.projector import LLaVAProjector  # noqa: E402
from llmvision.models.lmm.vlora import (  # noqa: E402
    PerceptualWeightsGenerator,
    attach_side_path,
    perceptual_weights_context,
    target_sizes,
)

NUM_VIS, VIS_DIM = 576, 1024
GENERATOR = dict(dim=512, depth=8, num_heads=16, rank=64, alpha=64, weight_types='qkvom', skip=4)


def build(name: str, device, dtype):
    """(LLM, projector, generator) of the ``name`` shape with random weights on ``device``."""
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config
    kind, text = TEXT[name]
    config = (Qwen2Config if kind == 'qwen2' else LlamaConfig)(**text)
    config._attn_implementation = 'sdpa'
    with torch.device(device):
        llm = AutoModelForCausalLM.from_config(config, dtype=dtype).eval()
        projector = LLaVAProjector(VIS_DIM, config.hidden_size).to(dtype)
        ins, outs = target_sizes(llm, 0, GENERATOR['weight_types'])
        gen = PerceptualWeightsGenerator(visual_dim=VIS_DIM, num_positions=NUM_VIS,
                                         num_llm_layers=config.num_hidden_layers, in_features=ins, out_features=outs,
                                         **GENERATOR).to(dtype)
    if device != 'meta':
        with torch.no_grad():
            for b in gen.lora_B.values():
                b.normal_(std=0.02)
    for module in (llm, projector, gen):
        module.requires_grad_(False)
    attach_side_path(llm, gen.layer_ids, gen.weight_types)
    return llm, projector, gen


@torch.no_grad()
def llava_prefill(llm, projector, feats, text_embeds):
    vis = projector(feats)
    out = llm.model(inputs_embeds=torch.cat([vis, text_embeds], 1), use_cache=True)
    return llm.lm_head(out.last_hidden_state[:, -1:])


@torch.no_grad()
def vlora_prefill(llm, gen, feats, text_embeds):
    with perceptual_weights_context(gen(feats)):
        out = llm.model(inputs_embeds=text_embeds, use_cache=True)
    return llm.lm_head(out.last_hidden_state[:, -1:])


def inputs(llm, gen, n_text, device, dtype):
    feats = torch.randn(1, NUM_VIS, VIS_DIM, device=device, dtype=dtype)
    text = torch.randn(1, n_text, llm.config.hidden_size, device=device, dtype=dtype) * 0.02
    return feats, text


def flops(fn, *args) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        fn(*args)
    return counter.get_total_flops()


def timed(fn, args, device, warmup, iters) -> float:
    """Median seconds of ``fn(*args)``."""
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    for _ in range(warmup):
        fn(*args)
    sync()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn(*args)
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu', choices=['cuda', 'cpu'])
    parser.add_argument('--models', nargs='+', default=['qwen2-0.5b', 'llama-7b'], choices=sorted(TEXT))
    parser.add_argument('--text-tokens', nargs='+', type=int, default=[32, 128, 512])
    parser.add_argument('--iters', type=int, default=None, help='timed repeats (GPU 20, CPU 1)')
    parser.add_argument('--warmup', type=int, default=None, help='untimed repeats (GPU 5, CPU 1)')
    parser.add_argument('--flops-only', action='store_true', help='count FLOPs (meta device, seconds), time nothing')
    parser.add_argument('--out', default=None, help='also write the rows as json here')
    args = parser.parse_args()
    gpu = args.device == 'cuda'
    iters = args.iters or (20 if gpu else 1)
    warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    dtype = torch.bfloat16 if gpu else torch.float32
    mode = ('GPU (%s), bf16' % torch.cuda.get_device_name()) if gpu else \
        'CPU REDUCED: fp32, %d timed repeat(s), 7B shape FLOPs only (time needs a GPU)' % iters
    if args.flops_only:
        mode = 'FLOPs only (meta device), nothing timed'
    print(f'# VLoRA vs LLaVA prefill per sample, {mode}; {torch.get_num_threads()} threads')
    rows = []
    for name in args.models:
        meta = build(name, 'meta', dtype)
        time_it = not args.flops_only and (gpu or name == 'qwen2-0.5b')
        real = build(name, args.device, dtype) if time_it else None
        for n_text in args.text_tokens:
            row = dict(model=name, text_tokens=n_text)
            m_llm, m_proj, m_gen = meta
            feats, text = inputs(m_llm, m_gen, n_text, 'meta', dtype)
            row['llava_gflops'] = flops(llava_prefill, m_llm, m_proj, feats, text) / 1e9
            row['vlora_gflops'] = flops(vlora_prefill, m_llm, m_gen, feats, text) / 1e9
            row['generator_gflops'] = flops(m_gen, feats) / 1e9
            if time_it:
                llm, proj, gen = real
                feats, text = inputs(llm, gen, n_text, args.device, dtype)
                with torch.autocast('cuda', dtype) if gpu else nullcontext():
                    row['llava_ms'] = 1e3 * timed(llava_prefill, (llm, proj, feats, text), args.device, warmup, iters)
                    row['vlora_ms'] = 1e3 * timed(vlora_prefill, (llm, gen, feats, text), args.device, warmup, iters)
                    row['generator_ms'] = 1e3 * timed(torch.no_grad()(gen), (feats,), args.device, warmup, iters)
            rows.append(row)
            print(json.dumps(row), flush=True)
        del meta, real
        if gpu:
            torch.cuda.empty_cache()
    print('\n| LLM shape | text tokens | LLaVA ms | VLoRA ms (generator) | time ratio | LLaVA GFLOPs | '
          'VLoRA GFLOPs (generator) | FLOPs ratio |')
    print('|---|---|---|---|---|---|---|---|')
    for r in rows:
        untimed = 'not timed' if args.flops_only else 'pending (GPU)'
        t_ratio = f"{r['vlora_ms'] / r['llava_ms']:.3f}" if 'llava_ms' in r else untimed
        llava_ms = f"{r['llava_ms']:.1f}" if 'llava_ms' in r else '-'
        vlora_ms = f"{r['vlora_ms']:.1f} ({r['generator_ms']:.1f})" if 'vlora_ms' in r else '-'
        print(f"| {r['model']} | {r['text_tokens']} | {llava_ms} | {vlora_ms} | {t_ratio} | {r['llava_gflops']:.1f} | "
              f"{r['vlora_gflops']:.1f} ({r['generator_gflops']:.1f}) | {r['vlora_gflops'] / r['llava_gflops']:.3f} |")
    if args.out:
        Path(args.out).write_text(json.dumps(dict(mode=mode, rows=rows), indent=1))


if __name__ == '__main__':
    main()
