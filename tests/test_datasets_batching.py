"""pseudo_collate + DetDataPreprocessor + AspectRatioBatchSampler, through mmengine's dataloader builder."""
import torch
from mmengine.dataset import DefaultSampler, pseudo_collate
from mmengine.runner import Runner

from helpers import grounding_record, write_image, write_jsonl
from llmvision.datasets import AspectRatioBatchSampler, ODVGDataset
from llmvision.datasets.transforms import LoadAnnotations, LoadImageFromFile, PackDetInputs
from llmvision.models.data_preprocessors import GDINO_MEAN, GDINO_STD, DetDataPreprocessor, make_pixel_mask

SIZES = [(30, 50), (45, 20), (20, 36), (33, 17), (24, 24), (40, 28), (16, 44)]  # (H, W)


def _dataset(tmp_path):
    recs = []
    for i, (h, w) in enumerate(SIZES):
        write_image(tmp_path / 'img' / f'{i}.png', h, w, [(1, 1, w // 2, h // 2)])
        recs.append(grounding_record(f'{i}.png', h, w, f'box {i}.', [([1, 1, w // 2, h // 2], 'box', [[0, 3]])]))
    pipeline = [dict(type=LoadImageFromFile), dict(type=LoadAnnotations), dict(type=PackDetInputs)]
    return ODVGDataset(ann_file=write_jsonl(tmp_path / 'a.jsonl', recs),
                       data_prefix=dict(img=str(tmp_path / 'img')), pipeline=pipeline)


def test_preprocessor_normalises_pads_and_records_shapes(tmp_path):
    ds = _dataset(tmp_path)
    items = [ds[0], ds[1], ds[2]]
    batch = pseudo_collate(items)
    assert isinstance(batch['inputs'], list) and len(batch['data_samples']) == 3
    pre = DetDataPreprocessor(pad_size_divisor=8)
    out = pre(batch, training=True)
    x = out['inputs']
    assert x.shape == (3, 3, 48, 56) and x.dtype == torch.float32  # max H 45 -> 48, max W 50 -> 56
    mean, std = torch.tensor(GDINO_MEAN).view(3, 1, 1), torch.tensor(GDINO_STD).view(3, 1, 1)
    for i, item in enumerate(items):
        h, w = item['inputs'].shape[1:]
        rgb = item['inputs'].flip(0).float()  # BGR -> RGB
        assert torch.allclose(x[i, :, :h, :w], (rgb - mean) / std, atol=1e-5)
        assert x[i, :, h:, :].abs().sum() == 0 and x[i, :, :, w:].abs().sum() == 0
        s = out['data_samples'][i]
        assert s.batch_input_shape == (48, 56) and s.pad_shape == (48, 56)
        assert torch.equal(s.gt_instances.bboxes, item['data_samples'].gt_instances.bboxes)
    mask = pre.pixel_mask(out)
    assert mask.shape == (3, 48, 56) and mask.dtype == torch.bool
    for i, item in enumerate(items):
        h, w = item['inputs'].shape[1:]
        assert mask[i].sum() == h * w and mask[i, :h, :w].all()
    assert torch.equal(mask, make_pixel_mask(out['data_samples']))


def test_preprocessor_without_conversion_or_divisor(tmp_path):
    ds = _dataset(tmp_path)
    out = DetDataPreprocessor(mean=(0, 0, 0), std=(1, 1, 1), bgr_to_rgb=False)(pseudo_collate([ds[0], ds[3]]))
    assert out['inputs'].shape == (2, 3, 33, 50)
    assert torch.equal(out['inputs'][0, :, :30, :50], ds[0]['inputs'].float())


def test_aspect_ratio_batch_sampler_groups_orientation(tmp_path):
    ds = _dataset(tmp_path)
    sampler = AspectRatioBatchSampler(DefaultSampler(ds, shuffle=True, seed=0), batch_size=2)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 4
    assert sorted(i for b in batches for i in b) == list(range(len(SIZES)))
    portrait = [w < h for h, w in SIZES]
    full = [b for b in batches if len(b) == 2]
    # at most one batch (the leftovers) mixes orientations
    assert sum(len({portrait[i] for i in b}) > 1 for b in batches) <= 1
    assert len(full) == 3
    dropped = list(AspectRatioBatchSampler(DefaultSampler(ds, shuffle=False), batch_size=2, drop_last=True))
    assert len(dropped) == 3 and all(len(b) == 2 for b in dropped)


def test_runner_dataloader_with_preprocessor(tmp_path):
    ds = _dataset(tmp_path)
    loader = Runner.build_dataloader(dict(
        dataset=ds, batch_size=2, num_workers=0,
        sampler=dict(type=DefaultSampler, shuffle=True, seed=1),
        batch_sampler=dict(type=AspectRatioBatchSampler),
        collate_fn=dict(type=pseudo_collate)))
    pre = DetDataPreprocessor()
    seen = 0
    for batch in loader:
        out = pre(batch, training=True)
        b = len(out['data_samples'])
        seen += b
        assert out['inputs'].shape[0] == b
        hs = [s.img_shape[0] for s in out['data_samples']]
        ws = [s.img_shape[1] for s in out['data_samples']]
        assert tuple(out['inputs'].shape[2:]) == (max(hs), max(ws))
    assert seen == len(SIZES)
