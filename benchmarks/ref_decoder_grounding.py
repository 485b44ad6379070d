"""Can the REF-VLM box decoder find a queried object in its visual memory? (diagnostic for issue 15)

A toy grounding task with no LLM and no image: each sample's memory is a ``G x G`` grid of noise features in which
``K`` fixed prototype vectors sit at random distinct cells; the query is one of ``K`` fixed random vectors (the
``<REF>`` state naming a prototype); the target box is that prototype's cell. Trains, for the same steps and
batches,

- ``RefBoxDecoder`` (DETR-style, positions on queries and keys only), and the same with positions added to the
  values too (``--pos-in-values`` row);
- a single pointer attention (query . key softmax over the cells, box centre = the attention-weighted cell
  centres), the smallest model that can solve it;

and prints the mean centre error (0.25 = predicting the grid centre; 0 = found):

    OMP_NUM_THREADS=1 python benchmarks/ref_decoder_grounding.py [--steps 1000] [--lr 2e-3]

Measured (benchmarks/RESULTS.md, REF-VLM section): at the tiny config's lr 2e-3 the decoder never leaves the grid
centre; at 3e-4 it learns (0.116 after 1000 steps, 0.056 after 2000); the pointer solves it in 100 steps.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402

import llmvision.models.lmm.ref_vlm.detr_decoder as detr  # noqa: E402
from llmvision.models.lmm.ref_vlm.box_decoder import RefBoxDecoder  # noqa: E402
from llmvision.models.lmm.ref_vlm.ref_queries import pad_ref_queries  # noqa: E402

G, C, K, LLM_DIM = 6, 64, 4, 128


def make_task(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    protos, names = torch.randn(K, C, generator=g) * 2, torch.randn(K, LLM_DIM, generator=g)
    ys, xs = torch.meshgrid(torch.arange(G), torch.arange(G), indexing='ij')
    centres = torch.stack([(xs.flatten() + .5) / G, (ys.flatten() + .5) / G], -1)

    def batch(b: int):
        k = torch.randint(0, K, (b,), generator=g)
        cells = torch.stack([torch.randperm(G * G, generator=g)[:K] for _ in range(b)])
        mem = torch.randn(b, G * G, C, generator=g) * 0.5
        mem[torch.arange(b)[:, None], cells] += protos
        target = centres[cells[torch.arange(b), k]]
        return names[k], mem, target
    return batch, centres


def train_decoder(steps: int, batch_size: int, pos_in_values: bool, lr: float = 2e-3) -> float:
    batch, _ = make_task()
    torch.manual_seed(0)
    dec = RefBoxDecoder(llm_dim=LLM_DIM, in_channels=[C], embed_dims=64, num_layers=3, num_heads=4, ffn_dim=128,
                        num_queries=16)
    opt = torch.optim.AdamW(dec.parameters(), lr=lr)
    original = detr.DetrDecoderLayer.forward

    def forward(self, query, query_pos, memory, memory_pos, query_padding_mask=None):
        q = self.self_attn(query, query_pos=query_pos, key_padding_mask=query_padding_mask)
        query = self.norm1(query + self.drop(q))
        q = self.cross_attn(query, memory, memory + memory_pos, query_pos=query_pos, key_pos=memory_pos)
        query = self.norm2(query + self.drop(q))
        return self.norm3(query + self.drop(self.ffn(query)))
    if pos_in_values:
        detr.DetrDecoderLayer.forward = forward
    try:
        errs = []
        for step in range(steps):
            names, mem, target = batch(batch_size)
            boxes = torch.cat([target, torch.full_like(target, 1 / G)], -1)
            q = pad_ref_queries(list(names[:, None]), [[0]] * batch_size, list(range(batch_size)),
                                boxes=list(boxes[:, None]))
            out = dec(q, [mem.transpose(1, 2).reshape(batch_size, C, G, G)])
            loss = dec.loss(out, q)['box']
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(dec.parameters(), 1.0)
            opt.step()
            if step >= steps - 50:
                errs.append((out['boxes'][-1][:, 0, :2] - target).abs().mean().item())
    finally:
        detr.DetrDecoderLayer.forward = original
    return sum(errs) / len(errs)


def train_pointer(steps: int, batch_size: int) -> float:
    batch, centres = make_task()
    torch.manual_seed(0)
    wq, wk = torch.nn.Linear(LLM_DIM, 64), torch.nn.Linear(C, 64)
    opt = torch.optim.AdamW(list(wq.parameters()) + list(wk.parameters()), lr=2e-3)
    errs = []
    for step in range(steps):
        names, mem, target = batch(batch_size)
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
    rows = [(f'RefBoxDecoder (3 layers, d 64, as the tiny config), lr {args.lr:g}',
             train_decoder(args.steps, args.batch_size, False, args.lr)),
            (f'RefBoxDecoder, positions added to the values too, lr {args.lr:g}',
             train_decoder(args.steps, args.batch_size, True, args.lr)),
            ('one pointer attention (box centre = attention-weighted cell centres)',
             train_pointer(args.steps, args.batch_size))]
    print(f'| model ({args.steps} steps x {args.batch_size}) | mean centre error, last 50 steps |')
    print('|---|---|')
    for name, err in rows:
        print(f'| {name} | {err:.3f} |')


if __name__ == '__main__':
    main()
