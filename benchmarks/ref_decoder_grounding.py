"""Can the REF-VLM box decoder find a queried object in its visual memory? (diagnostic for issue 15)

A toy grounding task with no LLM and no image: each sample's memory is a ``G x G`` grid of noise features in which
``K`` fixed prototype vectors sit at random distinct cells; the query is one of ``K`` fixed random vectors (the
``<REF>`` state naming a prototype); the target box is that prototype's cell. Trains, for the same steps and
batches,

- ``RefBoxDecoder`` as REF-VLM has it (``anchor='none'``: the head regresses the box), and with
  ``anchor='pointer'`` (the box is regressed from the memory cell a pointer attention picks, the tiny recipe);
- a single pointer attention (query . key softmax over the cells, box centre = the attention-weighted cell
  centres), the smallest model that can solve it;

and prints the mean centre error (0.25 = predicting the grid centre; 0 = found): the decoders' on 8 fresh batches
after training (eval mode), the pointer's over its last 50 training steps:

    OMP_NUM_THREADS=1 python benchmarks/ref_decoder_grounding.py [--steps 1000] [--lr 2e-3]

Measured (benchmarks/RESULTS.md, REF-VLM section): at the tiny config's lr 2e-3 the plain decoder never leaves the
grid centre (adding positions to the values, tried in c065e90, does not change that); at 3e-4 it learns (0.116
after 1000 steps, 0.056 after 2000); the pointer solves it in 100 steps.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402

from llmvision.models.lmm.ref_vlm.box_decoder import RefBoxDecoder  # noqa: E402
from llmvision.models.lmm.ref_vlm.pointer_anchor import cell_centres  # noqa: E402
from llmvision.models.lmm.ref_vlm.ref_queries import pad_ref_queries  # noqa: E402

G, C, K, LLM_DIM = 6, 64, 4, 128
DECODER = dict(embed_dims=64, num_layers=3, num_heads=4, ffn_dim=128, num_queries=16)  # as the tiny config


def make_task(g: int = G, c: int = C, k: int = K, llm_dim: int = LLM_DIM, seed: int = 0):
    """``batch(b)`` -> ``(names [b, llm_dim], maps [[b, c, g, g]], target centres [b, 2])`` and the cell
    centres ``[g * g, 2]``."""
    gen = torch.Generator().manual_seed(seed)
    protos, names = torch.randn(k, c, generator=gen) * 2, torch.randn(k, llm_dim, generator=gen)
    centres = cell_centres([(g, g)])

    def batch(b: int):
        which = torch.randint(0, k, (b,), generator=gen)
        cells = torch.stack([torch.randperm(g * g, generator=gen)[:k] for _ in range(b)])
        mem = torch.randn(b, g * g, c, generator=gen) * 0.5
        mem[torch.arange(b)[:, None], cells] += protos
        target = centres[cells[torch.arange(b), which]]
        return names[which], [mem.transpose(1, 2).reshape(b, c, g, g)], target
    return batch, centres


def train_decoder(steps: int, batch_size: int, anchor: str, lr: float = 2e-3, g: int = G, c: int = C, k: int = K,
                  llm_dim: int = LLM_DIM, decoder: dict = DECODER, eval_batches: int = 8) -> float:
    """Train a ``RefBoxDecoder(anchor=anchor, **decoder)`` on the task; mean centre error on ``eval_batches``
    fresh batches afterwards, in eval mode (the pointer's training pick sees the target)."""
    batch, _ = make_task(g, c, k, llm_dim)
    torch.manual_seed(0)
    dec = RefBoxDecoder(llm_dim=llm_dim, in_channels=[c], anchor=anchor, **decoder)
    opt = torch.optim.AdamW(dec.parameters(), lr=lr)

    def queries(names, target):
        boxes = torch.cat([target, torch.full_like(target, 1 / g)], -1)
        return pad_ref_queries(list(names[:, None]), [[0]] * len(names), list(range(len(names))),
                               boxes=list(boxes[:, None]))

    for _ in range(steps):
        names, maps, target = batch(batch_size)
        q = queries(names, target)
        loss = dec.loss(dec(q, maps), q)['box']
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dec.parameters(), 1.0)
        opt.step()
    dec.eval()
    errs = []
    with torch.no_grad():
        for _ in range(eval_batches):
            names, maps, target = batch(batch_size)
            out = dec(queries(names, target), maps)
            errs.append((out['boxes'][-1][:, 0, :2] - target).abs().mean().item())
    return sum(errs) / len(errs)


def train_pointer(steps: int, batch_size: int) -> float:
    batch, centres = make_task()
    torch.manual_seed(0)
    wq, wk = torch.nn.Linear(LLM_DIM, 64), torch.nn.Linear(C, 64)
    opt = torch.optim.AdamW(list(wq.parameters()) + list(wk.parameters()), lr=2e-3)
    errs = []
    for step in range(steps):
        names, maps, target = batch(batch_size)
        mem = maps[0].flatten(2).transpose(1, 2)  # [b, G * G, C]
        attn = (wq(names)[:, None] * wk(mem)).sum(-1).softmax(-1)
        pred = (attn[..., None] * centres).sum(1)
        loss = (pred - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= steps - 50:
            errs.append(loss.item())
    return sum(errs) / len(errs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=1000)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--lr', type=float, default=2e-3, help='AdamW lr of the decoder (the tiny config: 2e-3)')
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = [(f"RefBoxDecoder (3 layers, d 64), anchor='none' (REF-VLM), lr {args.lr:g}",
             train_decoder(args.steps, args.batch_size, 'none', args.lr)),
            (f"RefBoxDecoder, anchor='pointer' (the tiny recipe), lr {args.lr:g}",
             train_decoder(args.steps, args.batch_size, 'pointer', args.lr)),
            ('one pointer attention (box centre = attention-weighted cell centres)',
             train_pointer(args.steps, args.batch_size))]
    print(f'| model ({args.steps} steps x {args.batch_size}) | mean centre error |')
    print('|---|---|')
    for name, err in rows:
        print(f'| {name} | {err:.3f} |')


if __name__ == '__main__':
    main()
