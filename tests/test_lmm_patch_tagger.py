"""Vision-tower tag pre-training: box mapping onto the square image, the dataset, the targets, the model
(it fits a few images), and loading its tower into the LLaVA tower (``vision_model_from_config(checkpoint=)``)."""
import json
import os

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from PIL import Image
from transformers import CLIPVisionConfig

from llmvision.datasets.bad_samples import BadSampleError
from llmvision.datasets.patch_tags import PatchTagDataset
from llmvision.datasets.transforms.square_images import square_boxes, square_image
from llmvision.models.lmm.patch_tagger import PatchTagPretrainer, patch_tag_targets
from llmvision.models.lmm.vision_tower import vision_model_from_config

TOWER = dict(type=vision_model_from_config, seed=0, pixel_stem=(8,),
             config=dict(type=CLIPVisionConfig, image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2))


@pytest.mark.parametrize('aspect', ['pad', 'resize'])
@pytest.mark.parametrize('wh', [(60, 30), (30, 60), (40, 40)])
def test_square_boxes_follow_the_square_image(aspect, wh):
    w, h = wh
    img = np.zeros((h, w, 3), np.uint8)
    box = [w * 0.25, h * 0.5, w * 0.75, h * 0.9]
    img[int(box[1]):int(box[3]), int(box[0]):int(box[2])] = 255
    sq = square_image(Image.fromarray(img), 64, aspect, pad_value=(0, 0, 0))
    ys, xs = np.nonzero(sq[..., 0] > 127)
    mapped = square_boxes([box], w, h, 64, aspect)[0]
    assert np.allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], mapped, atol=1.5)
    with pytest.raises(ValueError, match='aspect'):
        square_boxes([box], w, h, 64, 'crop')


def test_patch_tag_targets_mark_the_centre_cell():
    boxes = torch.tensor([[0., 0., 10., 10.], [40., 20., 64., 36.], [60., 60., 64., 64.], [0., 0., 10., 10.]])
    t = patch_tag_targets(boxes, torch.tensor([2, 0, 1, 2]), grid=4, image_size=64, num_classes=3)
    assert t.shape == (16, 3)
    assert {tuple(x) for x in t.nonzero().tolist()} == {(0, 2), (1 * 4 + 3, 0), (15, 1)}
    assert patch_tag_targets(torch.zeros(0, 4), torch.zeros(0), 4, 64, 3).sum() == 0


def _write_set(root):
    os.makedirs(root / 'images', exist_ok=True)
    Image.new('RGB', (60, 30), (200, 0, 0)).save(root / 'images' / 'a.png')
    Image.new('RGB', (32, 32), (0, 0, 200)).save(root / 'images' / 'b.png')
    (root / 'labels.json').write_text(json.dumps({'0': 'red square', '1': 'blue circle'}))
    lines = [dict(filename='a.png', height=30, width=60,
                  detection=dict(instances=[dict(bbox=[0, 0, 30, 15], label=0, category='red square')])),
             dict(filename='b.png', height=32, width=32,
                  detection=dict(instances=[dict(bbox=[16, 16, 32, 32], label=1, category='blue circle')]))]
    (root / 'det.jsonl').write_text('\n'.join(json.dumps(x) for x in lines) + '\n')


def test_dataset_squares_images_and_boxes(tmp_path):
    _write_set(tmp_path)
    ds = PatchTagDataset('det.jsonl', label_map_file='labels.json', data_root=str(tmp_path),
                         data_prefix=dict(img='images/'), image_size=32)
    a = ds[0]
    assert a['inputs'].shape == (1, 3, 32, 32) and a['inputs'].dtype == torch.uint8
    # 60x30 padded to 60x60 (15 px above), then scaled by 32/60
    assert torch.allclose(a['data_samples'].gt_boxes, torch.tensor([[0., 15., 30., 30.]]) * 32 / 60)
    assert a['data_samples'].gt_labels.tolist() == [0]
    assert ds[1]['data_samples'].gt_labels.tolist() == [1]
    with pytest.raises(ValueError, match='label_map_file'):
        PatchTagDataset('det.jsonl', data_root=str(tmp_path))


def test_dataset_names_the_bad_line(tmp_path):
    _write_set(tmp_path)
    with open(tmp_path / 'det.jsonl', 'a') as f:
        f.write('{"filename": "c.png", "height": 10, "width": 10, "detection": {"instances": '
                '[{"bbox": [20, 20, 50, 25], "label": 0}]}}\n')
    with pytest.raises(BadSampleError, match=r'det\.jsonl.*3'):
        PatchTagDataset('det.jsonl', label_map_file='labels.json', data_root=str(tmp_path),
                        data_prefix=dict(img='images/'), image_size=32)


def test_pretrainer_fits_a_few_images_and_its_tower_loads_into_llava(synthetic_data, tmp_path):
    p = synthetic_data
    root = os.path.dirname(str(p.train_det_odvg))
    ds = PatchTagDataset(str(p.train_det_odvg), label_map_file=str(p.label_map), data_prefix=dict(img=str(p.image_dir)),
                         image_size=32, data_root=root)
    num_classes = len(ds.metainfo['classes'])
    model = PatchTagPretrainer(TOWER, num_classes=num_classes)
    batch = model.data_preprocessor(pseudo_collate([ds[i] for i in range(8)]), True)
    assert model(batch['inputs'], mode='tensor').shape == (8, 16, num_classes)
    with torch.no_grad():
        first = model(**batch, mode='loss')
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), 3e-3)
    for _ in range(120):
        loss = model(**batch, mode='loss')
        opt.zero_grad()
        loss['loss_tag'].backward()
        opt.step()
    assert loss['loss_tag'] < 0.3 * first['loss_tag']
    assert loss['tag_recall'] > 0.9 and loss['tag_precision'] > 0.5
    out = model(**batch, mode='predict')
    assert out[0].pred_tag_scores.shape == out[0].gt_tags.shape == (16, num_classes)
    # the tower's weights go into a LLaVA tower through the checkpoint of the run
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'tags.pth')
    tower = vision_model_from_config(TOWER['config'], pixel_stem=(8,), checkpoint=str(tmp_path / 'tags.pth'))
    for k, v in model.vision_encoder.state_dict().items():
        assert torch.equal(tower.state_dict()[k], v), k
    with pytest.raises(KeyError, match='pixel_mlp'):
        vision_model_from_config(TOWER['config'], checkpoint=str(tmp_path / 'tags.pth'))
    with pytest.raises(FileNotFoundError, match='nothing.pth'):
        vision_model_from_config(TOWER['config'], checkpoint=str(tmp_path / 'nothing.pth'))
