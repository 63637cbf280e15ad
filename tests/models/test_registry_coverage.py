"""Every registered model has a contract test class somewhere under tests/models."""

import importlib.util
from pathlib import Path

from contract import ModelContract
from nlprec.registry import list_models


def test_every_registered_model_has_a_contract_test():
    modules = []  # kept referenced: __subclasses__ holds only weak references to the classes
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"contract_scan_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules.append(module)
    covered = {cls.name for cls in _all_subclasses(ModelContract)}
    missing = {entry.name for entry in list_models()} - covered
    assert not missing, f"models without a ModelContract test: {sorted(missing)}"


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)
