"""The import contract in .importlinter: it holds on this tree, and a wrong-way import breaks it.

lint-imports runs as CI runs it (a subprocess, no cache). The wrong-way imports are added to a copy of
the portal package in a temporary folder, so the tree under test is never touched.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
LAYERS = "Web and API on top, domain packages below, infrastructure at the bottom"
OUTBOX = "The outbox knows no channel"
CYCLES = "No cycles between sibling packages"
ADAPTERS = "Adapters to outside systems are independent of each other"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """Run lint-imports on the tree at root with its own .importlinter; the finished process."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(root / ".importlinter")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_import_contract_holds():
    result = lint_imports(REPO_ROOT)

    assert result.returncode == 0, result.stdout + result.stderr
    for contract in (LAYERS, OUTBOX, CYCLES, ADAPTERS):
        assert any(line.startswith(contract) and " KEPT" in line for line in result.stdout.splitlines()), result.stdout


@pytest.fixture
def tree(tmp_path):
    """A copy of the portal package and the contract, to add wrong-way imports to."""
    shutil.copytree(REPO_ROOT / "portal", tmp_path / "portal",
                    ignore=shutil.ignore_patterns("__pycache__", "static", "templates", "translations"))
    shutil.copy(REPO_ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def add_import(root: Path, module_path: str, statement: str) -> None:
    """Append an import statement (or a function holding one) to a module of the copy."""
    path = root / module_path
    path.write_text(path.read_text() + f"\n{statement}  # noqa\n")


@pytest.mark.parametrize(("module_path", "statement", "broken"), [
    ("portal/packages/states.py", "from portal.blueprints import auth", LAYERS),  # the domain imports the web
    ("portal/otp/service.py", "import portal.api.errors", LAYERS),  # the domain imports the API
    ("portal/crypto.py", "from portal.settings import models", LAYERS),  # infrastructure imports the domain
    ("portal/blueprints/auth/__init__.py", "import portal.api.errors", LAYERS),  # the web and the API are apart
    ("portal/outbox/service.py", "from portal.webhooks import catalogue", OUTBOX),  # the outbox names a channel
    ("portal/outbox/tasks.py", "from portal.sms import SmsError", OUTBOX),
    ("portal/stores/models.py", "from portal.packages import states", CYCLES),  # packages -> stores -> packages
    ("portal/omnitron/client.py", "from portal.sms import base", ADAPTERS),
    # An import placed inside a function to dodge a cycle is still an import: delivery imports service.
    ("portal/webhooks/service.py", "def _late():\n    from portal.webhooks import delivery", CYCLES),
], ids=["domain->web", "domain->api", "infrastructure->domain", "web->api", "outbox->webhooks", "outbox->sms",
        "package-cycle", "adapter->adapter", "late-import-cycle"])
def test_a_wrong_way_import_breaks_the_contract(tree, module_path, statement, broken):
    assert lint_imports(tree).returncode == 0  # the copy holds, like the tree

    add_import(tree, module_path, statement)
    result = lint_imports(tree)

    assert result.returncode != 0
    assert any(line.startswith(broken) and " BROKEN" in line for line in result.stdout.splitlines()), result.stdout
