"""Real-data configs (LVIS minival/val, RefCOCO family, ODinW-13, O365+GoldG / GroundingCap training,
LLMDet-T/B/L): they load, carry the recipe's hyper-parameters, point at the documented files, build
their datasets on tiny stand-in files, and a missing file gives an error naming it.

Models are not built here (Swin + BERT + Qwen2 need local weight folders); the model definitions
are built in test_detector_configs.py.
"""
import copy
import glob
import json
import os.path as osp
import pickle

import numpy as np
import pytest
from mmengine.dataset import ConcatDataset

from llmvision.datasets import LVISDataset, ODVGDataset, RefCOCODataset
from llmvision.datasets.transforms import FixScaleResize, RandomChoiceResize, RandomSamplingNegPos
from llmvision.engine import load_config
from llmvision.evaluation import CocoMetric, LVISFixedAPMetric, MultiDatasetMetric, RefExpMetric
from llmvision.models.detectors import GroundingDINO, LLMDet
from llmvision.registry import DATASETS, METRICS
from llmvision.utils.hf_builder import build_object

SIZES = ('t', 'b', 'l')
TESTS = ('lvis_minival', 'lvis_val', 'refcoco', 'refcoco_plus', 'refcocog', 'odinw')
NEW_CONFIGS = ([f'configs/grounding_dino/grounding_dino_swin_{s}_{t}.py' for s in SIZES for t in TESTS]
               + ['configs/grounding_dino/grounding_dino_swin_t_llmdet_recipe.py']
               + [f'configs/llmdet/llmdet_swin_{s}.py' for s in SIZES])
BASES = glob.glob('configs/_base_/datasets/*.py') + glob.glob('configs/_base_/schedules/*.py')


def gdino(size, test):
    return load_config(f'configs/grounding_dino/grounding_dino_swin_{size}_{test}.py')


def plain(cfg):
    """A deep copy of a config node to edit (``to_dict`` would turn class ``type`` values into strings)."""
    return copy.deepcopy(cfg)


def pipeline_step(pipeline, cls):
    steps = [t for t in pipeline if t['type'] is cls]
    assert len(steps) == 1, f'expected one {cls.__name__} in {pipeline}'
    return steps[0]


# ------------------------------------------------------------------ loading / structure
def test_every_new_config_is_listed_and_loads():
    on_disk = set(glob.glob('configs/grounding_dino/grounding_dino_swin_?_*.py') +
                  glob.glob('configs/llmdet/llmdet_swin_?.py'))
    assert set(NEW_CONFIGS) <= on_disk
    for path in NEW_CONFIGS:
        cfg = load_config(path)
        assert cfg.model.type in (GroundingDINO, LLMDet), path
        assert cfg.default_scope == 'llmvision'


def test_bases_never_read_another_base():
    for path in BASES:
        with open(path) as f:
            assert 'read_base' not in f.read(), f'{path}: a base config must not import another base'


@pytest.mark.parametrize('size,levels,embed', [('t', 4, 96), ('b', 4, 128), ('l', 5, 192)])
def test_lvis_configs(size, levels, embed):
    for test, ann in (('lvis_minival', 'lvis_v1_minival.json'), ('lvis_val', 'lvis_v1_val.json')):
        cfg = gdino(size, test)
        assert cfg.model.backbone.embed_dims == embed and cfg.model.num_feature_levels == levels
        assert cfg.model.test_cfg.chunked_size == 40 and cfg.model.test_cfg.max_per_img == 300
        ds = cfg.test_dataloader.dataset
        assert ds.type is LVISDataset and ds.test_mode
        assert (ds.data_root, ds.ann_file, ds.data_prefix.img) == ('data/lvis/', ann, '')
        assert pipeline_step(ds.pipeline, FixScaleResize)['scale'] == (800, 1333)
        for ev in (cfg.val_evaluator, cfg.test_evaluator):
            assert ev.type is LVISFixedAPMetric and ev.ann_file == 'data/lvis/' + ann
            assert ev.max_dets_per_cat == 10000
        assert cfg.test_cfg.type.__name__ == 'TestLoop' and cfg.val_cfg.type.__name__ == 'ValLoop'


@pytest.mark.parametrize('size', SIZES)
def test_refcoco_configs(size):
    for test, family, split_by in (('refcoco', 'refcoco', 'unc'), ('refcoco_plus', 'refcoco+', 'unc'),
                                   ('refcocog', 'refcocog', 'umd')):
        cfg = gdino(size, test)
        ds = cfg.test_dataloader.dataset
        assert ds.type is RefCOCODataset
        assert (ds.data_root, ds.dataset, ds.split_by, ds.split) == ('data/refcoco/', family, split_by, 'val')
        assert ds.data_prefix.img == 'train2014/'
        # LLMDet's REC heuristic on every expression, switched on by the dataset, not the model
        assert ds.metainfo.rec_heuristic == dict(all_captions=True) and 'rec_heuristic' not in cfg.model.test_cfg
        ev = cfg.test_evaluator
        assert ev.type is RefExpMetric and tuple(ev.topk) == (1, 5, 10) and ev.iou_thr == 0.5
        assert ev.iou_mode == '>=' and ev.split == 'val'
        assert cfg.model.test_cfg.max_per_img == 30  # REC test as released (LVIS keeps 300)


def test_llm_wrapper_configs_share_the_recipe_and_differ_in_the_llm():
    qwen = load_config('configs/llm_wrapper/llm_wrapper_qwen2_0.5b_refcoco.py')
    llama = load_config('configs/llm_wrapper/llm_wrapper_llama3_8b_refcoco.py')
    paths = {'checkpoints/Qwen2-0.5B-Instruct': qwen, 'checkpoints/Meta-Llama-3-8B-Instruct': llama}
    for path, cfg in paths.items():
        # every place that loads the LLM or its tokenizer reads this config's path
        assert cfg.model.llm.pretrained_model_name_or_path == path
        assert cfg.model.tokenizer.pretrained_model_name_or_path == path
        assert cfg.train_dataloader.dataset.tokenizer.pretrained_model_name_or_path == path
        lora = cfg.model.lora
        assert (lora.r, lora.lora_alpha, lora.lora_dropout) == (128, 256, 0.1) and 'lm_head' in lora.target_modules
        assert cfg.optim_wrapper.optimizer.lr == 1e-5 and cfg.train_dataloader.batch_size == 4
        (sched,) = cfg.param_scheduler  # released: linear decay to 0 over the epoch, no warm-up
        assert (sched.start_factor, sched.end_factor, sched.end, sched.convert_to_iter_based) == (1.0, 0.0, 1, True)
        assert cfg.train_dataloader.dataset.num_shuffles == 'released'
        assert cfg.model.answer_eos is False  # released: no EOS after the answer
    strip = ('llm', 'tokenizer')
    assert {k: v for k, v in qwen.model.items() if k not in strip} == \
        {k: v for k, v in llama.model.items() if k not in strip}


def test_llm_wrapper_qlora_config_builds_to_the_clear_cuda_error(tmp_path, monkeypatch):
    """The QLoRA variant differs from its full-precision config only in the 4-bit NF4 base; building the
    selector on a machine without CUDA stops at the LLM with the builder's error (after the tokenizer)."""
    import torch
    from transformers import AutoTokenizer

    from llmvision.datasets.synthetic.llm_tokenizer import build_llm_tokenizer
    from llmvision.utils.hf_builder import quantized_causal_lm
    full = load_config('configs/llm_wrapper/llm_wrapper_llama3_8b_refcoco.py')
    qlora = load_config('configs/llm_wrapper/llm_wrapper_llama3_8b_refcoco_qlora.py')
    llm = qlora.model.llm
    assert llm.type is quantized_causal_lm
    assert llm.pretrained_model_name_or_path == full.model.llm.pretrained_model_name_or_path
    assert (llm.bits, llm.quant_type, llm.double_quant, llm.compute_dtype) == (4, 'nf4', True, 'bfloat16')
    assert llm.prepare_for_kbit_training
    assert {k: v for k, v in qlora.model.items() if k != 'llm'} == {k: v for k, v in full.model.items() if k != 'llm'}
    assert qlora.train_dataloader == full.train_dataloader and qlora.optim_wrapper == full.optim_wrapper
    model_cfg = plain(qlora.model)
    model_cfg['tokenizer'] = AutoTokenizer.from_pretrained(str(build_llm_tokenizer(tmp_path / 'tok')))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(RuntimeError, match='need a CUDA GPU'):
        build_object(model_cfg)


@pytest.mark.parametrize('size', SIZES)
def test_odinw_configs(size):
    cfg = gdino(size, 'odinw')
    ds = cfg.test_dataloader.dataset
    assert ds.type is ConcatDataset and len(ds.datasets) == 13
    ev = cfg.test_evaluator
    assert ev.type is MultiDatasetMetric and ev.dataset_key == 'dataset_name' and len(ev.metrics) == 13
    for sub, name, metric in zip(ds.datasets, ev.dataset_prefixes, ev.metrics):
        assert sub.type is LVISDataset and sub.metainfo.dataset_name == name
        assert metric.type is CocoMetric
        assert metric.ann_file == sub.data_root + sub.ann_file
        assert metric.ann_file.startswith('data/odinw/') and metric.ann_file.endswith('.json')
    assert 'AerialMaritimeDrone' in ev.dataset_prefixes and 'VehiclesOpenImages' in ev.dataset_prefixes


def check_schedule(cfg):
    ow = cfg.optim_wrapper
    assert ow.optimizer.type.__name__ == 'AdamW'
    assert ow.optimizer.lr == 1e-4 and ow.optimizer.weight_decay == 1e-4
    assert ow.clip_grad.max_norm == 0.1
    keys = ow.paramwise_cfg.custom_keys
    assert keys.backbone.lr_mult == 0.1 and keys.text_encoder.lr_mult == 0.1
    warmup, decay = cfg.param_scheduler
    assert warmup.type.__name__ == 'LinearLR' and (warmup.begin, warmup.end) == (0, 1000)
    assert decay.type.__name__ == 'MultiStepLR' and list(decay.milestones) == [120000, 140000]
    assert decay.gamma == 0.1
    assert cfg.train_cfg.max_iters == 150000
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.auto_scale_lr.base_batch_size == 16


def check_train_pipeline(pipeline):
    resize = pipeline_step(pipeline, RandomChoiceResize)
    assert resize['scales'] == list(range(480, 801, 32)) and resize['max_long_side'] == 1333
    assert [t['type'].__name__ for t in pipeline][:3] == ['LoadImageFromFile', 'LoadAnnotations', 'RandomFlip']


def test_grounding_dino_recipe():
    cfg = load_config('configs/grounding_dino/grounding_dino_swin_t_llmdet_recipe.py')
    check_schedule(cfg)
    assert cfg.model.type is GroundingDINO and cfg.model.backbone.embed_dims == 96
    sets = cfg.train_dataloader.dataset.datasets
    assert [s.type for s in sets] == [ODVGDataset] * 3
    o365, flickr, gqa = sets
    assert o365.label_map_file == 'o365/o365v1_label_map.json'  # detection form
    assert flickr.get('label_map_file') is None and gqa.get('label_map_file') is None  # grounding form
    assert pipeline_step(o365.pipeline, RandomSamplingNegPos)['max_tokens'] == 256
    for s in sets:
        assert s.data_root == 'data/odvg/' and s.on_bad_sample == 'skip'
        check_train_pipeline(s.pipeline)
    assert cfg.val_evaluator.type is LVISFixedAPMetric


@pytest.mark.parametrize('size,levels', [('t', 4), ('b', 4), ('l', 5)])
def test_llmdet_configs(size, levels):
    cfg = load_config(f'configs/llmdet/llmdet_swin_{size}.py')
    check_schedule(cfg)
    m = cfg.model
    assert m.type is LLMDet and m.num_feature_levels == levels
    assert m.freeze_backbone and m.freeze_neck
    cap = m.captioner
    # released LLM: LLaVA-OneVision-Qwen2-0.5B (the authors' folder) with its pre-aligned projector in both
    assert cap.llm.type.__name__ == 'qwen2_from_llava_onevision'
    assert cap.llm.path == cap.tokenizer == 'checkpoints/my_llava-onevision-qwen2-0.5b-ov-2'
    assert cap.projector_checkpoint == cap.llm.path + '/mm_projector2.bin' and cap.projector_prefix == 'mm_projector'
    assert cap.lora.lora_alpha == 256
    assert set(cap.lora.target_modules) == {'q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj',
                                            'down_proj'}
    assert (cap.max_region_caption_len, cap.max_regions) == (40, 16)
    if size == 'l':  # released LLMDet-L: p5 only (level 3 of 5), 1200 tokens, LoRA r 64, x-attn on 5 levels
        assert tuple(cap.image_token_levels) == (3,) and tuple(cap.image_token_sizes) == (20,)
        assert cap.max_image_sequence_len == 1200 and cap.lora.r == 64 and cap.region_cross_attn.num_levels == 5
    else:
        assert tuple(cap.image_token_sizes) == (20, 27) and tuple(cap.image_token_levels) == (2, 1)
        assert cap.max_image_sequence_len == 1600 and cap.lora.r == 128
    assert cap.max_image_caption_len is None  # released: only the whole-sequence limit
    # released recipe values (REFERENCE.md section 9)
    assert cap.lora.lora_dropout == 0.0 and cap.box_format == 'xyxy' and cap.region_cross_attn.every == 4
    assert m.encoder.num_cp == 6 and cfg.randomness.seed == 624982218
    assert cfg.auto_scale_lr.enable and cfg.auto_scale_lr.base_batch_size == 16
    assert cfg.train_cfg.val_interval == cfg.default_hooks.checkpoint.interval == 30000
    assert cfg.load_from.startswith('checkpoints/mm_grounding_dino_')
    decay_exempt = {k for k, v in cfg.optim_wrapper.paramwise_cfg.custom_keys.items() if v.get('decay_mult') == 0}
    assert decay_exempt == {'absolute_pos_embed'}
    for s in cfg.train_dataloader.dataset.datasets:
        assert all(t.get('prob', 0) == 0 for t in s.pipeline if t['type'].__name__ == 'RandomFlip')  # no flip
    for s in cfg.train_dataloader.dataset.datasets:  # grounding form: phrases + long captions
        assert s.type is ODVGDataset and s.get('label_map_file') is None
        assert s.ann_file.endswith('.jsonl') and s.data_root == 'data/odvg/'
        check_train_pipeline(s.pipeline)


def test_llmdet_only_p5_and_stage1_differ_from_llmdet_t_only_where_documented():
    base = load_config('configs/llmdet/llmdet_swin_t.py')
    p5 = load_config('configs/llmdet/llmdet_swin_t_only_p5.py')
    stage1 = load_config('configs/llmdet/llmdet_swin_t_stage1.py')
    for cfg in (p5, stage1):  # same data, schedule, recipe values
        for key in ('train_dataloader', 'optim_wrapper', 'param_scheduler', 'train_cfg', 'randomness',
                    'auto_scale_lr', 'load_from', 'val_evaluator'):
            assert cfg[key] == base[key], key
    only_p5 = dict(image_token_levels=(2,), image_token_sizes=(20,), max_image_sequence_len=1200)
    assert {k: v for k, v in p5.model.items() if k != 'captioner'} == \
        {k: v for k, v in base.model.items() if k != 'captioner'}
    assert dict(p5.model.captioner) == dict(base.model.captioner, **only_p5)
    assert stage1.model.type.__name__ == 'build_partly_frozen'
    assert tuple(stage1.model.trainable) == ('captioner.image_tokenizer',)
    inner = stage1.model.model
    assert {k: v for k, v in inner.items() if k != 'captioner'} == \
        {k: v for k, v in base.model.items() if k != 'captioner'}
    stock = 'checkpoints/llava-onevision-qwen2-0.5b-ov'  # stage 1 aligns a fresh projector to the stock LLM
    assert dict(inner.captioner) == dict(base.model.captioner, lora=None, region_loss_weight=0.0,
                                         region_cross_attn=None, projector_checkpoint=None, tokenizer=stock,
                                         llm=dict(base.model.captioner.llm, path=stock), **only_p5)


# ------------------------------------------------------------------ datasets on stand-in files
def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def coco_json(names, file_name='a.jpg', coco_url=None):
    img = dict(id=1, height=48, width=64, file_name=file_name)
    if coco_url:
        img = dict(id=1, height=48, width=64, coco_url=coco_url)
    return dict(images=[img],
                annotations=[dict(id=1, image_id=1, category_id=2, bbox=[4, 4, 20, 10], area=200, iscrowd=0)],
                categories=[dict(id=i + 1, name=n, frequency='f') for i, n in enumerate(names)])


def test_lvis_dataset_builds_and_resizes(tmp_path):
    import cv2
    cfg = gdino('t', 'lvis_minival')
    ds_cfg = plain(cfg.test_dataloader.dataset)
    ds_cfg['data_root'] = str(tmp_path) + '/'
    write_json(tmp_path / ds_cfg['ann_file'],
               coco_json(['cat', 'remote control'], coco_url='http://images.cocodataset.org/val2017/x.jpg'))
    (tmp_path / 'val2017').mkdir()
    cv2.imwrite(str(tmp_path / 'val2017' / 'x.jpg'), np.full((48, 64, 3), 128, np.uint8))
    dataset = DATASETS.build(ds_cfg)
    out = dataset[0]
    assert out['inputs'].shape == (3, 800, 1067)  # short side 800, long side 1067 <= 1333
    sample = out['data_samples']
    assert sample.text == ['cat', 'remote control'] and sample.img_path == str(tmp_path / 'val2017' / 'x.jpg')
    assert sample.gt_instances.labels.tolist() == [1]


@pytest.mark.parametrize('test', ['lvis_minival', 'lvis_val'])
def test_missing_lvis_json_names_the_file(tmp_path, test):
    ds_cfg = plain(gdino('t', test).test_dataloader.dataset)
    ds_cfg['data_root'] = str(tmp_path / 'lvis') + '/'
    with pytest.raises(FileNotFoundError, match=osp.join(str(tmp_path / 'lvis'), ds_cfg['ann_file'])):
        DATASETS.build(ds_cfg)


def test_refcocog_dataset_builds_and_missing_refs_named(tmp_path):
    ds_cfg = plain(gdino('t', 'refcocog').test_dataloader.dataset)
    ds_cfg['data_root'] = str(tmp_path) + '/'
    with pytest.raises(FileNotFoundError, match=r'refcocog/instances\.json'):
        DATASETS.build(ds_cfg)
    write_json(tmp_path / 'refcocog' / 'instances.json', coco_json(['person', 'dog'], file_name='COCO_1.jpg'))
    refs = [dict(ref_id=0, ann_id=1, image_id=1, split='val', sentences=[dict(sent='the dog'), dict(sent='a dog')]),
            dict(ref_id=1, ann_id=1, image_id=1, split='train', sentences=[dict(sent='dog')])]
    with open(tmp_path / 'refcocog' / 'refs(umd).p', 'wb') as f:
        pickle.dump(refs, f)
    dataset = DATASETS.build(ds_cfg)
    assert len(dataset) == 2
    info = dataset.get_data_info(0)
    assert info['text'] == 'the dog' and info['img_path'] == str(tmp_path / 'train2014' / 'COCO_1.jpg')
    assert info['ori_gt_bboxes'] == [[4.0, 4.0, 24.0, 14.0]]


def test_odinw_datasets_and_metric_build(tmp_path):
    cfg = gdino('t', 'odinw')
    ds_cfg = plain(cfg.test_dataloader.dataset)
    for sub in ds_cfg['datasets']:
        sub['data_root'] = sub['data_root'].replace('data/odinw/', str(tmp_path) + '/')
        write_json(tmp_path / osp.relpath(osp.join(sub['data_root'], sub['ann_file']), str(tmp_path)),
                   coco_json(['a', sub['metainfo']['dataset_name']]))
    concat = DATASETS.build(ds_cfg)  # per-set classes / cat_ids / dataset_name differ: ignored keys
    assert len(concat) == 13
    names = [d.metainfo['dataset_name'] for d in concat.datasets]
    assert names == cfg.test_evaluator.dataset_prefixes
    assert concat.datasets[7].get_data_info(0)['text'] == ['a', 'pistols']
    assert concat.datasets[7].get_data_info(0)['img_path'] == str(tmp_path / 'pistols' / 'export' / 'a.jpg')
    metric = METRICS.build(plain(cfg.test_evaluator))
    assert [type(m) for m in metric.metrics] == [CocoMetric] * 13


def test_missing_training_jsonl_and_llm_folder_named(tmp_path):
    cfg = load_config('configs/llmdet/llmdet_swin_t.py')
    ds_cfg = plain(cfg.train_dataloader.dataset.datasets[0])
    ds_cfg['data_root'] = str(tmp_path) + '/'
    with pytest.raises(FileNotFoundError, match=ds_cfg['ann_file']):
        DATASETS.build(ds_cfg)
    llm = plain(cfg.model.captioner.llm)
    llm['path'] = str(tmp_path / 'my_llava-onevision-qwen2-0.5b-ov-2')
    with pytest.raises(FileNotFoundError, match='my_llava-onevision-qwen2-0.5b-ov-2/config.json.*not found'):
        build_object(llm)
