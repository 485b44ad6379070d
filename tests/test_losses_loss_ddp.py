"""GroundingDINOLoss under torch.distributed (gloo, 2 CPU ranks): normalizers are averaged across ranks."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

T = 6


def _rank_inputs(rank):
    g = torch.Generator().manual_seed(100 + rank)
    n = 3 if rank == 0 else 1
    boxes = torch.cat([torch.rand(n, 2, generator=g) * 0.5 + 0.25,
                       torch.rand(n, 2, generator=g) * 0.2 + 0.1], 1)
    maps = torch.zeros(n, T)
    maps[:, 1] = 1
    gts = [dict(bboxes=boxes, labels=torch.zeros(n, dtype=torch.long), positive_maps=maps)]
    cls = torch.randn(2, 1, 9, T, generator=g)
    box = torch.cat([torch.rand(2, 1, 9, 2, generator=g) * 0.6 + 0.2,
                     torch.rand(2, 1, 9, 2, generator=g) * 0.3 + 0.05], -1)
    return gts, cls, box


def _worker(rank, world_size, init_file, out_dir):
    from llmvision.models.losses import GroundingDINOLoss
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=world_size)
    try:
        gts, cls, box = _rank_inputs(rank)
        mask = torch.ones(1, T, dtype=torch.bool)
        losses, _ = GroundingDINOLoss(num_classes=T)(cls, box, None, None, mask, gts, None)
        torch.save({k: v.detach() for k, v in losses.items()}, os.path.join(out_dir, f'{rank}.pt'))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_normalizer_is_mean_over_ranks(tmp_path):
    from llmvision.models.losses import GroundingDINOLoss
    mp.spawn(_worker, args=(2, str(tmp_path / 'init'), str(tmp_path)), nprocs=2, join=True)
    for rank, local_pos in ((0, 3), (1, 1)):
        got = torch.load(tmp_path / f'{rank}.pt')
        gts, cls, box = _rank_inputs(rank)
        mask = torch.ones(1, T, dtype=torch.bool)
        local, _ = GroundingDINOLoss(num_classes=T)(cls, box, None, None, mask, gts, None)
        for key, value in local.items():  # single process normalizes by local_pos, DDP by (3 + 1) / 2
            torch.testing.assert_close(got[key], value * local_pos / 2.0, rtol=1e-5, atol=1e-6)
