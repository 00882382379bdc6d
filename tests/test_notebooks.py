"""Every notebook runs top to bottom in a fresh kernel, in reduced mode, and draws its figures;
its markdown quotes no measured number that its cells did not compute.

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
    '05_family.ipynb': 6,                     # basic/bottleneck, v1/v2, A/B, ResNet/ResNeXt,
                                              # ResNeXt block, family
    '06_inside_the_network.ipynb': 12,        # the net, curves, 3 filter grids, digit, maps,
}                                             # photos, and exercise 1's digit and maps

# Numbers in a notebook's prose that read as measured: a percentage, a decimal,
# a ratio ("17 times"), a duration ("5 minutes", "20 s", "under a minute").  A
# result belongs in the cells: printed, or in a sentence built by
# `IPython.display.Markdown` from the values computed above it.  The few that
# define a setting or quote a source are allowed here, each with the words
# that say so (whitespace does not matter); every entry must still occur.
_COUNT = (r'(?:\d[\d,]*(?:\.\d+)?|an?|one|two|three|four|five|six|seven|eight|nine|ten|'
          r'eleven|twelve|few|several)')
MEASURED = re.compile(r'\d+(?:\.\d+)?\s*(?:%|percent\b)'                      # a percentage
                      r'|\d+\.\d+'                                            # a decimal
                      r'|\d+\s*times\b'                                       # a ratio
                      rf'|\b{_COUNT}\s+(?:ms|s|seconds|minutes?|hours?)\b',  # a duration
                      re.IGNORECASE)
URL = re.compile(r'https?://[^\s)>]+')
QUOTED_NUMBERS = {
    '01_residual_block': ('as d2l 1.0 does', 'Goyal et al. ([2017](), section 5.1)'),
    '02_resnet18_layer_by_layer': ("d2l's ResNet-18 ([section 8.6]())",),
    '03_training_resnet18': (
        "d2l's MXNet edition, d2l 0.17, and that of the current d2l 1.0",
        # the full-mode time of 03 measured on one idle 2-core machine (428 s), as an estimate
        'On the 2-core laptop CPU we measured it on, the whole notebook took about seven minutes'),
    '04_degradation': (
        # the full-mode time of 04 measured on one idle 2-core machine (454 s), as an estimate
        'On the 2-core laptop CPU we measured it on, the notebook took about eight minutes',
        # settings: He et al.'s rate scaled to batch 64, and the exercise's value
        'our batch, would be 0.05', 'set `LR = 0.05` at the top',
        # He et al. 2015, section 4.2
        'learning rate of 0.01 until its training error fell below 80% (section 4.2)'),
    '05_family': ("torchvision's ResNet-50, \"v1.5\"", "but d2l 1.0.3's code"),
}


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
def test_runs_in_reduced_mode_and_draws(path, executed_notebook):
    notebook = executed_notebook(path).notebook  # book.execute raises at a failing cell
    outputs = [output for cell in code(notebook) for output in cell.outputs]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == 'error']
    assert not errors, errors
    figures = sum('image/png' in output.get('data', {}) for output in outputs)
    assert figures >= EXPECTED_FIGURES.get(path.name, 0), \
        f'{path.name} drew {figures} figures, expected at least {EXPECTED_FIGURES[path.name]}'


def prose(notebook):
    """The markdown cells' text, links' addresses left out, whitespace collapsed."""
    return [' '.join(URL.sub('', cell.source).split())
            for cell in notebook.cells if cell.cell_type == 'markdown']


@pytest.mark.parametrize('text', [
    'ended at 31.2% against 7.0%', 'about 5 minutes on a 2-core CPU', 'it took 20 s',
    'well under a minute', 'about 17 times fewer', 'the two end 0.03 points apart',
    'one to two minutes', 'a few minutes', 'costs 18 percent'])
def test_measured_numbers_are_found(text):
    assert MEASURED.search(text)


@pytest.mark.parametrize('text', [
    'a 3x3 conv', 'ResNet-18 and the 56-layer net', 'a batch `(1, 64, 56, 56)`',
    'keeps every second pixel', '1,437 training images', r'weight decay $5 \cdot 10^{-4}$',
    '8 epochs of batches of 64, i.e. 1,000 steps', 'ten times larger'])
def test_definitions_are_not_measured_numbers(text):
    assert not MEASURED.search(text)


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda path: path.stem)
def test_markdown_quotes_no_measured_number(path):
    quoted = QUOTED_NUMBERS.get(path.stem, ())
    cells = prose(nbformat.read(path, as_version=4))
    unused = [phrase for phrase in quoted if not any(phrase in text for text in cells)]
    assert not unused, f'{path.name}: QUOTED_NUMBERS lists phrases it no longer has: {unused}'
    typed = []
    for text in cells:
        for phrase in quoted:
            text = text.replace(phrase, ' ')
        typed += [f'{m.group()!r} in "...{text[max(0, m.start() - 40):m.end() + 20]}..."'
                  for m in MEASURED.finditer(text)]
    if typed:
        pytest.fail(f'{path.name}: numbers typed into markdown that read as results; print them '
                    'or build the sentence with IPython.display.Markdown from the cells (or, '
                    'for a setting or a quotation, add the phrase to QUOTED_NUMBERS):\n'
                    + '\n'.join(typed), pytrace=False)
