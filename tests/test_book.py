"""``python -m gluon_resnet.book``: the notebooks as a static site, checked in
headless Chromium (Debian's ``chromium``, which ``.ci/run`` installs).

The site is built from the reduced-mode runs the notebook tests make too
(``executed_notebook``); a screenshot of every page is kept in
``test-artifacts/book/``.
"""
import os
import re
from pathlib import Path

import pytest

from browser import CHROMIUM, Browser
from conftest import cli_error
from gluon_resnet import book
from gluon_resnet._cli import run

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(book.NOTEBOOKS_DIR.glob('*.ipynb'))
SCREENSHOTS = ROOT / 'test-artifacts' / 'book'
# Ready once MathJax has typeset the page (it queues the typesetting on load).
MATHJAX_DONE = ('window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 '
                '&& !MathJax.Hub.queue.running && document.querySelector(".MathJax_Processing") '
                '=== null')


def needs_chromium():
    if CHROMIUM is None:
        message = 'chromium is not installed: apt-get install chromium'
        if os.environ.get('CI'):
            pytest.fail(f'{message} (.ci/run installs it)')
        pytest.skip(message)


@pytest.fixture(scope='module')
def site(tmp_path_factory, executed_notebook):
    out = tmp_path_factory.mktemp('book') / 'site'
    pages = [executed_notebook(path) for path in NOTEBOOKS]
    sizes = book.write_site(pages, out, quick=True)
    return out, pages, sizes


def test_the_site_has_an_index_and_a_page_per_notebook(site):
    out, pages, sizes = site
    assert sorted(sizes) == sorted(['index.html', *(path.stem + '.html' for path in NOTEBOOKS)])
    index = (out / 'index.html').read_text()
    for page in pages:
        title, summary = book.about(page.notebook)
        assert title in index and re.search(rf'ran in {page.seconds:.0f} s', index)
        assert f'href="{page.html_name}"' in index
    assert 'reduced mode' in index
    assert (out / book.MATHJAX_DIR / 'MathJax.js').is_file()
    for name in sizes:  # nothing is fetched from the internet
        assert not re.search(r'<(?:script|link)[^>]+(?:src|href)="https?:',
                             (out / name).read_text()), name


def test_about_takes_the_title_and_first_paragraph():
    import nbformat
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        '# 7. Something\n\nWhat it teaches,\nin two lines.\n\nMore.')])
    assert book.about(notebook) == ('7. Something', 'What it teaches,\nin two lines.')


def test_pages_in_a_browser(site):
    """Every page loads without console errors, every figure decodes, the
    formulas are typeset, every link between pages resolves."""
    needs_chromium()
    out, pages, _ = site
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with Browser(out.parent / 'profile') as browser:
        errors = browser.open(out / 'index.html')
        assert errors == []
        browser.screenshot(SCREENSHOTS / 'index.png')
        for page in pages:
            path = out / page.html_name
            errors = browser.open(path, ready=MATHJAX_DONE)
            assert errors == [], (page.html_name, errors)
            browser.screenshot(SCREENSHOTS / (path.stem + '.png'))
            widths = browser.evaluate('Array.from(document.images).map(i => i.naturalWidth)')
            figures = sum('image/png' in output.get('data', {}) for cell in page.notebook.cells
                          for output in cell.get('outputs', []))
            assert len(widths) >= figures > 0 and all(w > 0 for w in widths), page.html_name
            has_math = any('$' in cell.source for cell in page.notebook.cells
                           if cell.cell_type == 'markdown')
            typeset = browser.evaluate('document.querySelectorAll("math").length')
            failed = browser.evaluate('document.querySelectorAll(".MathJax_Error, merror").length')
            assert failed == 0 and (typeset > 0 if has_math else True), page.html_name
            links = browser.evaluate('Array.from(document.querySelectorAll("nav.book a"))'
                                     '.map(a => a.getAttribute("href"))')
            assert 'index.html' in links and len(links) >= 2
            for link in links:
                assert (out / link).is_file(), (page.html_name, link)


def test_bad_notebooks_folder(tmp_path, capsys):
    assert cli_error(book.main, book.PROG, ['--notebooks', tmp_path], capsys) == (
        f"{tmp_path}: no notebooks (*.ipynb) there: give --notebooks DIR, the notebooks/ "
        "folder of the project's source")


def test_a_failing_notebook_is_one_line_and_keeps_the_old_site(tmp_path, capsys):
    import nbformat
    notebooks = tmp_path / 'notebooks'
    notebooks.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell('# Broken\n\nIt fails.'),
        nbformat.v4.new_code_cell('x = 1'), nbformat.v4.new_code_cell('1 / 0')]),
        notebooks / 'broken.ipynb')
    old = tmp_path / 'site'
    old.mkdir()
    (old / 'index.html').write_text('the old site')
    with pytest.raises(SystemExit) as exit_info:
        run(lambda: book.main(['--notebooks', str(notebooks), '--out', str(old)]), book.PROG)
    assert exit_info.value.code == 2
    progress, error = capsys.readouterr().err.splitlines()
    assert progress == 'running broken.ipynb ...'
    assert error == (f'{book.PROG}: error: broken.ipynb: cell 3 raised ZeroDivisionError: '
                     'division by zero')
    assert [p.name for p in old.iterdir()] == ['index.html']
    assert (old / 'index.html').read_text() == 'the old site'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['notebooks', 'site']
