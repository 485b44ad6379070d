"""Fault injection (issue 17): each bad input a probe found, as a test, plus a NaN run, a kill
between the checkpoint's temporary file and its rename, and the NaN guard under 2 gloo ranks.

The training faults use a toy regression model under mmengine's Runner with the project's
runtime config (``configs/_base_/runtime.py``, where the guard is on by default): one
parameter ``w``, loss terms ``loss_fit = (w x - 1)^2`` and ``loss_log = 0.01 log(z)``, so a
sample with ``z < 0`` makes exactly ``loss_log`` NaN at a known iteration, and ``z = 0`` under a
square root gives a finite loss with an infinite gradient. This file is also the entry point of
the torchrun workers of the 2-rank test (``python tests/test_faults.py dist-worker DIR``).
"""
import importlib.util
import json
import os
import os.path as osp
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
TINY_CONFIG = ROOT / 'configs/grounding_dino/grounding_dino_tiny_synthetic.py'


# --- the toy training run ---------------------------------------------------------------------

def _toy_classes():
    from mmengine.model import BaseModel

    class ToyRegression(BaseModel):
        """``w`` fitted to ``w x = 1``; a ``z`` column feeds ``loss_log`` (and ``loss_sqrt``)."""

        def __init__(self, sqrt_term: bool = False, fit_scale: float = 1.0):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor(0.5))
            self.sqrt_term, self.fit_scale = sqrt_term, fit_scale

        def forward(self, inputs, data_samples=None, mode='loss'):
            x, z = inputs[:, 0], inputs[:, 1]
            loss_fit = self.fit_scale * ((self.w * x - 1) ** 2).mean()
            if self.sqrt_term:  # finite loss at z = 0, infinite gradient
                return dict(loss_fit=loss_fit, loss_sqrt=torch.sqrt(z * self.w.abs()).mean())
            return dict(loss_fit=loss_fit, loss_log=0.01 * torch.log(z + 0 * self.w).mean())

    class ToyData(torch.utils.data.Dataset):
        def __init__(self, zs):
            self.zs = zs

        def __len__(self):
            return len(self.zs)

        def __getitem__(self, i):
            return dict(inputs=torch.tensor([1.0 + 0.1 * i, float(self.zs[i])]))

    return ToyRegression, ToyData


def toy_runner(work_dir, zs, guard=None, max_iters=None, max_keep=1, lr=0.1, launcher='none', **model_kwargs):
    """A Runner over the toy data (one sample per iteration, in order) with the runtime config's
    default hooks; ``guard`` overrides the ``non_finite`` hook's arguments."""
    from mmengine.config import Config
    from mmengine.hooks import CheckpointHook
    from mmengine.runner import Runner

    import llmvision  # noqa: F401
    ToyRegression, ToyData = _toy_classes()
    runtime = Config.fromfile(str(ROOT / 'configs/_base_/runtime.py'))
    hooks = dict(runtime.default_hooks)
    hooks['logger'] = dict(type='LoggerHook', interval=1)
    hooks['checkpoint'] = dict(type=CheckpointHook, interval=1, by_epoch=False, max_keep_ckpts=max_keep)
    if guard is not None:
        hooks['non_finite'] = dict(hooks['non_finite'], **guard)
    return Runner(
        model=ToyRegression(**model_kwargs), work_dir=str(work_dir), default_scope='llmvision',
        train_dataloader=dict(dataset=ToyData(zs), sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=1, num_workers=0, collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=lr)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters or len(zs)), default_hooks=hooks,
        env_cfg=dict(dist_cfg=dict(backend='gloo')), launcher=launcher, log_level='WARNING')


def _saved_w(path) -> float:
    return float(torch.load(path, map_location='cpu', weights_only=False)['state_dict']['w'])


def test_nan_loss_stops_at_its_iteration_and_keeps_the_last_finite_checkpoint(tmp_path):
    zs = [1, 1, 1, -1, 1, 1]  # loss_log is NaN at iteration 4
    runner = toy_runner(tmp_path, zs)
    with pytest.raises(RuntimeError, match=r'non-finite loss at iteration 4: .*loss_log=nan') as err:
        runner.train()
    assert 'loss_fit' not in str(err.value)  # only the terms that went non-finite are named
    last = (tmp_path / 'last_checkpoint').read_text().strip()
    assert osp.basename(last) == 'iter_3.pth' and osp.isfile(last)  # not rotated away by max_keep_ckpts=1
    assert 'iter_3.pth' in str(err.value)
    assert not (tmp_path / 'iter_4.pth').exists()
    assert torch.isfinite(torch.tensor(_saved_w(last)))
    assert torch.isfinite(runner.model.w).all()  # the NaN step was not applied


def test_skip_mode_counts_and_stops_after_too_many_in_a_row(tmp_path):
    runner = toy_runner(tmp_path / 'one', [1, 1, -1, 1, 1], guard=dict(action='skip', max_consecutive=1))
    runner.train()  # one NaN step: skipped, the run finishes
    guard = next(h for h in runner.hooks if type(h).__name__ == 'NonFiniteGuardHook')
    assert guard.num_skipped == 1
    assert torch.isfinite(torch.tensor(_saved_w(tmp_path / 'one' / 'iter_5.pth')))
    runner = toy_runner(tmp_path / 'two', [1, 1, -1, -1, 1], guard=dict(action='skip', max_consecutive=1))
    with pytest.raises(RuntimeError, match=r'iteration 4: .*2 non-finite steps in a row'):
        runner.train()


def test_infinite_gradient_with_finite_loss_is_caught_before_the_step(tmp_path):
    runner = toy_runner(tmp_path, [1, 1, 0, 1], sqrt_term=True)
    with pytest.raises(RuntimeError, match=r'non-finite gradient at iteration 3: the loss terms are finite'):
        runner.train()
    assert torch.isfinite(runner.model.w).all()


def test_weights_that_overflow_are_never_saved(tmp_path):
    # finite loss, finite gradient, but an update to inf: the checkpoint of that iteration is refused
    runner = toy_runner(tmp_path, [1, 1, 1, 1], lr=1e38, fit_scale=100.0)  # w: 0.5 + 1e38 * 100 = inf
    with pytest.raises(RuntimeError, match='non-finite weights after iteration 1'):
        runner.train()
    assert not list(tmp_path.glob('iter_*.pth'))


def _train_main(argv):
    spec = importlib.util.spec_from_file_location('llmvision_train_tool', ROOT / 'tools/train.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool.main(argv)


def test_unknown_optimizer_type_names_the_key_before_building(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('LOCAL_RANK', '0')  # the tool exports it
    with pytest.raises(SystemExit) as exit_info:
        _train_main([str(TINY_CONFIG), '--work-dir', str(tmp_path), '--cfg-options',
                     'optim_wrapper.optimizer.type=AdamWW', f'train_dataloader.dataset.data_root={tmp_path}/none'])
    assert exit_info.value.code == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith('error:')]
    assert len(err) == 1 and "optim_wrapper.optimizer.type='AdamWW'" in err[0] and 'AdamW' in err[0]


# --- demo ---------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def demo_ckpt(synthetic_data, tmp_path_factory):
    """A random-init checkpoint of the tiny synthetic model and its --cfg-options."""
    from llmvision.registry import MODELS
    from llmvision.utils.config import load_config
    opts = [f'model.text_encoder.tokenizer={synthetic_data.bert_tokenizer}']
    cfg = load_config(str(TINY_CONFIG), {'model.text_encoder.tokenizer': str(synthetic_data.bert_tokenizer)})
    torch.manual_seed(0)
    ckpt = tmp_path_factory.mktemp('faults_demo') / 'tiny.pth'
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()), ckpt)
    return ckpt, opts


def _demo(argv, capsys):
    """Run tools/image_demo.py in this process; returns (exit code, 'error:' lines, stderr)."""
    spec = importlib.util.spec_from_file_location('llmvision_image_demo', ROOT / 'tools/image_demo.py')
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    try:
        demo.main(argv)
        code = 0
    except SystemExit as exit_info:
        code = exit_info.code
    err = capsys.readouterr().err
    return code, [ln for ln in err.splitlines() if ln.startswith('error:')], err


@pytest.fixture
def no_model_build(monkeypatch):
    """Fail the test if a model is built: the input checks must come first."""
    from llmvision.registry import MODELS

    def build(*args, **kwargs):
        raise AssertionError('the model was built before the bad input was found')
    monkeypatch.setattr(MODELS, 'build', build)


@pytest.mark.parametrize('case', ['text_weights', 'rec_dots', 'cuda_without_gpu'])
def test_demo_bad_input_is_one_line_before_the_model_loads(case, tmp_path, capsys, synthetic_data, no_model_build):
    if case == 'cuda_without_gpu' and torch.cuda.is_available():
        pytest.skip('needs a machine without CUDA')
    image = str(synthetic_data.image_dir / 'val_000000.png')
    weights = tmp_path / 'weights.pth'
    weights.write_text('these are not weights\n' if case == 'text_weights' else '')
    if case != 'text_weights':
        torch.save(dict(state_dict={}), weights)
    argv = [image, str(TINY_CONFIG), '--weights', str(weights), '--text', 'red circle .', '--out-dir', str(tmp_path)]
    argv += {'text_weights': [], 'rec_dots': ['--rec', '--text', ' . . '],
             'cuda_without_gpu': ['--device', 'cuda']}[case]
    code, err, _ = _demo(argv, capsys)
    assert code == 1 and len(err) == 1, err
    expect = {'text_weights': f'{weights}: not a checkpoint', 'rec_dots': 'empty text for rec mode',
              'cuda_without_gpu': "--device 'cuda': no CUDA GPU"}[case]
    assert expect in err[0]


def test_demo_folder_goes_on_past_a_corrupt_image(tmp_path, capsys, synthetic_data, demo_ckpt):
    src = tmp_path / 'imgs'
    src.mkdir()
    for name in ('a.png', 'c.png'):
        (src / name).write_bytes((synthetic_data.image_dir / 'val_000000.png').read_bytes())
    (src / 'b.png').write_bytes(b'\x89PNG truncated')
    ckpt, opts = demo_ckpt
    code, err, stderr = _demo([str(src), str(TINY_CONFIG), '--weights', str(ckpt), '--text', 'red circle .',
                               '--out-dir', str(tmp_path / 'out'), '--cfg-options', *opts], capsys)
    assert code == 1
    assert (tmp_path / 'out/vis/a.png').exists() and (tmp_path / 'out/vis/c.png').exists()
    assert not (tmp_path / 'out/vis/b.png').exists()
    assert len(err) == 1 and '1 of 3 image(s) failed' in err[0] and 'b.png' in err[0], stderr[-2000:]


# --- ground truth, checkpoints, pickles ---------------------------------------------------------

def test_evaluator_rejects_the_box_the_dataset_loader_rejects(tmp_path):
    from llmvision.datasets import LVISDataset
    from llmvision.evaluation import LVISFixedAPMetric
    ann = dict(images=[dict(id=1, height=100, width=100, file_name='1.jpg')],
               categories=[dict(id=1, name='cat', frequency='f')],
               annotations=[dict(id=7, image_id=1, category_id=1, bbox=[10, 10, -5, 20], area=100)])
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps(ann))
    with pytest.raises(ValueError, match=r'gt\.json.*annotation id 7 bbox is degenerate') as loader_err:
        LVISDataset(ann_file=str(path), pipeline=[])
    with pytest.raises(ValueError, match=r'gt\.json: annotations\[0\] \(id 7\): bbox is degenerate') as metric_err:
        LVISFixedAPMetric(str(path)).gt
    # one rule: the same words in both messages
    assert 'degenerate (needs w > 0 and h > 0): [10, 10, -5, 20]' in str(loader_err.value)
    assert 'degenerate (needs w > 0 and h > 0): [10, 10, -5, 20]' in str(metric_err.value)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_malicious_checkpoint_error_names_the_blocked_global(tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint

    import llmvision  # noqa: F401  (installs the safe loader)
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, x=_RunsCode(tmp_path / 'ran')), path)
    with pytest.raises(RuntimeError, match=r'evil\.pth: .*unsupported global (posix|os|nt)\.system'):
        _load_checkpoint(str(path), map_location='cpu')
    assert not (tmp_path / 'ran').exists()


def test_refcoco_refs_pickle_goes_through_the_restricted_unpickler(tmp_path, synthetic_data):
    import shutil

    from llmvision.datasets import RefCOCODataset
    from llmvision.datasets.rec import load_refer_records
    folder = tmp_path / 'refcoco'
    folder.mkdir()
    shutil.copy(synthetic_data.refcoco_root / 'refcoco' / 'instances.json', folder / 'instances.json')
    (folder / 'refs(unc).p').write_bytes(pickle.dumps([dict(ref_id=1, split='val', x=_RunsCode(tmp_path / 'ran'))]))
    for load in (lambda: RefCOCODataset(data_root=str(tmp_path), split='val', pipeline=[]),
                 lambda: load_refer_records(str(tmp_path), split='val')):
        with pytest.raises(ValueError, match=r'refs\(unc\)\.p: blocked global (posix|os|nt)\.system'):
            load()
        assert not (tmp_path / 'ran').exists()


def test_refcoco_readers_share_one_policy(tmp_path, synthetic_data):
    """The dataset and the selector records read the same refs and reject the same bad ref."""
    import shutil

    from llmvision.datasets import BadSamplePolicy, RefCOCODataset
    from llmvision.datasets.rec import load_refer_records
    src = synthetic_data.refcoco_root / 'refcoco'
    folder = tmp_path / 'refcoco'
    folder.mkdir()
    refs = pickle.loads((src / 'refs(unc).p').read_bytes())
    val = [r for r in refs if r['split'] == 'val']
    val[0]['sentences'][0]['sent'] = '  '
    shutil.copy(src / 'instances.json', folder / 'instances.json')
    (folder / 'refs(unc).p').write_bytes(pickle.dumps(refs))
    for load in (lambda: RefCOCODataset(data_root=str(tmp_path), split='val', pipeline=[]),
                 lambda: load_refer_records(str(tmp_path), split='val')):
        with pytest.raises(ValueError, match=rf"ref #\d+ \(ref_id {val[0]['ref_id']}\): sentences\[0\]\.sent is empty"):
            load()
    dataset = RefCOCODataset(data_root=str(tmp_path), split='val', pipeline=[], on_bad_sample='skip')
    records = load_refer_records(str(tmp_path), split='val', bad_samples=BadSamplePolicy('skip'))
    assert [dataset.get_data_info(i)['sent_id'] for i in range(len(dataset))] == [r['sent_id'] for r in records]
    assert len(records) == sum(len(r['sentences']) for r in val[1:])
    assert dataset.bad_samples.skipped_by_reason() == {'bad text': 1}


def test_skipped_samples_summary_counts_worker_skips_per_reason(tmp_path, synthetic_data):
    from mmengine.logging import MMLogger

    from llmvision.datasets import LVISDataset
    from llmvision.datasets.transforms import LoadImageFromFile
    from llmvision.engine.hooks.bad_sample_summary import BadSampleSummaryHook
    ann = json.loads(Path(synthetic_data.lvis_val).read_text())
    ann['images'][1]['file_name'] = 'missing.png'
    ann['annotations'].append(dict(id=10 ** 6, image_id=ann['images'][2]['id'], category_id=ann['categories'][0]['id'],
                                   bbox=[5, 5, 0, 3], area=0))
    path = tmp_path / 'lvis.json'
    path.write_text(json.dumps(ann))
    dataset = LVISDataset(ann_file=str(path), data_prefix=dict(img=str(synthetic_data.image_dir) + '/'),
                          pipeline=[dict(type=LoadImageFromFile)], on_bad_sample='skip')
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, [0, 1]), batch_size=1, num_workers=1,
                                         collate_fn=lambda batch: batch)
    assert len(list(loader)) == 2  # the missing image was skipped in the worker and refetched

    class FakeRunner:
        train_dataloader = type('Loader', (), {'dataset': dataset})()
    logger = MMLogger.get_instance('test_faults_summary', log_file=str(tmp_path / 'log.txt'))
    BadSampleSummaryHook().after_train(FakeRunner())
    for handler in logger.handlers:
        handler.flush()
    assert 'skipped samples (train): 2 = bad box 1, missing image 1' in (tmp_path / 'log.txt').read_text()


# --- subprocesses ------------------------------------------------------------------------------

def _env():
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1', PYTHONPATH=str(ROOT))
    env.pop('LOCAL_RANK', None)
    return env


def test_kill_between_temp_file_and_rename_leaves_last_checkpoint_loadable(tmp_path):
    """SIGKILL in ``os.replace`` of ``iter_3.pth`` (its temporary file fully written), in a forked child."""
    import multiprocessing
    child = multiprocessing.get_context('fork').Process(target=_kill_at_rename, args=(str(tmp_path), 'iter_3.pth'))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == -signal.SIGKILL
    assert not (tmp_path / 'iter_3.pth').exists()
    assert list(tmp_path.glob('.iter_3.pth.*.tmp'))  # the kill came after the temporary file
    last = (tmp_path / 'last_checkpoint').read_text().strip()
    assert osp.basename(last) == 'iter_2.pth'
    from mmengine.runner.checkpoint import _load_checkpoint

    import llmvision  # noqa: F401
    assert set(_load_checkpoint(last, map_location='cpu')['state_dict']) == {'w'}


@pytest.mark.slow
def test_nan_guard_two_gloo_ranks_stop_together(tmp_path):
    """Rank 1 alone sees a NaN at iteration 3: both ranks stop there, no rank hangs, exit != 0."""
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', '29571',
           __file__, 'dist-worker', str(tmp_path)]
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    assert out.count('error: non-finite loss at iteration 3: loss=nan, loss_log=nan') == 1, out[-3000:]
    for rank in (0, 1):
        assert (tmp_path / f'stopped_rank{rank}').read_text() == '3'
    last = (tmp_path / 'last_checkpoint').read_text().strip()
    assert osp.basename(last) == 'iter_2.pth' and torch.isfinite(torch.tensor(_saved_w(last)))


def _kill_at_rename(work_dir, name):
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if osp.basename(str(dst)) == name:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst, *args, **kwargs)
    import llmvision  # noqa: F401  (atomic writes)
    os.replace = replace
    toy_runner(work_dir, [1, 1, 1, 1], max_keep=5).train()


def _dist_worker(work_dir):
    from llmvision.engine.hooks.non_finite_guard import NonFiniteError
    rank = int(os.environ['RANK'])
    zs = [1] * 10
    if rank == 1:  # DefaultSampler: iteration i of rank r reads sample 2 i + r; iteration 3 of rank 1 only
        zs[5] = -1
    runner = toy_runner(work_dir, zs, max_iters=5, launcher='pytorch')
    try:
        runner.train()
    except NonFiniteError as err:
        Path(work_dir, f'stopped_rank{rank}').write_text(str(runner.iter + 1))
        if rank == 0:
            print(f'error: {err}', file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    if sys.argv[1] == 'dist-worker':
        _dist_worker(sys.argv[2])
