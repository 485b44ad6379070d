"""Does the tiny REC selector learn to choose boxes on the synthetic RefCOCO set? (issue 18)

Builds the :class:`RECSelector` of a config (default ``configs/llm_wrapper/llm_wrapper_tiny_synthetic.py``),
fine-tunes it with a short loop (the model's own ``loss``: answer + EOS tokens only; a fresh random candidate
order per sample and step, the answer index remapped), then prints the accuracy table of the eval splits
(val + testA + testB) and of a sample of the training expressions, next to detector-only and the oracle:

    python tools/make_synthetic_dataset.py --out data/synthetic --num-train 600 --num-val 200
    OMP_NUM_THREADS=1 python benchmarks/rec_selector_learning.py --subset c

Subsets of the task (train and eval records alike; ``needs_reasoning`` = another object shares the target's
category):

- ``a``: label matching only: the target's category is unique in the image.
- ``b``: the target's category occurs exactly twice and the expression is positional (left / right /
  upper / lower / top / bottom / above / below; relations to another object included).
- ``c``: every expression.

``--stages a:1500,c:4500`` trains a curriculum (subsets joined by ``+`` train on their union); the default
is one stage on ``--subset`` for the config's ``max_iters``. ``--lora`` keeps the config's base frozen and
trains a LoRA adapter instead (r 32 unless ``--lora-r``). ``--json`` writes the rows.
"""
import argparse
import json
import math
import os
import os.path as osp
import random
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402

import llmvision  # noqa: E402,F401  (mmengine compatibility patches)
from llmvision.models.selectors.compact_serializer import query_position_words  # noqa: E402

POSITION_WORDS = ('left', 'right', 'upper', 'lower', 'top', 'bottom', 'above', 'below')
EVAL_SPLITS = ('val', 'testA', 'testB')


def in_subset(rec: dict, subset: str) -> bool:
    """Whether a refer record belongs to subset ``a``, ``b`` or ``c`` (see the module docstring)."""
    if subset == 'c':
        return True
    if subset == 'a':
        return not rec['needs_reasoning']
    if subset == 'b':
        same = sum(a['category'] == rec['category'] for a in rec['image_anns'])
        words = rec['expression'].split()
        return same == 2 and any(w in words or w + 'most' in words for w in POSITION_WORDS)
    raise ValueError(f"subset must be 'a', 'b' or 'c', got {subset!r}")


def in_any(rec: dict, subsets: str) -> bool:
    return any(in_subset(rec, s) for s in subsets.split('+'))


def parse_stages(text: str):
    """``'a@2:1000,a:1500,c:4500'`` -> ``[('a', 1000, 2), ('a', 1500, None), ('c', 4500, None)]``.

    ``@K``: at most K candidates per training prompt in that stage (the target + K-1 others drawn per step).
    """
    stages = []
    for part in text.split(','):
        name, steps = part.split(':')
        name, _, cap = name.partition('@')
        for s in name.split('+'):
            in_subset({'needs_reasoning': False, 'category': '', 'image_anns': [], 'expression': ''}, s)
        stages.append((name, int(steps), int(cap) if cap else None))
    return stages


def build(args):
    from mmengine.config import Config

    from llmvision.registry import MODELS
    cfg = Config.fromfile(args.config)
    if args.data:
        d = args.data.rstrip('/')
        cfg.model.tokenizer.pretrained_model_name_or_path = f'{d}/llm_tokenizer'
    llm_cfg = cfg.model.llm.config
    for key in ('hidden_size', 'num_hidden_layers'):
        if getattr(args, key) is not None:
            llm_cfg[key] = getattr(args, key)
    if args.hidden_size is not None:
        llm_cfg.intermediate_size = 4 * args.hidden_size
    if args.tie_embeddings is not None:
        llm_cfg.tie_word_embeddings = args.tie_embeddings
    cfg.model.llm.seed = args.seed
    if args.line_format:
        cfg.model.serializer.line_format = args.line_format
    if args.position_words is not None:
        cfg.model.serializer.position_words = args.position_words
    if args.echo is None:
        args.echo = bool(cfg.get('answer_echo', False))
    if args.echo:
        cfg.model.max_new_tokens = max(cfg.model.max_new_tokens, 12)
    if args.lora:
        from peft import LoraConfig
        cfg.model.lora = dict(type=LoraConfig, r=args.lora_r, lora_alpha=2 * args.lora_r, lora_dropout=0.0,
                              target_modules=['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj',
                                              'down_proj', 'lm_head'])
        cfg.model.freeze_llm = True
        llm_cfg.initializer_range = args.lora_init
    model = MODELS.build(cfg.model)
    if args.init:
        model.load_state_dict(torch.load(args.init, map_location='cpu')['state_dict'])
    return cfg, model


def load_samples(data_root: str, splits, subsets: str, serializer, train: bool, max_records=None):
    from llmvision.datasets.rec import SyntheticCandidateSource, build_selector_samples, load_refer_records
    records = []
    for split in splits:
        records += [r for r in load_refer_records(f'{data_root}/refcoco', 'refcoco', 'unc', split,
                                                  f'{data_root}/images') if in_any(r, subsets)]
    if max_records is not None:
        records = random.Random(0).sample(records, min(max_records, len(records)))
    source = SyntheticCandidateSource(num_distractors=(0, 1))
    samples, _ = build_selector_samples(records, [source], serializer, train=train, num_shuffles=0,
                                        max_tokens=None)
    return samples


def answer_text(index: str, label: str, echo: bool, query: str = None) -> str:
    """The training answer: the printed index, or with ``echo`` the chosen box's label first (``'red star=3'``).

    With a ``query`` (a serializer with ``position_words``) the echo starts with the expression's first canonical
    position word, if any (``'the leftmost red star'`` -> ``'left red star=3'``): the words before ``=`` are then
    the words of the chosen box line that the expression gives.
    """
    if not echo:
        return index
    words = query_position_words(query)[:1] if query is not None else []
    return f"{' '.join(words + label.lower().split())}={index}"


def _echo_query(serializer, sample: dict):
    return sample['expression'] if getattr(serializer, 'position_words', False) else None


def shuffled(sample: dict, serializer, rng: random.Random, echo: bool = False, max_candidates=None):
    """(prompt, answer) of ``sample`` with its candidates in a fresh random order (the target and at most
    ``max_candidates - 1`` others when given)."""
    block, j = sample['candidates'][0], sample['label'][1]
    order = list(range(len(block)))
    rng.shuffle(order)
    if max_candidates is not None and len(order) > max_candidates:
        keep = {j, *[i for i in order if i != j][:max_candidates - 1]}
        order = [i for i in order if i in keep]
    prompt = serializer.serialize([block.subset(order)], sample['expression'])
    return prompt.text, answer_text(str(prompt.global_index(0, order.index(j))), block.labels[j], echo,
                                    _echo_query(serializer, sample))


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up from 1% then cosine decay to 1% of ``base``."""
    if step < warmup:
        return base * (0.01 + 0.99 * step / warmup)
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))


def loss_with_lm(model, inputs, samples, lm_weight: float):
    """The selector's answer loss (``model.loss``) + ``lm_weight`` x next-token loss on every prompt token.

    The auxiliary term asks the model to predict the prompt itself, e.g. a box line's shape word after its colour
    word, which the query line often gives away: a dense signal for heads that look up earlier tokens.
    """
    if lm_weight <= 0:
        return model.loss(inputs, samples)['loss']
    from llmvision.models.llm.loss import causal_lm_loss
    ids, mask, labels = model._train_batch(inputs, samples)
    causal = model.causal_lm
    hidden = causal.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
    answer = causal_lm_loss(causal.get_output_embeddings(), hidden, labels)
    logits = causal.get_output_embeddings()(hidden[:, :-1])
    target = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    lm = torch.nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=-100)
    return answer + lm_weight * lm


def probe_accuracy(model, samples) -> float:
    """Accuracy (IoU > 0.5) of ``model.predict`` on ``samples`` (eval-style samples, original order)."""
    from llmvision.apis import llm_selector
    from llmvision.evaluation.rec_accuracy import rec_accuracy
    boxes = llm_selector(model, batch_size=64)(samples)
    return rec_accuracy(boxes, [s['gt_bbox'] for s in samples])['accuracy']


def train(model, stages, pools, args, log=print, probes=None):
    """The loop: AdamW on every trainable parameter, grad-norm clip 1.0, one schedule over all stages.

    ``probes``: ``{stage name: samples}`` scored (train accuracy) at every log line.
    """
    from llmvision.structures import DetDataSample
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    rng = random.Random(args.seed)
    total = sum(st[1] for st in stages)
    stop = min(total, args.max_steps) if getattr(args, 'max_steps', None) else total
    step, start, running = 0, time.perf_counter(), []
    model.train()
    for name, steps, cap in stages:
        pool = pools[name]
        for _ in range(min(steps, stop - step)):
            batch = [pool[rng.randrange(len(pool))] for _ in range(args.batch_size)]
            if args.no_shuffle:
                pairs = [(s['prompt'], answer_text(s['answer'], s['candidates'][0].labels[s['label'][1]], args.echo,
                                                   _echo_query(model.serializer, s))) for s in batch]
            else:
                pairs = [shuffled(s, model.serializer, rng, args.echo, cap) for s in batch]
            inputs = [p for p, _ in pairs]
            samples = [DetDataSample(metainfo=dict(answer=a)) for _, a in pairs]
            for g in opt.param_groups:
                g['lr'] = lr_at(step, total, args.lr, args.warmup)
            loss = loss_with_lm(model, inputs, samples, args.lm_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            running.append(loss.item())
            step += 1
            if step % args.log_interval == 0 or step == stop:
                acc = ''
                if probes and probes.get(name):
                    acc = f'train acc {100 * probe_accuracy(model, probes[name]):.1f} '
                    model.train()
                tag = name + (f'@{cap}' if cap else '')
                log(f'step {step}/{total} [{tag}] loss {sum(running) / len(running):.4f} {acc}'
                    f'lr {opt.param_groups[0]["lr"]:.2e} {time.perf_counter() - start:.0f} s')
                running = []
    return time.perf_counter() - start


def table_rows(model, samples):
    from llmvision.apis import llm_selector
    from llmvision.evaluation import accuracy_table, detector_only, oracle
    methods = {'detector-only (top-scored candidate)': detector_only}
    if model is not None:
        methods['fine-tuned tiny selector'] = llm_selector(model, batch_size=64)
    methods['oracle (best candidate)'] = oracle
    return accuracy_table(samples, methods)


def format_rows(title: str, rows) -> str:
    lines = [f'### {title}', '', '| method | accuracy | hits / total | needs reasoning |', '|---|---|---|---|']
    for r in rows:
        reason = f"{100 * r['reasoning_accuracy']:.1f} (n={r['reasoning_total']})" if r['reasoning_total'] else '-'
        lines.append(f"| {r['method']} | {100 * r['accuracy']:.1f} | {r['hits']} / {r['total']} | {reason} |")
    return '\n'.join(lines)


def run(args, log=print):
    """Train and evaluate; returns ``dict(eval=rows, train=rows, train_s, stages)``."""
    torch.manual_seed(args.seed)
    cfg, model = build(args)
    data_root = (args.data or cfg.data_root).rstrip('/')
    if args.stages:
        stages = parse_stages(args.stages)
    elif args.steps or 'schedules' not in cfg:
        stages = [(args.subset, args.steps or cfg.max_iters, None)]
    else:
        stages = parse_stages(cfg.schedules[args.subset])
    pools = {name: load_samples(data_root, ['train'], name, model.serializer, train=True,
                                max_records=args.max_train_records)
             for name in {st[0] for st in stages}}
    for name, pool in pools.items():
        log(f'stage pool {name}: {len(pool)} training expressions')
    args.lr = args.lr or cfg.lr
    args.warmup = cfg.warmup_iters if args.warmup is None else args.warmup
    args.batch_size = args.batch_size or cfg.batch_size
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log(f'trainable parameters: {n_train}; stages {stages}; lr {args.lr}, warm-up {args.warmup}, '
        f'batch {args.batch_size}')
    probes = {name: load_samples(data_root, ['train'], name, model.serializer, train=False, max_records=args.probe_size)
              for name in pools} if args.probe_size else None
    secs = train(model, stages, pools, args, log, probes) if sum(st[1] for st in stages) else 0.0
    eval_subset = args.eval_subset or stages[-1][0]
    val = load_samples(data_root, EVAL_SPLITS, eval_subset, model.serializer, train=False,
                       max_records=args.max_eval_records)
    train_probe = load_samples(data_root, ['train'], eval_subset, model.serializer, train=False,
                               max_records=args.train_probe)
    if args.save:
        os.makedirs(osp.dirname(osp.abspath(args.save)), exist_ok=True)
        torch.save(dict(state_dict=model.state_dict()), args.save)
    steps = sum(st[1] for st in stages)
    out = dict(stages=stages, steps=min(steps, args.max_steps or steps), train_s=secs, eval=table_rows(model, val),
               train=table_rows(model, train_probe),
               subset=eval_subset)
    if eval_subset == 'c':  # the same model on the val records of the two smaller subsets
        for sub in ('a', 'b'):
            out[f'eval_{sub}'] = table_rows(model, [s for s in val if in_subset(s, sub)])
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--config', default='configs/llm_wrapper/llm_wrapper_tiny_synthetic.py')
    p.add_argument('--data', default=None, help='synthetic set root (default: the config data_root)')
    p.add_argument('--subset', default='c', choices=['a', 'b', 'c'])
    p.add_argument('--stages', default=None, help="curriculum, e.g. 'a:1500,a+b:1500,c:3000'")
    p.add_argument('--steps', type=int, default=None, help='steps of the single stage (default: max_iters)')
    p.add_argument('--max-steps', type=int, default=None,
                   help='stop after this many steps of the schedule (the lr schedule still spans all stages)')
    p.add_argument('--eval-subset', default=None, help='default: the last stage')
    p.add_argument('--lr', type=float, default=None)
    p.add_argument('--warmup', type=int, default=None)
    p.add_argument('--batch-size', type=int, default=None)
    p.add_argument('--hidden-size', type=int, default=None)
    p.add_argument('--num-hidden-layers', type=int, default=None)
    p.add_argument('--tie-embeddings', action=argparse.BooleanOptionalAction, default=None,
                   help='tie the input and output embeddings (default: the config)')
    p.add_argument('--lora', action='store_true', help='LoRA on a frozen random base instead of full fine-tuning')
    p.add_argument('--lora-r', type=int, default=32)
    p.add_argument('--lora-init', type=float, default=0.2, help='initializer_range of the frozen base (LoRA)')
    p.add_argument('--line-format', default=None,
                   help="box line of the compact prompt, e.g. '{index} {label} {coords}'")
    p.add_argument('--position-words', action=argparse.BooleanOptionalAction, default=None,
                   help='write left/right, top/bottom, small/large before the label of boxes that share it '
                        '(CompactBoxPromptSerializer position_words; default: the config)')
    p.add_argument('--lm-weight', type=float, default=0.0,
                   help='weight of an auxiliary next-token loss on the prompt tokens (0: answer tokens only)')
    p.add_argument('--echo', action=argparse.BooleanOptionalAction, default=None,
                   help="answer 'label=index' (the chosen box's label, then its index) instead of the index "
                        "(default: the config's answer_echo)")
    p.add_argument('--no-shuffle', action='store_true', help='keep the candidate order of the data')
    p.add_argument('--max-train-records', type=int, default=None)
    p.add_argument('--max-eval-records', type=int, default=None)
    p.add_argument('--train-probe', type=int, default=500, help='training expressions scored for train accuracy')
    p.add_argument('--probe-size', type=int, default=128,
                   help='training expressions scored at every log line (0: none)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--log-interval', type=int, default=250)
    p.add_argument('--json', default=None, help='write the result rows here')
    p.add_argument('--save', default=None, help='save the trained model state dict here (.pth)')
    p.add_argument('--init', default=None, help='start from a state dict saved by --save (continued training)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    out = run(args)
    sub = out['subset']
    print(format_rows(f'subset {sub}: val + testA + testB ({out["eval"][0]["total"]} expressions), '
                      f'after {out["steps"]} steps in {out["train_s"]:.0f} s', out['eval']))
    print()
    print(format_rows(f'subset {sub}: training expressions (sample of {out["train"][0]["total"]})', out['train']))
    for part in ('a', 'b'):
        if f'eval_{part}' in out:
            print()
            print(format_rows(f'same model, val + testA + testB, subset {part}', out[f'eval_{part}']))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), **out), f, indent=1, default=str)
    return out


if __name__ == '__main__':
    main()
