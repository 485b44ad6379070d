"""Triton MSDA kernels vs the PyTorch reference: forward and all three gradients.

On CPU the kernels run in Triton's interpreter (``TRITON_INTERPRET=1``, which must be set before triton
is imported, hence the subprocess); on CUDA they run for real (``gpu`` marker).
"""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from llmvision.models.ops import multi_scale_deformable_attn, triton_available

CHECK = textwrap.dedent('''
    import torch
    from llmvision.models.ops import multi_scale_deformable_attn

    def layout(shapes, device):
        spatial = torch.tensor(shapes, dtype=torch.long, device=device)
        sizes = spatial[:, 0] * spatial[:, 1]
        return spatial, torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]]), int(sizes.sum())

    def compare(shapes, batch, queries, heads, head_dim, points, device, dtype, tol, seed=0, spread=1.4,
                same_point=False):
        torch.manual_seed(seed)
        spatial, starts, num_value = layout(shapes, device)
        levels = len(shapes)
        value = torch.randn(batch, num_value, heads, head_dim, device=device, dtype=dtype)
        loc = torch.rand(batch, queries, heads, levels, points, 2, device=device) * spread - (spread - 1) / 2
        if same_point:  # every query hits the same pixels: stresses the atomic scatter of grad_value
            loc = loc[:, :1].expand_as(loc).contiguous()
        loc[0, 0, 0, 0, 0] = torch.tensor([1e7, -1e7])  # far away: contributes nothing, no overflow
        weights = torch.rand(batch, queries, heads, levels, points, device=device)
        grad = torch.randn(batch, queries, heads * head_dim, device=device, dtype=dtype)
        results = {}
        # the reference runs in fp32 on the (possibly half) inputs; triton runs on the inputs as given
        for backend, run_dtype in (('pytorch', torch.float32), ('triton', dtype)):
            v = value.to(run_dtype).requires_grad_()
            l, w = (t.detach().clone().requires_grad_() for t in (loc, weights))
            out = multi_scale_deformable_attn(v, spatial, starts, l, w, backend=backend)
            assert out.dtype == run_dtype
            out.backward(grad.to(run_dtype))
            results[backend] = (out.float(), v.grad.float(), l.grad.float(), w.grad.float())
        for name, ref, got in zip(('out', 'value', 'loc', 'weights'), results['pytorch'], results['triton']):
            assert ref.shape == got.shape, (name, ref.shape, got.shape)
            scale = ref.abs().max().clamp_min(1.0)
            err = ((ref - got).abs().max() / scale).item()
            assert err < tol, f'{name}: relative max error {err:.3g} >= {tol} ({shapes}, {dtype})'
        return results
''')


def _run_interpreted(body):
    env = dict(os.environ, TRITON_INTERPRET='1')
    code = CHECK + textwrap.dedent(body)
    proc = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.skipif(not triton_available(), reason='triton not installed')
def test_triton_kernels_in_interpreter_match_pytorch():
    out = _run_interpreted('''
        # head_dim 3 (masked lanes), rows crossing the batch boundary, points outside the maps
        compare([(5, 6), (3, 4), (2, 1)], batch=2, queries=7, heads=2, head_dim=3, points=2,
                device='cpu', dtype=torch.float32, tol=2e-5)
        compare([(4, 4), (2, 2)], batch=1, queries=9, heads=1, head_dim=4, points=3, device='cpu',
                dtype=torch.float32, tol=2e-5, seed=1, same_point=True)
        print('ok')
    ''')
    assert 'ok' in out


def test_auto_uses_pytorch_on_cpu():
    torch.manual_seed(0)
    spatial = torch.tensor([[2, 3]])
    starts = torch.tensor([0])
    value = torch.randn(1, 6, 1, 2)
    loc = torch.full((1, 1, 1, 1, 1, 2), 0.5)
    weights = torch.ones(1, 1, 1, 1, 1)
    # (x, y) = (0.5, 0.5) on a 2x3 map is pixel (1.0, 0.5): the mean of rows 0 and 1 at column 1
    expected = 0.5 * (value[0, 1, 0] + value[0, 4, 0])
    torch.testing.assert_close(multi_scale_deformable_attn(value, spatial, starts, loc, weights)[0, 0], expected)


requires_cuda = pytest.mark.skipif(not (torch.cuda.is_available() and triton_available()),
                                   reason='needs CUDA and triton')


@pytest.mark.gpu
@requires_cuda
def test_triton_cuda_matches_pytorch_fp32():
    namespace = {}
    exec(CHECK, namespace)
    namespace['compare']([(40, 50), (20, 25), (10, 13), (5, 7)], batch=2, queries=300, heads=8, head_dim=32,
                         points=4, device='cuda', dtype=torch.float32, tol=1e-4)
    namespace['compare']([(7, 9), (4, 5)], batch=3, queries=33, heads=3, head_dim=24, points=3,
                         device='cuda', dtype=torch.float32, tol=1e-4, same_point=True)


@pytest.mark.gpu
@requires_cuda
@pytest.mark.parametrize('dtype,tol', [(torch.float16, 5e-3), (torch.bfloat16, 3e-2)])
def test_triton_cuda_half_precision(dtype, tol):
    namespace = {}
    exec(CHECK, namespace)
    namespace['compare']([(40, 50), (20, 25), (10, 13), (5, 7)], batch=2, queries=300, heads=8, head_dim=32,
                         points=4, device='cuda', dtype=dtype, tol=tol)


@pytest.mark.gpu
@requires_cuda
def test_auto_picks_triton_on_cuda():
    from llmvision.models.ops import resolve_backend
    assert resolve_backend('auto', torch.device('cuda')) == 'triton'


def _compile_signature(kernel_args, dtype):
    types = {name: f'*{dtype}' if name in ('value_ptr', 'out_ptr', 'grad_out_ptr') else
             '*i64' if name in ('shapes_ptr', 'starts_ptr') else '*fp32'
             for name in kernel_args if name.endswith('_ptr')}
    types.update({name: 'i32' for name in ('total_rows', 'num_queries', 'num_value', 'num_heads', 'head_dim')})
    types.update({name: 'constexpr' for name in ('NUM_LEVELS', 'NUM_POINTS', 'BLOCK_Q', 'BLOCK_D')})
    return {name: types[name] for name in kernel_args}


@pytest.mark.slow
@pytest.mark.skipif(not triton_available(), reason='triton not installed')
@pytest.mark.parametrize('dtype', ['fp32', 'bf16'])
def test_triton_kernels_compile_for_sm90_without_gpu(dtype):
    """Ahead-of-time compile to a cubin for an H100 target (no device needed): catches errors that the
    interpreter does not see (types, layouts) in the real code-generation path."""
    import inspect

    import triton
    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError:
        pytest.skip('this triton has no ahead-of-time compile API')
    from llmvision.models.ops import msda_triton
    for kernel in (msda_triton._msda_fwd_kernel, msda_triton._msda_bwd_kernel):
        names = list(inspect.signature(kernel.fn).parameters)
        block_q, block_d = msda_triton._launch_config(32)
        source = ASTSource(kernel, _compile_signature(names, dtype),
                           constexprs={'NUM_LEVELS': 4, 'NUM_POINTS': 4, 'BLOCK_Q': block_q, 'BLOCK_D': block_d})
        compiled = triton.compile(source, target=GPUTarget('cuda', 90, 32))
        assert 'cubin' in compiled.asm and len(compiled.asm['cubin']) > 0
