"""Config layout rule (README "Configs"): a config reads its bases in one ``read_base()`` block and a
base reads no other base, except the model-size variants, which extend the Swin-T model file; so no
config is more than two ``read_base`` levels deep."""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
SIZE_VARIANTS = {'configs/grounding_dino/grounding_dino_swin_b.py', 'configs/grounding_dino/grounding_dino_swin_l.py'}


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
    assert nested == SIZE_VARIANTS
    assert max(depth(c) for c in configs) == 2
    assert {str(c.relative_to(ROOT)) for c in configs if depth(c) == 2} == {
        str(c.relative_to(ROOT)) for c in configs if set(map(str, bases(c))) & {str(ROOT / s) for s in SIZE_VARIANTS}}
