"""Package-level rules: purity (no web/db imports), the public face, one exception hierarchy."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import keys
import keys.errors

PACKAGE_DIR = Path(keys.__file__).parent
BANNED = ("starlette", "sqlalchemy", "sqlmodel", "httpx", "gateway", "policies", "transforms", "logging", "structlog")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_sources_import_no_web_db_or_logging_modules() -> None:
    sources = sorted(PACKAGE_DIR.glob("*.py"))
    assert len(sources) >= 8
    for source in sources:
        for module in imported_modules(source):
            top = module.split(".")[0]
            assert top not in BANNED, f"{source.name} imports {module}"


def test_importing_keys_loads_no_web_or_db_module() -> None:
    code = (
        "import sys, keys\n"
        f"banned = {BANNED[:4]!r}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in banned)\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_public_face() -> None:
    assert len(keys.__all__) == len(set(keys.__all__))
    for name in keys.__all__:
        assert hasattr(keys, name), name
    expected = {
        "KeysError",
        "MasterKeyError",
        "KeyNotFoundError",
        "KeyExistsError",
        "KeyUnwrapError",
        "KeyDestroyedError",
        "SignatureError",
        "SecretBytes",
        "MasterKey",
        "create_master_key_file",
        "load_master_key",
        "ensure_master_key",
        "WrappedKey",
        "wrap_key",
        "unwrap_key",
        "rewrap",
        "KeyStore",
        "MemoryKeyStore",
        "KeyRing",
        "SigningKey",
        "VerifyKey",
        "note_key_hash",
        "note_verifier_key",
        "parse_note_verifier_key",
        "load_or_create_signing_key",
    }
    assert expected <= set(keys.__all__)


def test_one_exception_hierarchy() -> None:
    classes = [obj for _, obj in inspect.getmembers(keys.errors, inspect.isclass) if obj.__module__ == "keys.errors"]
    assert len(classes) == 7
    for cls in classes:
        assert issubclass(cls, keys.KeysError)
    assert keys.KeysError.__bases__ == (Exception,)


def test_crypto_primitives_only_from_pycryptodome() -> None:
    # keys is the one package using crypto primitives, and it uses pycryptodome (not `cryptography`).
    for source in PACKAGE_DIR.glob("*.py"):
        for module in imported_modules(source):
            assert module.split(".")[0] not in {"cryptography", "nacl", "secrets", "random"}, (source.name, module)
