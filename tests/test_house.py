"""The house keeps its shape: small files, imports at the top (the few lazy boundaries say why), absolute
imports of the package's own modules, and no torch on napari's Qt thread. The layers between the
packages are checked by import-linter (`lint-imports`, configured in pyproject.toml) in CI."""

import ast
import subprocess
import sys
from pathlib import Path

import napari_hcc

PACKAGE = Path(napari_hcc.__file__).resolve().parent
SOURCES = sorted(p for p in PACKAGE.rglob("*.py"))
MAX_LINES = 400
MAX_LAZY_OWN_IMPORTS = 20


def _own_imports_inside_functions(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = path.read_text(encoding="utf-8").splitlines()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if (
                    isinstance(sub, ast.ImportFrom)
                    and (sub.level or (sub.module or "").startswith("napari_hcc"))
                    or isinstance(sub, ast.Import)
                    and any(a.name.startswith("napari_hcc") for a in sub.names)
                ):
                    yield sub, lines[sub.lineno - 1]


def test_no_source_file_is_over_400_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in SOURCES
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"files over {MAX_LINES} lines: {long}"


def test_the_few_imports_inside_functions_are_commented_lazy_boundaries():
    found = [
        (str(p.relative_to(PACKAGE)), node.lineno, line)
        for p in SOURCES
        for node, line in _own_imports_inside_functions(p)
    ]
    assert len(found) <= MAX_LAZY_OWN_IMPORTS, found
    undocumented = [f for f in found if "lazy" not in f[2]]
    assert not undocumented, f"an import inside a function must say why it is lazy: {undocumented}"
    # the CLI's command groups, the GUI's worker threads, and what a prediction imports only when it needs
    # it: the torch backend, SimpleITK for --register, pydicom and highdicom for a DICOM SEG
    lazy_homes = {
        "cli/__init__.py",
        "gui/workers.py",
        "cli/predict_command.py",
        "inference/engine.py",
        "inference/files.py",
    }
    assert {f[0] for f in found} <= lazy_homes, found


def test_the_review_widget_module_does_not_import_torch_on_the_qt_thread():
    """torch is imported in the worker thread, after the Triton guard (gui/triton_guard.py)."""
    code = "import sys, napari_hcc.gui.review_widget, napari_hcc.gui.study_browser; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stdout + r.stderr


def test_modules_name_their_own_package_absolutely():
    relative = [
        str(p.relative_to(PACKAGE))
        for p in SOURCES
        if any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))))
    ]
    assert not relative, relative
