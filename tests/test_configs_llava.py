"""configs/llava/ LLaVA-1.5 recipes: each loads with the recipe's values (REFERENCE.md section 8), the warm-up /
cosine schedule converts to iterations, and building with a missing local folder names what to put where."""
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
