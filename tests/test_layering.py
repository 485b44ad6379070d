"""One-way layering of the llmvision package (README "Layout", DESIGN.md "Layout").

Arrows point down: tools -> apis / configs -> checkpoint / datasets / engine -> models / evaluation /
visualization -> structures / registry / utils. Every import of every module (function-level ones
included) is read with ``ast``; an import of a room on a higher level is an error. Datasets also
never import ``llmvision.models`` nor build models through the ``MODELS`` registry, with one
exception: the REC selector's prompt serializer (a selector dataset must build the model's prompt).
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'llmvision'
LEVELS = [('apis',), ('checkpoint', 'datasets', 'engine'), ('models', 'evaluation', 'visualization'),
          ('structures', 'registry', 'utils')]
LEVEL = {room: i for i, rooms in enumerate(LEVELS) for room in rooms}
DATASETS_MAY_IMPORT = {'llmvision.models.selectors.serializer'}


def module_name(path: pathlib.Path, root: pathlib.Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imports(path: pathlib.Path, root: pathlib.Path = ROOT):
    """``(line, absolute module, imported names)`` of every import statement of a file."""
    name = module_name(path, root)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')[:len(package.split('.')) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            yield node.lineno, target, tuple(a.name for a in node.names)


def room(module: str):
    """``'llmvision.models.detectors.x'`` -> ``'models'``; None outside the package or at its root."""
    parts = module.split('.')
    return parts[1] if parts[0] == 'llmvision' and len(parts) > 1 else None


def library_files():
    return sorted(PACKAGE.rglob('*.py'))


def test_every_room_has_a_level():
    rooms = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / '__init__.py').exists()}
    rooms |= {p.stem for p in PACKAGE.glob('*.py') if p.name != '__init__.py'}
    assert rooms == set(LEVEL), 'add new rooms to LEVELS here and to the README layout'


def upward_imports(files, root: pathlib.Path = ROOT):
    """One line per import of a higher room (or of ``tools`` / ``configs``) in ``files``."""
    bad = []
    for path in files:
        src = room(module_name(path, root))
        for line, target, _ in imports(path, root):
            dst = room(target or '')
            where = f'{path.relative_to(root)}:{line}: {src or "llmvision"}'
            if (target or '').split('.')[0] in ('tools', 'configs'):
                bad.append(f'{where} imports {target} (scripts and configs sit above the library)')
            elif src is not None and dst is not None and dst != src and LEVEL[dst] < LEVEL[src]:
                bad.append(f'{where} (level {LEVEL[src]}) imports {target} (level {LEVEL[dst]})')
    return bad


def test_no_upward_imports():
    assert upward_imports(library_files()) == []


def test_datasets_do_not_import_models():
    bad = []
    for path in (PACKAGE / 'datasets').rglob('*.py'):
        for line, target, names in imports(path):
            where = f'{path.relative_to(ROOT)}:{line}'
            if room(target or '') == 'models' and target not in DATASETS_MAY_IMPORT:
                bad.append(f'{where}: imports {target}')
            if target == 'llmvision.registry' and 'MODELS' in names:
                bad.append(f'{where}: builds models through the MODELS registry')
    assert bad == []


def test_the_checker_sees_an_upward_import(tmp_path):
    """The check itself: a planted upward import (relative and absolute) is reported."""
    pkg = tmp_path / 'llmvision' / 'models' / 'detectors'
    pkg.mkdir(parents=True)
    (pkg / 'bad.py').write_text('from ...apis import inference\n'
                                'def f():\n    import llmvision.engine.launch\n'
                                'from llmvision.structures import boxes\n')
    bad = upward_imports([pkg / 'bad.py'], root=tmp_path)
    assert len(bad) == 2
    assert 'imports llmvision.apis' in bad[0] and 'imports llmvision.engine.launch' in bad[1]


@pytest.mark.parametrize('top', ['llmvision.engine', 'llmvision.apis'])
def test_engine_and_apis_do_not_import_each_other(top):
    other = {'llmvision.engine': 'apis', 'llmvision.apis': 'engine'}[top]
    files = (PACKAGE / top.split('.')[1]).rglob('*.py')
    assert [f'{p.relative_to(ROOT)}:{line}' for p in files for line, target, _ in imports(p)
            if room(target or '') == other] == []
