"""LLaVA training step, prefill and decode: ours (LLaVAModel) vs transformers' LlavaForConditionalGeneration.

Both models get the same random weights (the peer's state dict converted with
``llmvision.checkpoint.llava_hf.convert_llava_hf``), the same shapes and the same step: forward + backward + AdamW
on the projector and the LLM (vision tower frozen, as LLaVA fine-tuning), then prefill (one forward over the
prompt with a KV cache) and greedy decoding of ``--new-tokens`` tokens. Each model is measured alone on the
device (the other one is not resident), median of ``--iters`` after ``--warmup``.

GPU (real size, random weights, nothing downloaded), bf16 parameters, sdpa attention:
  * ``qwen2-0.5b``: CLIP ViT-L/14-336 (576 patch tokens, layer -2) + Qwen2-0.5B (vocab 151,936, tied);
  * ``llama-7b``: CLIP ViT-L/14-336 + LLaMA-7B (vocab 32,000).
  Sequence = 8 prompt tokens + one image (576 tokens) + text up to ``--seq-len`` (2048: LLaVA's max length, where
  the full ``[B, T, vocab]`` logits of the peer's loss are its memory peak).
CPU: a clearly labelled REDUCED mode (tiny CLIP + 2-layer Qwen2-shaped LLM with a 32k vocabulary, fp32,
short sequences, our loss chunked every 256 rows as the default 1024 would be at real size) that only shows
the comparison machinery works; peak memory is not measured there, the
activation memory kept for the backward ("saved activ.", autograd's saved tensors, parameters excluded) is.

    python benchmarks/lmm_step.py [--models qwen2-0.5b llama-7b] [--batch 4 1] [--seq-len 2048] \
        [--iters 10] [--warmup 3] [--new-tokens 64] [--grad-ckpt] [--cpu]
"""
import argparse
import gc
import statistics
import time

import torch

CLIP_L_336 = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                  image_size=336, patch_size=14, projection_dim=768)
TEXT = {
    'qwen2-0.5b': ('qwen2', dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                 num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True)),
    'llama-7b': ('llama', dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                               num_attention_heads=32, num_key_value_heads=32, tie_word_embeddings=False)),
}
CPU_VISION = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  image_size=56, patch_size=14, projection_dim=32)
CPU_TEXT = {'tiny-qwen2': ('qwen2', dict(vocab_size=32000, hidden_size=128, intermediate_size=256,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         tie_word_embeddings=True))}
PROMPT = 8


def llava_config(kind: str, text: dict, vision: dict):
    """transformers ``LlavaConfig``: CLIP vision + Qwen2 / LLaMA text; the image token is the last vocab id."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, Qwen2Config
    text_cfg = (Qwen2Config if kind == 'qwen2' else LlamaConfig)(**text)
    return LlavaConfig(vision_config=CLIPVisionConfig(**vision), text_config=text_cfg,
                       image_token_index=text['vocab_size'] - 1, vision_feature_layer=-2,
                       vision_feature_select_strategy='default', projector_hidden_act='gelu',
                       tie_word_embeddings=text['tie_word_embeddings'])


def make_inputs(cfg, batch: int, seq_len: int, device):
    """Token ids with the image expanded (peer) and with ONE ``IMAGE_TOKEN_INDEX`` (ours), labels on the text."""
    from llmvision.structures.lmm_sample import IGNORE_INDEX, IMAGE_TOKEN_INDEX, LMMDataSample
    vocab, img_id = cfg.text_config.vocab_size, cfg.image_token_index
    n_vis = (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2
    n_text = seq_len - PROMPT - n_vis
    if n_text < 2:
        raise ValueError(f'--seq-len {seq_len} leaves no text after {PROMPT} prompt + {n_vis} visual tokens')
    g = torch.Generator().manual_seed(0)
    prompt = torch.randint(0, vocab - 1, (batch, PROMPT), generator=g)
    text = torch.randint(0, vocab - 1, (batch, n_text), generator=g)
    pixels = torch.randn(batch, 3, cfg.vision_config.image_size, cfg.vision_config.image_size, generator=g)
    peer_ids = torch.cat([prompt, torch.full((batch, n_vis), img_id), text], 1)
    peer_labels = torch.cat([torch.full((batch, PROMPT + n_vis), IGNORE_INDEX), text], 1)
    samples = []
    for i in range(batch):
        ids = torch.cat([prompt[i], torch.tensor([IMAGE_TOKEN_INDEX]), text[i]])
        labels = torch.cat([torch.full((PROMPT + 1,), IGNORE_INDEX), text[i]])
        samples.append(LMMDataSample(input_ids=ids, labels=labels))
    prompt_samples = [LMMDataSample(input_ids=s.input_ids, labels=torch.full_like(s.labels, IGNORE_INDEX))
                      for s in samples]
    return dict(peer=dict(input_ids=peer_ids.to(device), labels=peer_labels.to(device),
                          attention_mask=torch.ones_like(peer_ids).to(device), pixel_values=pixels.to(device)),
                ours=dict(pixels=pixels.to(device), samples=samples, prompt_samples=prompt_samples),
                tokens=batch * seq_len)


def build_peer(cfg, device, dtype, grad_ckpt: bool):
    from transformers import LlavaForConditionalGeneration
    torch.manual_seed(0)
    with torch.device(device):
        peer = LlavaForConditionalGeneration(cfg).to(dtype)
    peer.model.vision_tower.requires_grad_(False)
    if grad_ckpt:
        peer.model.language_model.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={'use_reentrant': False})
    return peer


def build_ours(cfg, peer_state: dict, device, dtype, grad_ckpt: bool, loss_chunk: int = None):
    from transformers import AutoModelForCausalLM, CLIPVisionModel

    from llmvision.checkpoint.llava_hf import convert_llava_hf
    from llmvision.models.lmm.llava import LLaVAModel
    with torch.device(device):
        model = LLaVAModel(vision_encoder=CLIPVisionModel(cfg.vision_config),
                           llm=AutoModelForCausalLM.from_config(cfg.text_config), projector='mlp2x_gelu',
                           vision_feature_layer=-2, freeze_vision=True, gradient_checkpointing=grad_ckpt,
                           **({} if loss_chunk is None else dict(loss_chunk_size=loss_chunk)))
    model = model.to(dtype)
    converted, report = convert_llava_hf(peer_state)
    assert report.ok, report.summary()
    missing, unexpected = model.load_state_dict(converted, strict=False)
    assert not unexpected and not [k for k in missing if 'lm_head' not in k], (missing, unexpected)
    return model


def timed(fn, device, iters: int, warmup: int):
    """Median seconds of ``fn()`` and its last result."""
    times, out = [], None
    for i in range(warmup + iters):
        if device == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if device == 'cuda':
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times), out


def peak_gib(device):
    return torch.cuda.max_memory_allocated() / 2**30 if device == 'cuda' else None


def reset_peak(device):
    gc.collect()
    if device == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def saved_activation_mib(loss_fn, model) -> float:
    """MiB of the tensors autograd keeps for the backward of ``loss_fn()`` (parameters excluded): the
    activation memory of a training step, measured the same way on CPU and GPU."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_fn()
    del loss
    return sum(saved.values()) / 2**20


def measure(name, model, data, device, args):
    """Seconds, peak GiB (GPU), saved-activation MiB and the first loss of one model (``name``: 'ours' | 'peer')."""
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1e-5, foreach=True)
    model.train()  # ours keeps its frozen tower in eval mode; the peer's CLIP has no dropout

    def loss_fn():
        if name == 'ours':
            return model(data['ours']['pixels'], data['ours']['samples'], mode='loss')['loss']
        return model(**data['peer']).loss

    def train_step():
        loss = loss_fn()
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        return loss.detach().float().item()

    saved_mib = saved_activation_mib(loss_fn, model)
    reset_peak(device)
    # the first step's loss (weights untouched) is compared between the two models
    first_loss = train_step()
    train_s, _ = timed(train_step, device, args.iters, args.warmup)
    train_mem = peak_gib(device)
    optim.state.clear()  # free the AdamW moments before the inference measurements
    model.eval()
    # prefill: the prompt (prompt + image + text), KV cache on, logits of the last position
    peer_prompt = {k: v for k, v in data['peer'].items() if k != 'labels'}

    @torch.no_grad()
    def prefill():
        if name == 'ours':
            batch = model.prepare_batch(data['ours']['pixels'], data['ours']['prompt_samples'], padding_side='left')
            out = model.run_llm(batch, use_cache=True)
            return model.lm_head(out.hidden_states[:, -1])
        return model(**peer_prompt, use_cache=True, logits_to_keep=1).logits

    reset_peak(device)
    prefill_s, _ = timed(prefill, device, args.iters, args.warmup)
    prefill_mem = peak_gib(device)

    @torch.no_grad()
    def generate(n):
        if name == 'ours':
            batch = model.prepare_batch(data['ours']['pixels'], data['ours']['prompt_samples'], padding_side='left')
            return model.generate_ids(batch, max_new_tokens=n, eos_token_ids=[])
        return model.generate(**peer_prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False, num_beams=1)

    # decode time per token = (generate N tokens - generate 1 token) / (N - 1): the prefill cancels out
    gen_iters = max(1, args.iters // 2)
    one_s, _ = timed(lambda: generate(1), device, gen_iters, 1)
    all_s, _ = timed(lambda: generate(args.new_tokens), device, gen_iters, 1)
    return dict(first_loss=first_loss, train_s=train_s, train_mem=train_mem, saved_mib=saved_mib, prefill_s=prefill_s,
                prefill_mem=prefill_mem, decode_s=max(all_s - one_s, 1e-9) / (args.new_tokens - 1))


def run_one(label, kind, text, vision, batch, args, device, dtype):
    cfg = llava_config(kind, text, vision)
    data = make_inputs(cfg, batch, args.seq_len, device)
    peer = build_peer(cfg, device, dtype, args.grad_ckpt)
    peer_state = {k: v.detach().to('cpu', copy=True) for k, v in peer.state_dict().items()}
    res = {'peer': measure('peer', peer, data, device, args)}
    del peer
    reset_peak(device)
    ours = build_ours(cfg, peer_state, device, dtype, args.grad_ckpt, args.loss_chunk)
    del peer_state
    res['ours'] = measure('ours', ours, data, device, args)
    del ours
    reset_peak(device)
    return cfg, data['tokens'], res


def print_table(label, batch, tokens, res, args):
    o, p = res['ours'], res['peer']
    rows = [('train tokens/s', tokens / o['train_s'], tokens / p['train_s'], '>= 1.3x'),
            ('train step s', o['train_s'], p['train_s'], ''),
            ('train peak GiB', o['train_mem'], p['train_mem'], '<= 0.6x'),
            ('saved activ. MiB', o['saved_mib'], p['saved_mib'], ''),
            ('prefill tokens/s', tokens / o['prefill_s'], tokens / p['prefill_s'], ''),
            ('prefill peak GiB', o['prefill_mem'], p['prefill_mem'], ''),
            ('decode tokens/s', batch / o['decode_s'], batch / p['decode_s'], ''),
            ('first-step loss', o['first_loss'], p['first_loss'], 'equal')]
    chunk = args.loss_chunk or 'default'
    print(f'\n{label}: batch {batch} x {args.seq_len} tokens (1 image), {args.new_tokens} new tokens, '
          f'grad ckpt {"on" if args.grad_ckpt else "off"}, our loss chunk {chunk}')
    print(f'| {"metric":<18} | {"ours":>10} | {"transformers":>12} | {"ours/peer":>9} | target |')
    print(f'|{"-" * 20}|{"-" * 12}|{"-" * 14}|{"-" * 11}|--------|')
    for name, ours, peer, target in rows:
        if ours is None or peer is None:
            print(f'| {name:<18} | {"n/a":>10} | {"n/a":>12} | {"n/a":>9} | {target:<6} |')
            continue
        print(f'| {name:<18} | {ours:>10.4g} | {peer:>12.4g} | {ours / peer:>8.3f}x | {target:<6} |')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--models', nargs='+', default=None, help=f'GPU: any of {sorted(TEXT)}')
    parser.add_argument('--batch', nargs='+', type=int, default=None, help='batch per model (default 4 / 1)')
    parser.add_argument('--seq-len', type=int, default=None, help='tokens per sample after image expansion')
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--new-tokens', type=int, default=64, help='decode length (>= 2)')
    parser.add_argument('--grad-ckpt', action='store_true', help='gradient checkpointing in both LLMs')
    parser.add_argument('--loss-chunk', type=int, default=None,
                        help="rows per chunk of our loss (default: the model's 1024; CPU mode: 256)")
    parser.add_argument('--cpu', action='store_true', help='force the reduced CPU mode')
    args = parser.parse_args(argv)
    if args.new_tokens < 2:
        parser.error('--new-tokens must be >= 2 (decode speed = generate N - generate 1)')
    import llmvision  # noqa: F401
    gpu = torch.cuda.is_available() and not args.cpu
    device, dtype = ('cuda', torch.bfloat16) if gpu else ('cpu', torch.float32)
    if gpu:
        models = args.models or ['qwen2-0.5b', 'llama-7b']
        unknown = set(models) - set(TEXT)
        if unknown:
            parser.error(f'unknown --models {sorted(unknown)}; choose from {sorted(TEXT)}')
        specs = [(m, *TEXT[m], CLIP_L_336) for m in models]
        batches = args.batch or [4 if m == 'qwen2-0.5b' else 1 for m in models]
        args.seq_len = args.seq_len or 2048
        print(f'device: {torch.cuda.get_device_name()}, torch {torch.__version__}, bf16 parameters, sdpa')
    else:
        torch.set_num_threads(2)
        specs = [(m, *CPU_TEXT[m], CPU_VISION) for m in CPU_TEXT]
        batches = args.batch or [2]
        args.seq_len = args.seq_len or 512
        args.iters, args.warmup, args.new_tokens = min(args.iters, 3), min(args.warmup, 1), min(args.new_tokens, 16)
        args.loss_chunk = args.loss_chunk or 256  # ~1k supervised rows here: below 1024 nothing is chunked
        print('REDUCED CPU MODE: tiny CLIP (56 px, 16 patch tokens) + 2-layer 128-wide Qwen2-shaped LLM with a '
              '32k vocabulary, fp32, 2 threads; not the real-size numbers (those need a GPU); peak memory n/a (saved '
              'activations are measured).')
    if len(batches) != len(specs):
        parser.error('give one --batch per model')
    import transformers
    print(f'transformers {transformers.__version__}; median of {args.iters} after {args.warmup} warm-up steps')
    for (label, kind, text, vision), batch in zip(specs, batches):
        _, tokens, res = run_one(label, kind, text, vision, batch, args, device, dtype)
        print_table(label, batch, tokens, res, args)


if __name__ == '__main__':
    main()
