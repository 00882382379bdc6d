"""Every notebook runs top to bottom in a fresh kernel, in reduced mode, and draws its figures.

Reduced mode is ``GLUON_RESNET_QUICK=1``: each notebook reads it in its first
code cell and shrinks its epochs and data.  All six together take about two
to three minutes on a 2-core CPU.  The kernel is this Python's: the
``python3`` kernel spec launches ``python``, which ``jupyter_client``
replaces by ``sys.executable``; ``test_kernel_is_this_python`` checks it.
"""
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / 'notebooks'
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob('*.ipynb'))
KERNEL = 'python3'
CELL_TIMEOUT = 300  # seconds per cell; reduced mode needs far less

# Figures (image/png outputs) each notebook draws at least, in reduced mode;
# a diagram of `gluon_resnet.draw` counts as one.  Exercises left unfilled draw
# nothing, except 06's exercise 1 (another digit, index 0 as stored).
# 03 draws 3 more, and 04 shows Fashion-MNIST rather than digits, when the
# Fashion-MNIST files are available; these are the counts without them.
EXPECTED_FIGURES = {
    '01_residual_block.ipynb': 2,             # two residual blocks, gradient norms
    '02_resnet18_layer_by_layer.ipynb': 3,    # the net, params/MACs per stage, MACs vs input size
    '03_training_resnet18.ipynb': 4,          # the net, live curves, confusion matrix, errors
    '04_degradation.ipynb': 6,                # plain/residual block, 4 live curves, comparison
    '05_family.ipynb': 5,                     # basic/bottleneck, v1/v2, A/B, ResNeXt, family
    '06_inside_the_network.ipynb': 12,        # the net, curves, 3 filter grids, digit, maps,
}                                             # photos, and exercise 1's digit and maps


def code(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == 'code']


def execute(notebook, monkeypatch):
    """Run ``notebook`` in a fresh kernel with cwd ``notebooks/``, in reduced mode."""
    monkeypatch.setenv('GLUON_RESNET_QUICK', '1')  # the kernel inherits the environment
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name=KERNEL,
                            resources={'metadata': {'path': str(NOTEBOOKS_DIR)}})
    client.execute()  # raises CellExecutionError at the first failing cell
    return notebook


def test_the_six_notebooks_exist():
    missing = set(EXPECTED_FIGURES) - {path.name for path in NOTEBOOKS}
    assert not missing, f'notebooks missing from {NOTEBOOKS_DIR}: {sorted(missing)}'


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda path: path.stem)
def test_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for i, cell in enumerate(code(notebook)):
        assert cell.outputs == [], f'{path.name}: code cell {i} has stored outputs'
        assert cell.execution_count is None, f'{path.name}: code cell {i} has an execution count'


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda path: path.stem)
def test_reads_quick_mode_first_and_defines_no_layers(path):
    cells = code(nbformat.read(path, as_version=4))
    assert "os.environ.get('GLUON_RESNET_QUICK') == '1'" in cells[0].source, \
        f'{path.name}: the first code cell must read GLUON_RESNET_QUICK'
    source = '\n'.join(cell.source for cell in cells)
    assert not re.search(r'^\s*class \w', source, re.MULTILINE), \
        f'{path.name} defines a class: import blocks from gluon_resnet'
    for loop in ('autograd.record', 'Trainer(', '.backward('):
        assert loop not in source, \
            f'{path.name} contains {loop!r}: train with gluon_resnet.training.fit'
    assert 'gluon_resnet' in source


def test_kernel_is_this_python(monkeypatch):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        'import sys, gluon_resnet\nprint(sys.executable)')])
    output = execute(notebook, monkeypatch).cells[0].outputs[0]
    assert Path(output.text.strip()).resolve() == Path(sys.executable).resolve()


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda path: path.stem)
def test_runs_in_reduced_mode_and_draws(path, monkeypatch):
    notebook = execute(nbformat.read(path, as_version=4), monkeypatch)
    outputs = [output for cell in code(notebook) for output in cell.outputs]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == 'error']
    assert not errors, errors
    figures = sum('image/png' in output.get('data', {}) for output in outputs)
    assert figures >= EXPECTED_FIGURES.get(path.name, 0), \
        f'{path.name} drew {figures} figures, expected at least {EXPECTED_FIGURES[path.name]}'
