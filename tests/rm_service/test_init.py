import subprocess
import sys

import rm_service


def test_it_imports_without_torch_or_numpy() -> None:
    code = "import sys, rm_service; print('torch' in sys.modules, 'numpy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_it_exports_every_public_name_lazily() -> None:
    assert set(rm_service.__all__) == set(rm_service._LOCATIONS)
    for name in rm_service.__all__:
        assert getattr(rm_service, name) is not None, name
    from rm_service.train import train

    assert rm_service.train.train is train  # a submodule, never shadowed by a same-named function
    assert rm_service.evaluate.evaluate.__module__ == "rm_service.evaluate"
