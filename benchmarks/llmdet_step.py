"""Training step time and peak memory: Grounding-DINO alone vs LLMDet (detector + LLM captioner).

GPU (real size): ``configs/llmdet/llmdet_swin_t.py`` model (Swin-T, BERT-base config, Qwen2-0.5B
config: hidden 896, 24 layers, 14 heads, 2 kv heads, intermediate 4864, vocab 151936; random
weights, nothing downloaded), batch 2, bf16 autocast (BF16OptimWrapper), images resized to
800x1333, the recipe's AdamW/paramwise/clip. The detector-only model is the same config with the
captioner removed (same freezing). Batches come from a synthetic grounding set built in a temp dir.
CPU: a clearly labelled REDUCED mode (``configs/llmdet/llmdet_tiny_synthetic.py``: tiny detector,
4-layer 64-wide Qwen2, small images) that only shows the ratio machinery works.

    python benchmarks/llmdet_step.py [--iters 10] [--warmup 3] [--cpu]
"""
import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
QWEN2_05B = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                 num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True)


def build_cfg(gpu: bool, data):
    from mmengine.config import Config
    from transformers import Qwen2Config

    from llmvision.engine.optim_wrappers import BF16OptimWrapper
    from llmvision.models.language import BertTextEncoder
    from llmvision.utils.hf_builder import causal_lm_from_config
    tiny = Config.fromfile(str(ROOT / 'configs/llmdet/llmdet_tiny_synthetic.py'))
    cfg = Config.fromfile(str(ROOT / 'configs/llmdet/llmdet_swin_t.py')) if gpu else tiny
    cfg.train_dataloader = copy.deepcopy(tiny.train_dataloader)  # synthetic grounding captions
    cfg.train_dataloader.dataset.data_root = f'{data.root}/'
    cfg.train_dataloader.batch_size = 2
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    resize = cfg.train_dataloader.dataset.pipeline[3]
    resize.scales, resize.max_long_side = ([800], 1333) if gpu else ([128, 144], 200)
    if gpu:
        cfg.model.text_encoder = dict(type=BertTextEncoder, bert_config=dict(),
                                      tokenizer=data.bert_tokenizer)
        cfg.model.captioner.llm = dict(type=causal_lm_from_config, seed=0,
                                       config=dict(type=Qwen2Config, **QWEN2_05B))
    else:
        cfg.model.text_encoder.tokenizer = data.bert_tokenizer
    cfg.model.captioner.tokenizer = data.llm_tokenizer
    cfg.optim_wrapper.type = BF16OptimWrapper
    cfg.optim_wrapper.pop('loss_scale', None)
    cfg.optim_wrapper.pop('dtype', None)
    return cfg


def time_model(model_cfg, cfg, batches, device, iters, warmup):
    """Median seconds per train step and peak memory (GiB on GPU, None on CPU)."""
    from mmengine.optim import build_optim_wrapper

    from llmvision.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).to(device)
    model.train()
    optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(warmup + iters):
        data = batches[i % len(batches)]
        start = time.perf_counter()
        log = model.train_step(data, optim)
        if device == 'cuda':
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    assert all(torch.isfinite(v).all() for v in log.values()), log
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == 'cuda' else None
    del model, optim
    return statistics.median(times), peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--cpu', action='store_true', help='force the reduced CPU mode')
    args = parser.parse_args(argv)
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    import llmvision  # noqa: F401
    from llmvision.datasets.synthetic import make_synthetic_dataset
    init_default_scope('llmvision')
    gpu = torch.cuda.is_available() and not args.cpu
    device = 'cuda' if gpu else 'cpu'
    if not gpu:
        torch.set_num_threads(2)
        args.iters, args.warmup = min(args.iters, 3), min(args.warmup, 1)
        print('REDUCED CPU MODE: tiny detector + 4-layer Qwen2, small images; not the real-size '
              'numbers (those need a GPU).')
    with tempfile.TemporaryDirectory() as tmp:
        data = make_synthetic_dataset(tmp, seed=0, num_train=8, num_val=2)
        cfg = build_cfg(gpu, data)
        loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
        batches = [b for b, _ in zip(loader, range(args.warmup + args.iters))]
        shape = tuple(batches[0]['inputs'][0].shape)
        det_cfg = copy.deepcopy(cfg.model)
        det_cfg.type = 'GroundingDINO'
        det_cfg.pop('captioner')
        rows = []
        for name, model_cfg in (('detector', det_cfg), ('detector+captioner', cfg.model)):
            sec, peak = time_model(model_cfg, cfg, batches, device, args.iters, args.warmup)
            rows.append((name, sec, peak))
    print(f'device: {torch.cuda.get_device_name() if gpu else "cpu"}; batch 2, bf16 autocast, '
          f'first image {shape}; median of {args.iters} steps after {args.warmup} warm-up')
    print(f'{"model":<20} {"step s":>8} {"peak GiB":>9} {"time x":>7} {"mem x":>6}')
    base_t, base_m = rows[0][1], rows[0][2]
    for name, sec, peak in rows:
        mem = f'{peak:9.2f}' if peak is not None else f'{"n/a":>9}'
        mem_x = f'{peak / base_m:6.2f}' if peak is not None else f'{"n/a":>6}'
        print(f'{name:<20} {sec:8.3f} {mem} {sec / base_t:7.2f} {mem_x}')


if __name__ == '__main__':
    main()
