"""The frontend's on-disk cache: one entry per pipeline module.

A module's IR and diagnostics depend only on the files the frontend read
and the paths it looked for (`SourceTree.inputs`: the module itself, the
modules of the source tree it follows, the imports it checked), and on the
frontend itself.  An entry is stored under a key made of the frontend's
identity (`code_identity`: pipec's version, `IR_VERSION`, the frontend's own
source files, libcst's version), the module's path from the source root and
the digest of its bytes; it records every input with its state then.  A
lookup re-checks those inputs (digests of the files read, existence of the
paths looked for): all equal is a hit, without parsing anything.

    <source root>/.pipec/cache/frontend/<key>.json   (PIPEC_CACHE_DIR overrides)
    PIPEC_NO_CACHE=1 disables it.

An entry is a JSON header line (inputs, diagnostics, fingerprint) followed by
the module as JSON (`ir.to_data`, read back with `ir.from_json`).  Entries are written atomically (a temporary file
renamed into place); an entry that cannot be read or parsed is a miss.

A cache may make pipec faster, never change what it emits: each entry
starts with an HMAC-SHA256 of the rest, keyed with a secret of the user's
own (`secret()`: 32 random bytes in a 0600 file under the user's cache
folder, outside any project).  An entry edited, planted or copied from
another machine or user fails the check and is a miss.  Without a usable
secret there is no cache.  A module reached through a symbolic link is not
cached: its source root would be where the link points, outside the
project the user named.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
from dataclasses import asdict
from pathlib import Path

from pipec import ir
from pipec.diagnostics import Diagnostic

FORMAT = 2  # of the entries; bump when their layout changes
_IDENTITY: str | None = None
_SECRET: list[bytes | None] = []  # memo of `secret()`


def enabled() -> bool:
    return os.environ.get("PIPEC_NO_CACHE", "") in ("", "0")


def folder(root: Path) -> Path:
    override = os.environ.get("PIPEC_CACHE_DIR")
    return Path(override) if override else root / ".pipec" / "cache" / "frontend"


def secret_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return Path(base) / "pipec" / "cache-secret"


def secret() -> bytes | None:
    """The user's key for entries' MACs, made on first use; None when it
    cannot be had or is not the user's own 0600 file (then no cache)."""
    if not _SECRET:
        _SECRET.append(_read_secret() or _make_secret())
    return _SECRET[0]


def _read_secret() -> bytes | None:
    path = secret_path()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        data = os.read(fd, 64)
    except OSError:
        return None
    finally:
        os.close(fd)
    own = getattr(os, "getuid", None) is None or info.st_uid == os.getuid()
    if not own or info.st_mode & 0o077 or len(data) < 32:
        return None
    return data


def _make_secret() -> bytes | None:
    path = secret_path()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(32))
        finally:
            os.close(fd)
        os.link(temporary, path)  # never replaces a secret another process made
    except FileExistsError:
        pass
    except OSError:
        return None
    finally:
        try:
            os.unlink(temporary)
        except OSError:
            pass
    return _read_secret()


def _mac(key: bytes, body: str) -> str:
    return hmac.new(key, body.encode("ascii"), hashlib.sha256).hexdigest()


def code_identity() -> str:
    """A digest of what makes the frontend what it is: a new pipec, IR
    version, entry format, frontend source or libcst is a new identity."""
    global _IDENTITY
    if _IDENTITY is None:
        from pipec import version

        digest = hashlib.sha256()
        try:  # the version libcst records in itself: no distribution scan
            from libcst._version import version as libcst_version
        except ImportError:  # pragma: no cover
            from importlib import metadata

            try:
                libcst_version = metadata.version("libcst")
            except metadata.PackageNotFoundError:
                libcst_version = "?"
        digest.update(
            f"{version.__version__}\0{ir.IR_VERSION}\0{FORMAT}\0{libcst_version}\0".encode()
        )
        package = Path(version.__file__).parent
        sources = sorted((package / "frontend").glob("*.py"))
        sources += [package / n for n in ("ir.py", "diagnostics.py", "language.py")]
        for source in sources:
            digest.update(source.name.encode() + b"\0")
            try:
                digest.update(source.read_bytes())
            except OSError:
                digest.update(b"?")
        _IDENTITY = digest.hexdigest()
    return _IDENTITY


def fingerprint(inputs: dict[str, str]) -> str:
    """The hex digest of everything a result was built from."""
    digest = hashlib.sha256(code_identity().encode())
    for key in sorted(inputs):
        digest.update(f"\0{key}\0{inputs[key]}".encode())
    return digest.hexdigest()


def entry_key(path: str, data: bytes) -> str:
    digest = hashlib.sha256(code_identity().encode())
    digest.update(b"\0" + path.encode() + b"\0")
    digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def current_state(root: Path, key: str) -> str:
    """What input `key` ('read:a/b.py', 'file:a.py', 'dir:a') is now."""
    kind, _, relative = key.partition(":")
    path = root / relative
    if kind == "read":
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return "!"
    if kind == "dir":
        return "1" if path.is_dir() else "0"
    return "1" if path.is_file() else "0"


class Entry:
    """A cached result: the module (or None), diagnostics, inputs."""

    def __init__(
        self,
        module: ir.Module | None,
        diagnostics: list[Diagnostic],
        inputs: dict[str, str],
        fingerprint: str,
    ) -> None:
        self.module = module
        self.diagnostics = diagnostics
        self.inputs = inputs
        self.fingerprint = fingerprint


def load(root: Path, key: str) -> Entry | None:
    """The entry `key` when it is readable and its inputs are unchanged."""
    user_key = secret()
    if user_key is None:
        return None
    try:
        text = (folder(root) / f"{key}.json").read_text(encoding="ascii")
        mac, _, text = text.partition("\n")
        if not hmac.compare_digest(mac, _mac(user_key, text)):
            return None  # edited, planted or another user's: a miss
        header_text, _, module_text = text.partition("\n")
        header = json.loads(header_text)
        if header.get("format") != FORMAT or header.get("key") != key:
            return None
        inputs = header["inputs"]
        for name, state in inputs.items():
            if current_state(root, name) != state:
                return None
        module = ir.from_json(module_text) if header["has_module"] else None
        diagnostics = [Diagnostic(**d) for d in header["diagnostics"]]
        return Entry(module, diagnostics, inputs, header["fingerprint"])
    except Exception:  # unreadable, corrupt or from another layout: a miss
        return None


def store(root: Path, key: str, entry: Entry) -> None:
    """Write entry `key` atomically; a cache that cannot be written is no
    cache, never an error."""
    user_key = secret()
    if user_key is None:
        return
    try:
        body = _serialise(key, entry)
        body = _mac(user_key, body) + "\n" + body
    except (TypeError, ValueError):  # not JSON-able: leave it uncached
        return
    target = folder(root)
    temporary = None
    try:
        target.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{key[:16]}.", suffix=".tmp", dir=target
        )
        with os.fdopen(handle, "w", encoding="ascii") as out:
            out.write(body)
        os.replace(temporary, target / f"{key}.json")
        temporary = None
    except (OSError, ValueError):
        pass
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except OSError:
                pass


def _serialise(key: str, entry: Entry) -> str:
    header = {
        "format": FORMAT,
        "key": key,
        "inputs": entry.inputs,
        "fingerprint": entry.fingerprint,
        "diagnostics": [asdict(d) for d in entry.diagnostics],
        "has_module": entry.module is not None,
    }
    # ASCII with escapes: every string comes back exactly, lone surrogates
    # included.
    body = json.dumps(header, sort_keys=True) + "\n"
    if entry.module is not None:
        # `ir.to_json` sorts keys, which would reorder dict literals (context
        # defaults): keep the IR's own order; `ir.from_json` reads it back.
        body += ir.dumps(entry.module)
    return body
