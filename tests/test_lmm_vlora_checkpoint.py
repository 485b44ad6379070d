"""Released VLoRA ``mm_projector.bin`` layout -> our generator: every key placed, values where they belong."""
import torch

from llmvision.checkpoint.vlora import convert_vlora_projector, load_vlora_projector
from llmvision.models.lmm.vlora import PerceptualWeightsGenerator

TYPES, DIM, DEPTH, CV, POS, H, R, LAYERS, SKIP = 'qkvom', 16, 2, 12, 9, 32, 4, 4, 2
K = LAYERS // SKIP


def released_state_dict(seed=0):
    """The names and shapes ``named_parameters()`` of the released ``LoRAGenerater`` (weights_sep=True) give
    under ``model.mm_projector.``, written out from its module tree (not from our classes)."""
    g = torch.Generator().manual_seed(seed)
    shapes = {'visual_proj.weight': (DIM, CV), 'visual_proj.bias': (DIM,), 'pos_embed': (1, POS, DIM),
              'Bs': (1, len(TYPES) * K, H * R)}
    for i in range(len(TYPES)):
        shapes[f'gen.{i}.queries'] = (1, K, DIM)
        for j in range(DEPTH):
            block = f'gen.{i}.decoders.{j}.'
            for attn in ('self_attn', 'multihead_attn'):
                shapes.update({f'{block}{attn}.in_proj_weight': (3 * DIM, DIM), f'{block}{attn}.in_proj_bias':
                               (3 * DIM,), f'{block}{attn}.out_proj.weight': (DIM, DIM),
                               f'{block}{attn}.out_proj.bias': (DIM,)})
            shapes.update({f'{block}linear1.weight': (4 * DIM, DIM), f'{block}linear1.bias': (4 * DIM,),
                           f'{block}linear2.weight': (DIM, 4 * DIM), f'{block}linear2.bias': (DIM,)})
            for n in (1, 2, 3):
                shapes.update({f'{block}norm{n}.weight': (DIM,), f'{block}norm{n}.bias': (DIM,)})
        shapes.update({f'gen.{i}.norm.weight': (DIM,), f'gen.{i}.norm.bias': (DIM,),
                       f'gen.{i}.weights_head.weight': (H * R, DIM), f'gen.{i}.weights_head.bias': (H * R,)})
    return {f'model.mm_projector.{k}': torch.randn(s, generator=g) for k, s in shapes.items()}


def generator():
    return PerceptualWeightsGenerator(visual_dim=CV, num_positions=POS, dim=DIM, depth=DEPTH, num_llm_layers=LAYERS,
                                      in_features=dict.fromkeys(TYPES, H), out_features=dict.fromkeys(TYPES, H),
                                      rank=R, alpha=2 * R, skip=SKIP, num_heads=4)


def test_released_projector_converts_every_key():
    released = released_state_dict()
    released['model.layers.0.self_attn.q_proj.weight'] = torch.zeros(2, 2)   # LLM keys of a full checkpoint
    gen = generator()
    report = load_vlora_projector(gen, released, prefix='', strict=True)
    assert report.ok and list(report.side) == ['model.layers.0.self_attn.q_proj.weight']
    own = gen.state_dict()
    assert torch.equal(own['gen.o.queries'], released['model.mm_projector.gen.3.queries'])  # stack order = type order
    assert torch.equal(own['gen.m.decoders.1.multihead_attn.in_proj_weight'],
                       released['model.mm_projector.gen.4.decoders.1.multihead_attn.in_proj_weight'])
    # released forward: Bs.reshape(1, T, k, h, r)[0, type, slot] * alpha / r is B of (type, layer slot)
    bs = released['model.mm_projector.Bs'].reshape(1, len(TYPES), K, H, R)
    out = gen(torch.randn(3, POS, CV))
    for i, t in enumerate(TYPES):
        for slot in range(K):
            torch.testing.assert_close(out.B[t][slot], bs[0, i, slot] * 2.0)
    # released A: weights_head(norm(queries)) of stack i reshaped [N, k, h, r]
    head = released['model.mm_projector.gen.1.weights_head.weight']
    assert torch.equal(own['gen.k.weights_head.weight'], head) and out.A['k'].shape == (3, K, H, R)


def test_report_names_what_does_not_fit():
    released = released_state_dict()
    released['model.mm_projector.gen.queries'] = torch.zeros(1, 2, DIM)    # weights_sep=False layout
    converted, report = convert_vlora_projector(released, rank=R)
    assert 'gen.queries' in report.unconverted
    assert all(k.startswith('weight_generator.') for k in converted)
    gen = generator()
    gen.lora_B['k'] = torch.nn.Parameter(torch.zeros(K, H // 2, R))          # a GQA model: k sized to kv heads
    report = load_vlora_projector(gen, released_state_dict(), prefix='')
    assert [m[0] for m in report.shape_mismatch] == ['lora_B.k'] and not report.ok
