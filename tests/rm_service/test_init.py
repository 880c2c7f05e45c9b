"""The package split: a torch-free Django app, a core with a small eager API, one door between them."""

import ast
import subprocess
import sys
from pathlib import Path

import rm_service
import rm_service.core

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> list[str]:
    env_code = "import os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'annotate.settings'); " + code
    done = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True, check=True, cwd=ROOT)
    return done.stdout.split()


def test_it_imports_the_app_package_without_torch_or_numpy() -> None:
    assert _run("import sys, rm_service; print('torch' in sys.modules, 'numpy' in sys.modules)") == ["False", "False"]


def test_it_loads_the_django_app_and_its_urls_without_torch() -> None:
    code = (
        "import sys, django; django.setup(); import annotate.urls, rm_service.services, rm_service.tasks, "
        "rm_service.admin, rm_service.views, rm_service.apis; print('torch' in sys.modules)"
    )
    assert _run(code) == ["False"]


def test_it_keeps_the_layout_module_torch_free() -> None:
    path = ROOT / "rm_service" / "core" / "layout.py"
    code = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('layout_alone', {str(path)!r}); "
        "module = sys.modules['layout_alone'] = importlib.util.module_from_spec(spec); "
        "spec.loader.exec_module(module); "
        "print('torch' in sys.modules, 'numpy' in sys.modules)"
    )
    assert _run(code) == ["False", "False"]


def test_it_exports_the_core_api_eagerly() -> None:
    assert not hasattr(rm_service, "__getattr__") and not hasattr(rm_service.core, "__getattr__")
    for name in rm_service.core.__all__:
        assert getattr(rm_service.core, name) is not None, name
    from rm_service.core.train import train

    assert rm_service.core.train.train is train  # a submodule, never shadowed by a same-named function
    assert rm_service.core.evaluate.evaluate.__module__ == "rm_service.core.evaluate"


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_it_reaches_the_core_from_the_edge_only_through_the_worker() -> None:
    edge = [p for p in (ROOT / "rm_service").rglob("*.py") if "core" not in p.relative_to(ROOT / "rm_service").parts]
    importers = {
        str(p.relative_to(ROOT))
        for p in edge
        if any(m == "rm_service.core" or m.startswith("rm_service.core.") for m in _imported_modules(p))
    }
    assert importers == {"rm_service/worker.py", "rm_service/__main__.py"}  # __main__ is the core's command line


def test_it_keeps_the_platform_off_the_core_internals() -> None:
    internal = {
        (str(p.relative_to(ROOT)), m)
        for p in (ROOT / "annotate").rglob("*.py")
        for m in _imported_modules(p)
        if m.startswith("rm_service.core.") or m in ("rm_service.worker",)
    }
    assert internal == set()


def test_it_keeps_django_out_of_the_core() -> None:
    for path in (ROOT / "rm_service" / "core").rglob("*.py"):
        imported = _imported_modules(path)
        assert not any(m == "django" or m.startswith(("django.", "annotate", "rest_framework")) for m in imported), path
        assert not any(m.startswith("rm_service.") and not m.startswith("rm_service.core") for m in imported), path
