"""VLoRA under FSDP FULL_SHARD (2 gloo ranks on CPU, decoder layers wrapped): the context-fed side path gives the
loss and gradients of the unsharded model (the factors never travel as forward kwargs)."""
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from test_lmm_vlora_model import PROMPTS, build, pixels, samples


def grad_sq(named_parameters):
    """Sum of squared gradients: ``[LLM + vision, generator]``."""
    sq = torch.zeros(2)
    for name, p in named_parameters:
        if p.grad is not None:
            sq[int('weight_generator' in name)] += p.grad.float().pow(2).sum()
    return sq


def _worker(rank, init, out):
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import ShardingStrategy
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=init, rank=rank, world_size=2)
    model = build().train()
    sharded = FSDP(model, auto_wrap_policy=ModuleWrapPolicy({type(model.llm.model.layers[0])}), use_orig_params=True,
                   device_id=torch.device('cpu'), sharding_strategy=ShardingStrategy.FULL_SHARD)
    loss = sharded(pixels(2), samples(PROMPTS), mode='loss')['loss']
    loss.backward()
    sq = grad_sq(sharded.named_parameters())
    dist.all_reduce(sq)           # each rank holds a shard of the gradients
    if rank == 0:
        torch.save(dict(loss=loss.detach(), sq=sq), out)
    dist.destroy_process_group()


@pytest.mark.slow
def test_fsdp_full_shard_matches_unsharded(tmp_path):
    out = str(tmp_path / 'result.pt')
    mp.spawn(_worker, args=('file://' + tempfile.mktemp(dir=tmp_path), out), nprocs=2)
    result = torch.load(out)
    model = build().train()
    loss = model(pixels(2), samples(PROMPTS), mode='loss')['loss']
    loss.backward()
    torch.testing.assert_close(result['loss'], loss.detach())
    torch.testing.assert_close(result['sq'], grad_sq(model.named_parameters()), rtol=1e-4, atol=1e-4)
    assert result['sq'][1] > 0
