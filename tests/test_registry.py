"""The method registry: the shared layer names no paper package; installed packages add
methods through the `kdzoo.methods` entry point group, a third-party one included."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from common.methods import get_method, method_names

REPO = Path(__file__).resolve().parents[1]
PAPERS = ("r2kd", "slkd", "sokd", "cqkd")


def run_python(code: str, extra_path: Path | None = None) -> str:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_loading_a_kd_recipe_imports_no_paper_package() -> None:
    out = run_python(
        f"""
        import sys
        from common.config import load_recipe
        cfg = load_recipe("tools/recipes/kd/cifar100/resnet32x4_resnet8x4.yaml")
        assert cfg.method.name == "kd"
        print(sorted(m for m in sys.modules if m.split(".")[0] in {PAPERS!r}))
        """
    )
    assert out.strip() == "[]"


def test_the_paper_methods_come_from_entry_points_and_import_by_class_name() -> None:
    assert {"r2kd", "slkd", "cqkd", "lowres", "kd", "dkd", "dml", "vanilla"} <= set(method_names())
    from common.methods import DKD, DML, KD, R2KD

    assert get_method("r2kd") is R2KD and R2KD.__module__ == "r2kd.method"
    assert (KD.method_name, DKD.method_name, DML.method_name) == ("kd", "dkd", "dml")
    with pytest.raises(KeyError):
        get_method("no_such_method")
    with pytest.raises(ImportError):
        from common.methods import NoSuchMethod  # noqa: F401


def test_a_third_party_package_adds_a_method_by_being_installed(tmp_path: Path) -> None:
    """A package on the path with an entry point (as `pip install` would leave it)."""
    (tmp_path / "extra_kd").mkdir()
    (tmp_path / "extra_kd" / "__init__.py").write_text(
        textwrap.dedent(
            """
            from common.methods import Distiller, register_method

            @register_method("extra_kd")
            class ExtraKD(Distiller):
                needs_teacher = False
            """
        )
    )
    info = tmp_path / "extra_kd-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-kd\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[kdzoo.methods]\nextra_kd = extra_kd:ExtraKD\n")
    out = run_python(
        """
        import sys
        from common.methods import get_method, method_names
        assert "extra_kd" in method_names() and "extra_kd" not in sys.modules
        cls = get_method("extra_kd")
        print(cls.__name__, cls.method_name)
        """,
        extra_path=tmp_path,
    )
    assert out.split() == ["ExtraKD", "extra_kd"]


def test_one_registry_class_behind_methods_models_writers_and_bench_sections() -> None:
    from common.bench.sections import SECTIONS
    from common.engine.writers import WRITERS
    from common.methods.registry import METHODS
    from common.models.registry import MODELS
    from common.registry import Registry

    for registry, group, name in [
        (METHODS, "kdzoo.methods", "kd"),
        (MODELS, "kdzoo.models", "resnet8"),
        (WRITERS, "kdzoo.writers", "csv"),
        (SECTIONS, "kdzoo.bench", "kd_step"),
    ]:
        assert isinstance(registry, Registry) and registry.group == group
        assert name in registry.names() and registry.get(name) is registry.loaded()[name]
    numbers: Registry[int] = Registry("number", "kdzoo.test_no_such_group")
    numbers.register("one")(1)
    numbers.add("one", 1)  # the same object again: fine
    with pytest.raises(ValueError, match="number 'one' is registered twice"):
        numbers.add("one", 2)
    with pytest.raises(KeyError):
        numbers.get("two")


def test_register_model_as_a_decorator_and_as_a_call() -> None:
    from torch import nn

    from common.models import build_model, model_names, register_model

    @register_model("test_registry_linear")
    def linear(num_classes: int) -> nn.Module:
        return nn.Linear(3, num_classes)

    assert "test_registry_linear" in model_names()
    assert build_model("test_registry_linear", 5).out_features == 5
    with pytest.raises(ValueError, match="already in the zoo"):
        register_model("test_registry_linear", lambda n: nn.Linear(2, n))


def test_a_third_party_package_adds_a_model_by_being_installed(tmp_path: Path) -> None:
    (tmp_path / "extra_net").mkdir()
    (tmp_path / "extra_net" / "__init__.py").write_text(
        "from torch import nn\n\n\ndef extra_net(num_classes):\n"
        "    return nn.Linear(4, num_classes)\n"
    )
    info = tmp_path / "extra_net-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-net\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[kdzoo.models]\nextra_net = extra_net:extra_net\n")
    out = run_python(
        """
        import sys
        from common.models import build_model, model_names
        assert "extra_net" in model_names() and "extra_net" not in sys.modules
        print(build_model("extra_net", 7).out_features)
        """,
        extra_path=tmp_path,
    )
    assert out.split() == ["7"]


@pytest.mark.parametrize("method", ["kd", "fitnet", "at", "crd", "reviewkd"])
def test_the_bench_recipes_in_the_package_equal_the_tools_recipes(method: str) -> None:
    """`common/bench/recipes` ships with the package (tools/ is not installed); the copies
    must time what the tools recipes train."""
    from common.bench.sections import bench_recipe
    from common.config import load_recipe

    ours = load_recipe(bench_recipe(method))
    theirs = load_recipe(
        REPO / "tools" / "recipes" / method / "cifar100" / "resnet32x4_resnet8x4.yaml"
    )
    for part in ("method", "student", "data", "optim", "train"):
        assert getattr(ours, part) == getattr(theirs, part), part
    assert ours.teacher.name == theirs.teacher.name
