"""Config layout rule (README "Configs"): a config reads its bases in one ``read_base()`` block; a
``_base_`` part reads no other base; a method config may extend one other method config (a model-size
variant extends the Swin-T model file, an evaluation config its training config); so no config is
more than two ``read_base`` levels deep."""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def bases(path: pathlib.Path):
    """Files imported inside ``with read_base():`` of a config."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.With) and any(
                isinstance(item.context_expr, ast.Call) and getattr(item.context_expr.func, 'id', '') == 'read_base'
                for item in node.items):
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.level, f'{path}: only relative imports in read_base'
                folder = path.parent
                for _ in range(stmt.level - 1):
                    folder = folder.parent
                out.append(folder.joinpath(*stmt.module.split('.')).with_suffix('.py'))
    return out


def depth(path):
    return 1 + max((depth(b) for b in bases(path)), default=-1) if bases(path) else 0


def test_read_base_depth_and_nesting():
    configs = sorted((ROOT / 'configs').rglob('*.py'))
    read = {b for c in configs for b in bases(c)}
    assert all(b.exists() for b in read)
    nested = {str(c.relative_to(ROOT)) for c in configs if c in read and bases(c)}
    assert not {n for n in nested if n.startswith('configs/_base_/')}, 'a _base_ part reads another base'
    assert {f'configs/grounding_dino/grounding_dino_swin_{s}.py' for s in 'bl'} <= nested
    assert max(depth(c) for c in configs) == 2
