"""configs/llava/ LLaVA-1.5 recipes: each loads with the recipe's values (REFERENCE.md section 8), the warm-up /
cosine schedule converts to iterations, and building with a missing local folder names what to put where."""
import json
import os

import pytest
import torch
from mmengine.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIP = 'checkpoints/clip-vit-large-patch14-336'
RECIPES = {  # config -> (LLM folder, template, stop string, stage)
    'llava_v15_vicuna_7b_pretrain': ('checkpoints/vicuna-7b-v1.5', 'vicuna_v1', '</s>', 'pretrain'),
    'llava_v15_vicuna_7b_finetune': ('checkpoints/vicuna-7b-v1.5', 'vicuna_v1', '</s>', 'finetune'),
    'llava_qwen2_0.5b_pretrain': ('checkpoints/Qwen2-0.5B-Instruct', 'chatml', '<|im_end|>', 'pretrain'),
    'llava_qwen2_0.5b_finetune': ('checkpoints/Qwen2-0.5B-Instruct', 'chatml', '<|im_end|>', 'finetune'),
}
STAGES = {  # lr, global batch (per GPU x 8 GPUs), LLM frozen, image aspect, annotation file
    'pretrain': (1e-3, 256, True, 'resize', 'LLaVA-Pretrain/blip_laion_cc_sbu_558k.json'),
    'finetune': (2e-5, 128, False, 'pad', 'llava_v1_5_mix665k.json'),
}


def load(name):
    import llmvision  # noqa: F401
    return Config.fromfile(os.path.join(ROOT, 'configs/llava', name + '.py'))


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_recipe_values(name):
    from llmvision.engine.optim_wrappers import BF16OptimWrapper
    from llmvision.models.lmm import LLaVAModel
    llm_path, template, stop, stage = RECIPES[name]
    lr, global_batch, frozen, aspect, ann = STAGES[stage]
    cfg = load(name)
    m = cfg.model
    assert m.type is LLaVAModel and m.projector == 'mlp2x_gelu' and m.vision_feature_layer == -2
    assert m.vision_encoder.pretrained_model_name_or_path == CLIP and m.freeze_vision
    assert m.llm.pretrained_model_name_or_path == llm_path and m.tokenizer == llm_path
    assert m.llm.dtype == (torch.bfloat16 if frozen else torch.float32)  # fine-tuning steps fp32 weights
    assert m.max_length == 2048 and m.stop_strings == [stop]
    assert m.freeze_llm is frozen and m.vision_encoder.dtype == torch.bfloat16
    ds = cfg.train_dataloader.dataset
    assert ds.encoder.template == template and ds.encoder.tokenizer == llm_path
    assert ds.encoder.max_length == 2048 and ds.encoder.image_length == 576 and ds.image_size == 336
    assert ds.image_aspect == aspect and ds.ann_file == ann
    assert cfg.train_dataloader.batch_size * 8 * cfg.optim_wrapper.accumulative_counts == global_batch
    assert cfg.auto_scale_lr.base_batch_size == global_batch
    opt = cfg.optim_wrapper
    assert opt.type is BF16OptimWrapper and opt.optimizer.lr == lr and opt.optimizer.weight_decay == 0.0
    assert cfg.train_cfg.max_epochs == 1
    warmup, cosine = cfg.param_scheduler
    assert warmup.end == pytest.approx(0.03) and cosine.begin == pytest.approx(0.03) and cosine.end == 1
    assert cosine.type.__name__ == 'CosineAnnealingLR' and cosine.eta_min == 0.0
    assert (cfg.get('load_from') is not None) == (stage == 'finetune')


def test_schedule_converts_to_iterations():
    """3% warm-up then cosine to 0 over one epoch of 1000 iterations."""
    from mmengine.optim import OptimWrapper
    from mmengine.optim.scheduler import CosineAnnealingLR, LinearLR
    cfg = load('llava_v15_vicuna_7b_finetune')
    warmup, cosine = (dict(s) for s in cfg.param_scheduler)
    optim = OptimWrapper(torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=2e-5))
    for s in (warmup, cosine):
        s.pop('type'), s.pop('convert_to_iter_based')
    sched = [LinearLR.build_iter_from_epoch(optim, epoch_length=1000, **warmup),
             CosineAnnealingLR.build_iter_from_epoch(optim, epoch_length=1000, **cosine)]
    assert (sched[0].begin, sched[0].end, sched[1].begin, sched[1].end) == (0, 30, 30, 1000)
    lrs = []
    for _ in range(1000):
        lrs.append(optim.param_groups[0]['lr'])
        optim.step()
        for s in sched:
            s.step()
    assert lrs[0] < 1e-9 and max(lrs) == pytest.approx(2e-5, rel=1e-3) and lrs.index(max(lrs)) in (29, 30, 31)
    assert lrs[-1] < 1e-9


def test_missing_local_folders_name_what_to_put_where(tmp_path):
    from llmvision.models.lmm import tiny_clip_vision_cfg
    from llmvision.registry import MODELS
    cfg = load('llava_v15_vicuna_7b_pretrain')
    with pytest.raises(FileNotFoundError, match='clip-vit-large-patch14-336.*put the model files'):
        MODELS.build(cfg.model)
    cfg.model.vision_encoder = tiny_clip_vision_cfg()  # the CLIP is there: now the LLM folder is missing
    with pytest.raises(FileNotFoundError, match='vicuna-7b-v1.5.*put the model files'):
        MODELS.build(cfg.model)
    from llmvision.registry import DATASETS
    ds = dict(cfg.train_dataloader.dataset)
    ds['data_root'] = str(tmp_path)
    with pytest.raises(FileNotFoundError, match='vicuna-7b-v1.5'):
        DATASETS.build(ds)  # the tokenizer of the conversation encoder


SMOKE = '''from mmengine.config import read_base

with read_base():
    from .{name} import *  # noqa

import torch
from transformers import CLIPVisionConfig, Qwen2Config

from llmvision.models.lmm.llava import vision_model_from_config
from llmvision.utils.hf_builder import causal_lm_from_config

model.llm = dict(type=causal_lm_from_config, seed=0, dtype=model.llm.dtype,
                 config=dict(type=Qwen2Config, vocab_size=768, hidden_size=32, intermediate_size=64,
                             num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1))
model.vision_encoder = dict(type=vision_model_from_config, seed=0, dtype=torch.bfloat16,
                            config=dict(type=CLIPVisionConfig, image_size=28, patch_size=14, hidden_size=32,
                                        intermediate_size=64, num_hidden_layers=2, num_attention_heads=4))
model.update(tokenizer={tok!r}, gradient_checkpointing=False)
train_dataloader.update(batch_size=1, num_workers=0, persistent_workers=False)
train_dataloader.dataset.update(data_root={root!r}, ann_file='vqa/train.json', data_prefix=dict(img='images'),
                                image_size=28, indices=70)
train_dataloader.dataset.encoder.update(tokenizer={tok!r}, image_length=4)
load_from = None
default_hooks.logger.interval = 1
'''


@pytest.mark.slow
@pytest.mark.parametrize('name', ['llava_v15_vicuna_7b_pretrain', 'llava_v15_vicuna_7b_finetune'])
def test_recipe_trains_through_train_tool(name, synthetic_data, tmp_path):
    """The recipe as written (BF16OptimWrapper, 3% warm-up + cosine over one epoch, freezing) runs through
    tools/train.py --amp bf16 with tiny stand-ins for CLIP / the LLM and 70 synthetic VQA records: the learning
    rate warms up to the recipe's value, pre-training moves only the projector, fine-tuning the LLM too."""
    import shutil
    import subprocess
    import sys
    cfg_dir = tmp_path / 'configs'
    for sub in ('_base_', 'llava'):
        shutil.copytree(os.path.join(ROOT, 'configs', sub), cfg_dir / sub)
    smoke = cfg_dir / 'llava' / 'smoke.py'
    smoke.write_text(SMOKE.format(name=name, tok=str(synthetic_data.llm_tokenizer), root=str(synthetic_data.root)))
    work = tmp_path / 'work'
    run = subprocess.run([sys.executable, 'tools/train.py', str(smoke), '--work-dir', str(work), '--amp', 'bf16'],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    lr, global_batch, frozen, _, _ = STAGES[RECIPES[name][3]]
    logged = [json.loads(line) for line in (next(work.glob('*/vis_data/scalars.json'))).read_text().splitlines()]
    lrs = [r['lr'] for r in logged if 'lr' in r]
    assert len(lrs) >= 60 and max(lrs) == pytest.approx(lr, rel=1e-2) and lrs[-1] < lr * 0.01
    from llmvision.registry import MODELS
    init = MODELS.build(Config.fromfile(str(smoke)).model).state_dict()  # the same seeds: the weights at step 0
    final = torch.load((work / 'last_checkpoint').read_text().strip(), weights_only=False)['state_dict']

    def moved(prefix):
        return any(not torch.equal(final[k].float(), init[k].float()) for k in init if k.startswith(prefix))
    assert moved('projector.') and not moved('vision_encoder.')
    assert moved('llm.') is not frozen
