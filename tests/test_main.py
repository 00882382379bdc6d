"""Tests of ``python -m gluon_resnet``: the list of command-line tools."""
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gluon_resnet
from gluon_resnet import __main__ as main_module

PACKAGE = Path(gluon_resnet.__file__).parent


def run(*args):
    return subprocess.run([sys.executable, '-m', 'gluon_resnet', *args], capture_output=True,
                          text=True, timeout=120)


def test_lists_the_tools_and_exits_0():
    result = run()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert 'each lists its options with --help' in lines[0]
    assert lines[-1] == 'for example: python -m gluon_resnet.train --help'
    for tool, about in main_module.TOOLS:
        assert re.search(rf'^  python -m gluon_resnet\.{tool} +{re.escape(about)}$',
                         result.stdout, re.M)
    assert run('--help').stdout == result.stdout


def test_every_tool_is_listed():
    """The table names exactly the modules that run as ``python -m``."""
    runnable = {path.stem for path in PACKAGE.glob('*.py')
                if path.stem != '__main__'
                and re.search(r"^if __name__ == '__main__':", path.read_text(), re.M)}
    assert runnable >= {'train', 'shapes'}
    listed = [tool for tool, _ in main_module.TOOLS]
    assert sorted(listed) == sorted(runnable)


@pytest.mark.parametrize('argument, hint', [
    ('train', 'run python -m gluon_resnet.train'),
    ('--list', 'the tools are book, export, launch, predict, shapes, train'),
])
def test_other_arguments_are_one_line_and_exit_2(argument, hint):
    result = run(argument)
    assert result.returncode == 2 and result.stdout == ''
    assert result.stderr == (f'python -m gluon_resnet: error: unexpected argument '
                             f'{argument!r}: {hint}\n')


def test_imports_only_sys():
    """It needs no MXNet of its own, so it stays quick whatever the package imports."""
    tree = ast.parse((PACKAGE / '__main__.py').read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    assert imported == {'sys'}
    assert not any(isinstance(node, ast.ImportFrom) for node in ast.walk(tree))
