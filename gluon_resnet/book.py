"""The course as a book: the notebooks executed into a static HTML site.

Examples::

    python -m gluon_resnet.book                 # full mode, into site/ (about 15 minutes on 2 cores)
    python -m gluon_resnet.book --quick --out /tmp/site   # reduced mode: a few minutes

Each notebook runs top to bottom in a fresh kernel (``GLUON_RESNET_QUICK=1``
with ``--quick``, the notebooks' reduced mode) and becomes one page with its
outputs and figures (nbconvert's JupyterLab template, the figures embedded);
``index.html`` lists every notebook with its title, what it teaches and how
long it ran.  Pages link to the previous and next one and to the index.
Formulas are typeset by MathJax 2.7, copied next to the pages from the
``jupyter-server-mathjax`` package: the site needs no server and no internet,
open ``site/index.html`` from the file system.

The site is built in a temporary folder beside ``--out`` and moved into
place at the end: an interrupted or failed build leaves the previous site as
it was.  A notebook that raises stops the build with one line naming the
notebook, the cell and the error (exit code 2).
"""
import contextlib
import html
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ['NOTEBOOKS_DIR', 'Page', 'execute', 'about', 'write_site', 'build']

PROG = 'python -m gluon_resnet.book'
NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / 'notebooks'  # in a clone of the project
CELL_TIMEOUT = 1800  # seconds: full-mode training cells take minutes
MATHJAX_DIR = '_static/mathjax'
MATHJAX_COMBINED = 'TeX-AMS-MML_HTMLorMML-full'
# The package's MathJax is one combined configuration (TeX input; HTML-CSS or native MathML
# output).  MathML: the browser draws it with its own fonts, where HTML-CSS would load web
# fonts, which browsers refuse to file:// pages; MathML's styled letters (\mathcal, ...)
# would name MathJax's TeX web fonts, which the package does not ship.  Menus and messages
# off: a page, not a notebook.
MATHJAX_CONFIG = """<script type="text/x-mathjax-config">
MathJax.Hub.Config({
  tex2jax: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]],
            displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]], processEscapes: true},
  MMLorHTML: {prefer: "MML"},
  NativeMML: {styles: {  // the browser's math font for styled letters, not MathJax's web fonts
    '[class="MJX-tex-caligraphic"]': {"font-family": "math, serif"},
    '[class="MJX-tex-caligraphic-bold"]': {"font-family": "math, serif"},
    '[class="MJX-tex-oldstyle"]': {"font-family": "math, serif"},
    '[class="MJX-tex-oldstyle-bold"]': {"font-family": "math, serif"},
    '[mathvariant="double-struck"]': {"font-family": "math, serif"},
    '[mathvariant="script"]': {"font-family": "math, serif"},
    '[mathvariant="bold-script"]': {"font-family": "math, serif"},
    '[mathvariant="fraktur"]': {"font-family": "math, serif"},
    '[mathvariant="bold-fraktur"]': {"font-family": "math, serif"}}},
  "HTML-CSS": {availableFonts: ["STIX-Web"], preferredFont: "STIX-Web", webFont: null,
               imageFont: null},  // unused, yet loaded: no web fonts, the fonts it has
  showMathMenu: false,
  messageStyle: "none"
});
</script>"""

# nbconvert's JupyterLab page, without what it would fetch from the internet
# (require.js, mermaid, widgets), with local MathJax and a navigation bar.
PAGE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}
""" + MATHJAX_CONFIG + """
<script src="{{ resources.book.mathjax }}"></script>
<style>nav.book { font-family: sans-serif; padding: 0.6em 1em; border-bottom: 1px solid #ddd;
  display: flex; justify-content: space-between; } nav.book a { text-decoration: none; }</style>
{%- endblock html_head_js_mathjax -%}
{%- block body_header -%}
{{ super() }}
{{ resources.book.nav }}
{%- endblock body_header -%}
{% block body_footer %}
{{ resources.book.nav }}
{{ super() }}
{% endblock body_footer %}
"""

INDEX_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 52em; margin: 2em auto; padding: 0 1em; line-height: 1.5; }}
li {{ margin-bottom: 1.2em; }} .time {{ color: #666; font-size: 0.9em; }}
</style></head>
<body><h1>{title}</h1>
<p>{intro}</p>
<ol>
{items}
</ol>
<p class="time">{mode}</p>
</body></html>
"""


@dataclass
class Page:
    """One executed notebook: where it came from, the notebook with its outputs,
    how long it ran (seconds)."""
    path: Path
    notebook: object  # nbformat.NotebookNode
    seconds: float

    @property
    def html_name(self):
        return self.path.stem + '.html'


# Helpers

@contextlib.contextmanager
def _environment(**variables):
    """Inside ``with``, ``os.environ`` has ``variables`` (a kernel inherits them)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _mathjax_source():
    """The folder of MathJax 2.7's files in the ``jupyter-server-mathjax`` package."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        raise ValueError('the book needs MathJax from the jupyter-server-mathjax package: '
                         "pip install -e .") from None
    return Path(jupyter_server_mathjax.__file__).parent / 'static'


def _nav(pages, index):
    """The navigation bar of page ``index`` of ``pages``."""
    def link(i, arrow):
        if not 0 <= i < len(pages):
            return '<span></span>'
        title = html.escape(about(pages[i].notebook)[0])
        return f'<a href="{pages[i].html_name}">{arrow} {title}</a>'
    return (f'<nav class="book">{link(index - 1, "&larr;")}<a href="index.html">Contents</a>'
            f'{link(index + 1, "&rarr;")}</nav>')


def _check_notebooks_dir(notebooks_dir):
    notebooks = sorted(Path(notebooks_dir).glob('*.ipynb'))
    if not notebooks:
        raise ValueError(f'{notebooks_dir}: no notebooks (*.ipynb) there: give --notebooks DIR, '
                         "the notebooks/ folder of the project's source")
    return notebooks


# The book

def about(notebook):
    """``(title, summary)`` of a notebook: its first heading, and the first
    paragraph after it, as markdown."""
    source = next(cell.source for cell in notebook.cells if cell.cell_type == 'markdown')
    title, _, rest = source.partition('\n')
    paragraphs = [p.strip() for p in rest.split('\n\n') if p.strip()]
    return title.lstrip('#').strip(), (paragraphs[0] if paragraphs else '')


def execute(path, quick=False, timeout=CELL_TIMEOUT):
    """Run the notebook at ``path`` top to bottom in a fresh kernel, with cwd
    its folder (reduced mode if ``quick``); returns its ``Page``.
    ``ValueError`` naming the cell if one raises."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name='python3',
                            resources={'metadata': {'path': str(path.parent)}})
    start = time.perf_counter()
    with _environment(GLUON_RESNET_QUICK='1' if quick else '0'):
        try:
            # the kernel's own stderr holds only its start-up warnings: the cells' goes
            # into their outputs
            client.execute(stderr=subprocess.DEVNULL)
        except CellExecutionError as error:
            failed = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == 'code'
                      and any(o.output_type == 'error' for o in cell.get('outputs', []))]
            where = f'cell {failed[0] + 1}' if failed else 'a cell'  # counted as Jupyter shows
            raise ValueError(f'{path.name}: {where} raised {error.ename}: {error.evalue}') \
                from None
    return Page(path, notebook, time.perf_counter() - start)


def write_site(pages, out, quick=False):
    """Write ``pages`` (``Page`` objects, in order) as a static site into the
    folder ``out``, replacing it whole at the end (see the module docstring).
    Returns ``{file name: bytes}`` of the pages written."""
    import jinja2
    from nbconvert import HTMLExporter
    from nbconvert.filters import markdown2html
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name='lab', template_file='book.html.j2',
                            extra_loaders=[jinja2.DictLoader({'book.html.j2': PAGE_TEMPLATE})])
    mathjax = _mathjax_source()
    sizes = {}
    staging = Path(tempfile.mkdtemp(prefix=f'.{out.name}-', dir=out.parent))
    staging.chmod(0o755)  # mkdtemp's folder is private; a site is for reading
    try:
        shutil.copytree(mathjax, staging / MATHJAX_DIR,
                        ignore=shutil.ignore_patterns('localization', '*.py'))
        items = []
        for index, page in enumerate(pages):
            title, summary = about(page.notebook)
            resources = {'book': {'nav': _nav(pages, index),
                                  'mathjax': f'{MATHJAX_DIR}/MathJax.js?config={MATHJAX_COMBINED}'},
                         'metadata': {'name': title}}
            body, _ = exporter.from_notebook_node(page.notebook, resources)
            (staging / page.html_name).write_text(body, encoding='utf-8')
            sizes[page.html_name] = len(body.encode())
            items.append(f'<li><a href="{page.html_name}">{html.escape(title)}</a>'
                         f'{markdown2html(summary)}<span class="time">ran in '
                         f'{page.seconds:.0f} s</span></li>')
        mode = ('Run in reduced mode (GLUON_RESNET_QUICK=1): fewer epochs and images.' if quick
                else 'Run in full mode.')
        index_html = INDEX_TEMPLATE.format(
            title='gluon_resnet: residual networks, a course in six notebooks',
            intro='Each page is a notebook of the package, executed top to bottom with its '
                  'outputs and figures; the times are those of this build.',
            items='\n'.join(items), mode=f'{mode} Built {time.strftime("%Y-%m-%d %H:%M")}.')
        (staging / 'index.html').write_text(index_html, encoding='utf-8')
        sizes['index.html'] = len(index_html.encode())
        if out.exists():  # the old site goes only once the new one is whole
            old = Path(tempfile.mkdtemp(prefix=f'.{out.name}-old-', dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(staging, out)
            shutil.rmtree(old)
        else:
            os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sizes


def build(out='site', quick=False, notebooks_dir=NOTEBOOKS_DIR, report=None):
    """Execute every notebook of ``notebooks_dir`` and write the site to ``out``;
    ``report(text)`` hears of each notebook as it goes.  Returns the pages."""
    report = report or (lambda text: None)
    pages = []
    for path in _check_notebooks_dir(notebooks_dir):
        report(f'running {path.name} ...')
        pages.append(execute(path, quick))
        report(f'  {path.name}: {pages[-1].seconds:.0f} s')
    sizes = write_site(pages, out, quick)
    report(f'wrote {out}: ' + ', '.join(f'{name} {size / 1e3:.0f} kB'
                                         for name, size in sizes.items()))
    return pages


# Command line

def main(argv=None):
    from ._cli import ArgumentParser
    import argparse
    parser = ArgumentParser(prog=PROG, description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='site', metavar='DIR',
                        help='the folder of the site, replaced when the build is done '
                             '(default: site)')
    parser.add_argument('--quick', action='store_true',
                        help="the notebooks' reduced mode: fewer epochs and images, minutes "
                             'instead of a quarter of an hour')
    parser.add_argument('--notebooks', default=str(NOTEBOOKS_DIR), metavar='DIR',
                        help='the notebooks to execute (default: the project\'s notebooks/)')
    args = parser.parse_args(argv)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f'--out {args.out} is a file: expected a folder for the site')
    _check_notebooks_dir(args.notebooks)
    _mathjax_source()
    start = time.perf_counter()
    build(args.out, args.quick, args.notebooks,
          report=lambda text: print(text, file=sys.stderr, flush=True))
    print(f'built {args.out}/index.html in {time.perf_counter() - start:.0f} s')


if __name__ == '__main__':
    from ._cli import run
    run(main, PROG)
