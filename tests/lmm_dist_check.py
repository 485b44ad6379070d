"""Run by tests/test_lmm_llava_dist.py in a fresh process (one gloo rank on CPU): the tiny LLaVAModel of
test_lmm_llava_model under torch FSDP (decoder / CLIP layers as FSDP units) or DeepSpeed ZeRO-3 gives the
plain model's loss (and, for FSDP, gradients) and still generates. Prints one ``RESULT <json>`` line."""
import copy
import json
import os
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_lmm_llava_model import batch_data, build, step  # noqa: E402


def main(mode: str, port: str):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=port, RANK='0', WORLD_SIZE='1', LOCAL_RANK='0')
    dist.init_process_group('gloo', rank=0, world_size=1)
    model = build().train()
    ref_model = copy.deepcopy(model)
    ref = step(ref_model, batch_data())['loss']
    ref.backward()
    ref_grads = {n: p.grad for n, p in ref_model.named_parameters() if p.grad is not None}
    data = model.data_preprocessor(batch_data(), True)
    result = dict(ref_loss=ref.item())
    if mode == 'fsdp':
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        from torch.distributed.fsdp.wrap import ModuleWrapPolicy
        from transformers.models.clip.modeling_clip import CLIPEncoderLayer
        from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer
        wrapped = FSDP(model, auto_wrap_policy=ModuleWrapPolicy({Qwen2DecoderLayer, CLIPEncoderLayer}),
                       use_orig_params=True, device_id=torch.device('cpu'))
        loss = wrapped(**data, mode='loss')['loss']
        loss.backward()
        grads = {n.replace('_fsdp_wrapped_module.', ''): p.grad for n, p in wrapped.named_parameters()
                 if p.grad is not None}
        result['grad_mismatch'] = [n for n, g in ref_grads.items() if n not in grads or not torch.allclose(
            grads[n].reshape(g.shape), g, atol=1e-5)]
        result['num_grads'] = len(grads)
        wrapped.eval()
        run = wrapped
    else:
        import deepspeed
        cfg = dict(train_micro_batch_size_per_gpu=3, gradient_accumulation_steps=1,
                   zero_optimization=dict(stage=3), optimizer=dict(type='AdamW', params=dict(lr=1e-3)))
        run, *_ = deepspeed.initialize(model=model, config=cfg,
                                       model_parameters=[p for p in model.parameters() if p.requires_grad])
        loss = run(**data, mode='loss')['loss']
        run.backward(loss)
        run.step()
        run.eval()
    result['loss'] = loss.item()
    with torch.no_grad():
        test = model.data_preprocessor(batch_data())
        batch = model.prepare_batch(test['inputs'], test['data_samples'], 'left')
        result['generated'] = model.generate_ids(batch, max_new_tokens=3, eos_token_ids=[])
        result['tensor_shape'] = list(run(**test, mode='tensor')['logits'].shape)
    dist.destroy_process_group()
    print('RESULT ' + json.dumps(result))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
