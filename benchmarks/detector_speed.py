"""Speed of our GroundingDINO vs transformers' MMGroundingDinoForObjectDetection (the peer).

Both: Swin-T (embed 96, depths 2-2-6-2), BERT-base config, 900 queries, 6 + 6 layers, 4 levels,
random weights, 40 text tokens; input 800x1333 on GPU. Modes: inference batch 1 and 8 in fp32
and bf16 autocast; train step (AdamW) batch 4 bf16 autocast (ours includes denoising queries, the
peer's loss has none). Median of CUDA-event timings after warm-up; peak memory per mode.
On CPU a reduced setting runs (320x384 input, batches 1/2/1, few iterations) and says so.

    python benchmarks/detector_speed.py [--iters 20] [--warmup 5] [--modes infer,train]
"""
import argparse
import statistics
import tempfile
import time

import torch

WORDS = ['person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
         'traffic', 'light', 'fire', 'hydrant', 'stop', 'sign', 'parking', 'meter', 'bench', 'bird',
         'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe']


def build_ours(vocab, device):
    from llmvision.models.backbones import ChannelMapperNeck, SwinBackbone
    from llmvision.models.detectors import GroundingDINO
    from llmvision.models.language import BertTextEncoder
    model = GroundingDINO(
        backbone=SwinBackbone(drop_path_rate=0.0),
        neck=ChannelMapperNeck(in_channels=(192, 384, 768)),
        text_encoder=BertTextEncoder(bert_config=dict(), tokenizer=vocab),
        encoder=dict(fusion_dropout=0.0), num_queries=900,
        dn_cfg=dict(group_cfg=dict(dynamic=True, num_dn_queries=100)))
    return model.to(device)


def build_peer(device):
    from transformers import MMGroundingDinoConfig, MMGroundingDinoForObjectDetection
    return MMGroundingDinoForObjectDetection(MMGroundingDinoConfig()).to(device)


def caption_of(tokenizer, n_tokens=40):
    names = []
    for w in WORDS * 4:
        trial = ' . '.join(names + [w]) + ' .'
        if len(tokenizer(trial)['input_ids']) > n_tokens:
            break
        names.append(w)
    return names


def make_batch(batch, hw, names, device):
    from mmengine.structures import InstanceData

    from llmvision.structures import DetDataSample
    h, w = hw
    pixels = torch.randn(batch, 3, h, w, device=device)
    samples = []
    for _ in range(batch):
        s = DetDataSample(metainfo=dict(text=names, img_shape=hw, ori_shape=hw, batch_input_shape=hw))
        boxes = torch.tensor([[0.1 * w, 0.1 * h, 0.5 * w, 0.6 * h], [0.4 * w, 0.3 * h, 0.9 * w, 0.8 * h]])
        s.gt_instances = InstanceData(bboxes=boxes.to(device), labels=torch.tensor([0, 1], device=device))
        samples.append(s)
    return pixels, samples


def timed(fn, iters, warmup, device):
    for _ in range(warmup):
        fn()
    times = []
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    for _ in range(iters):
        if device.type == 'cuda':
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1000)
    peak = torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == 'cuda' else float('nan')
    return statistics.median(times), peak


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--modes', default='infer,train')
    args = parser.parse_args()
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    gpu = device.type == 'cuda'
    if gpu:
        hw, batches, train_batch, iters, warmup = (800, 1333), (1, 8), 4, args.iters, args.warmup
        print(f'device: {torch.cuda.get_device_name()}')
    else:
        hw, batches, train_batch, iters, warmup = (320, 384), (1, 2), 1, 2, 1
        print('device: CPU -- REDUCED setting (320x384 input, inference batch 1/2, train batch 1, '
              '2 iterations): numbers are only a smoke check, not comparable to the GPU table')
    from llmvision.models.language import write_bert_vocab
    vocab = write_bert_vocab(tempfile.mkdtemp(), WORDS)
    torch.manual_seed(0)
    ours = build_ours(vocab, device)
    peer = build_peer(device)
    tok = ours.text_encoder.tokenizer
    names = caption_of(tok)
    caption = ' . '.join(names) + ' .'
    print(f'prompt: {len(tok(caption)["input_ids"])} tokens, {len(names)} names')
    rows = []
    modes = args.modes.split(',')
    dtypes = [('fp32', None), ('bf16', torch.bfloat16)]
    if 'infer' in modes:
        ours.eval(), peer.eval()
        for batch in batches:
            pixels, samples = make_batch(batch, hw, names, device)
            t = ours.text_encoder.tokenize([caption] * batch, device)
            for dname, dtype in dtypes:
                def run_ours():
                    with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                        ours._forward_tensor(pixels, samples)

                def run_peer():
                    with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                        peer(pixel_values=pixels, input_ids=t['input_ids'],
                             attention_mask=t['attention_mask'], token_type_ids=t['token_type_ids'])
                rows.append(('inference', batch, dname, timed(run_ours, iters, warmup, device),
                             timed(run_peer, iters, warmup, device)))
    if 'train' in modes:
        ours.train(), peer.train()
        pixels, samples = make_batch(train_batch, hw, names, device)
        t = ours.text_encoder.tokenize([caption] * train_batch, device)
        labels = [dict(class_labels=torch.tensor([0, 1], device=device),
                       boxes=torch.tensor([[0.3, 0.35, 0.4, 0.5], [0.65, 0.55, 0.5, 0.5]], device=device))
                  for _ in range(train_batch)]
        opt_o = torch.optim.AdamW(ours.parameters(), lr=1e-5)
        opt_p = torch.optim.AdamW(peer.parameters(), lr=1e-5)

        def step_ours():
            with torch.autocast(device.type, dtype=torch.bfloat16):
                loss = sum(ours(pixels, samples, mode='loss').values())
            opt_o.zero_grad()
            loss.backward()
            opt_o.step()

        def step_peer():
            with torch.autocast(device.type, dtype=torch.bfloat16):
                loss = peer(pixel_values=pixels, input_ids=t['input_ids'], attention_mask=t['attention_mask'],
                            token_type_ids=t['token_type_ids'], labels=labels).loss
            opt_p.zero_grad()
            loss.backward()
            opt_p.step()
        res_o = timed(step_ours, iters, warmup, device)
        try:
            res_p = timed(step_peer, iters, warmup, device)
        except Exception as e:  # the peer's loss path may not support this setting
            print(f'peer train step failed: {type(e).__name__}: {e}')
            res_p = (float('nan'), float('nan'))
        rows.append(('train step (AdamW)', train_batch, 'bf16', res_o, res_p))
    print('\n| mode | batch | dtype | ours ms | peer ms | speed-up (peer/ours) | ours img/s | '
          'ours GiB | peer GiB |')
    print('|---|---|---|---|---|---|---|---|---|')
    for mode, batch, dname, (mo, go), (mp, gp) in rows:
        print(f'| {mode} | {batch} | {dname} | {mo:.1f} | {mp:.1f} | {mp / mo:.2f}x | '
              f'{1000 * batch / mo:.1f} | {go:.1f} | {gp:.1f} |')


if __name__ == '__main__':
    main()
