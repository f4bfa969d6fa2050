"""What may be loaded: sha256 manifests, durable writes, and the rule for pickle files.

One module for the checksums of every layer (it lives in `policies`, the lowest layer that loads
files it did not write, so that `datasets_gen` and `gato` can import it). See docs/trust.md.

**Manifests** are ``SHA256SUMS`` files in the format of coreutils' ``sha256sum``, so a user can
check a directory without this project::

    cd RUN/checkpoints/step-00000200 && sha256sum -c SHA256SUMS
    cd DATASET && sha256sum -c SHA256SUMS
    cd policies/zoo && sha256sum -c SHA256SUMS

Each line is ``<64 hex digits><two spaces><relative path>``. Manifests are rewritten atomically
(temporary file, fsync, ``os.replace``, fsync of the directory).

**Pickles.** An SB3 ``.zip`` or ``replay_buffer.pkl`` runs code when it is loaded. `check_pickle`
admits such a file only if its bytes are

1. pinned in a manifest the project ships (the zoo's ``SHA256SUMS``), or
2. recorded in this user's ledger of pickles that gato wrote itself (`remember`; the ledger lives
   outside any run directory, at ``$GATO_TRUST_LEDGER`` or
   ``${XDG_DATA_HOME:-~/.local/share}/gato/written-pickles.sha256``), or
3. named by the user with ``--allow-pickle``, which says that it executes code.

A manifest beside a file proves integrity, not trust (whoever sent the file can send the manifest),
so the rule never consults one. ``torch.load`` is always called with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path

SUMS = "SHA256SUMS"
"""Name of a manifest file."""
LEDGER_ENV = "GATO_TRUST_LEDGER"
"""Environment variable naming the ledger file (tests point it at a temporary file)."""

_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


class ManifestError(ValueError):
    """A ``SHA256SUMS`` file that cannot be parsed (the message names it and the line)."""


class UntrustedPickleError(ValueError):
    """A pickle-based file that is neither pinned, nor written by gato here, nor allowed by flag."""


# ----------------------------------------------------------------------------- hashing, durable writes


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a file's bytes to disk (before it is renamed into place)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a directory entry (after a rename in it), where the platform allows."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- manifests


def format_sums(sums: dict[str, str]) -> str:
    return "".join(f"{sums[name]}  {name}\n" for name in sorted(sums))


def parse_sums(text: str, where: str | os.PathLike = SUMS) -> dict[str, str]:
    """``{relative path: hex sha256}`` of a ``SHA256SUMS`` text.

    Raises:
        ManifestError: a line that is not ``<64 hex> <space><space|*><path>``.
    """
    sums = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if m is None:
            raise ManifestError(f"{where}: line {n} is not '<sha256>  <file>': {line[:80]!r}")
        sums[m.group(2)] = m.group(1)
    return sums


def read_sums(path: str | os.PathLike) -> dict[str, str]:
    """Parse a ``SHA256SUMS`` file (see `parse_sums`); undecodable bytes raise `ManifestError`."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ManifestError(f"{path}: not a text file ({e})") from e
    return parse_sums(text, path)


def write_sums(path: str | os.PathLike, sums: dict[str, str]) -> None:
    """Write a ``SHA256SUMS`` file atomically and durably."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(format_sums(sums))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def check_file(path: str | os.PathLike, expected: str) -> str | None:
    """None if ``path`` exists with sha256 ``expected``, else what is wrong (one phrase)."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    try:
        found = sha256_file(path)
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if found != expected:
        return f"sha256 {found[:12]}... differs from the recorded {expected[:12]}... (modified or corrupt)"
    return None


# ----------------------------------------------------------------------------- pickles


def ledger_path() -> Path:
    """The ledger of pickle files gato wrote for this user (see the module docstring)."""
    if os.environ.get(LEDGER_ENV):
        return Path(os.environ[LEDGER_ENV])
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "gato" / "written-pickles.sha256"


def remember(path: str | os.PathLike, digest: str | None = None) -> None:
    """Record that gato wrote the pickle file ``path`` (call before renaming it into place).

    A ledger that cannot be written costs only convenience: a later load of the file then needs
    ``--allow-pickle``, and a warning says so.
    """
    digest = digest or sha256_file(path)
    ledger = ledger_path()
    try:
        ledger.parent.mkdir(parents=True, exist_ok=True)
        with open(ledger, "a") as f:
            f.write(f"{digest}  {os.path.abspath(path)}\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        print(f"warning: cannot record {path} in the ledger {ledger} ({e}); loading it later will need "
              "--allow-pickle", file=sys.stderr)


def remembered(digest: str) -> bool:
    """Whether ``digest`` is in this user's ledger of pickles gato wrote."""
    ledger = ledger_path()
    if not ledger.is_file():
        return False
    with open(ledger, "rb") as f:
        return any(line[:64].decode("ascii", "replace") == digest for line in f)


def check_pickle(path: str | os.PathLike, *, allow_pickle: bool = False,
                 pinned: dict[str, str] | None = None, what: str = "pickle file") -> bytes:
    """The bytes of a pickle-based file, if the trust rule admits them; load from these bytes.

    Hashing and loading the same bytes (``io.BytesIO(data)``) leaves no window in which the file
    could change between the check and the load.

    Args:
        path: the file.
        allow_pickle: the user named this file with ``--allow-pickle`` (a warning is printed).
        pinned: ``{abs path: sha256}`` from a shipped manifest that covers ``path`` (the zoo).
        what: how messages name the file ("SB3 checkpoint", "replay buffer").

    Raises:
        FileNotFoundError: no such file.
        UntrustedPickleError: none of the three rules admits it; the message says how to proceed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    data = path.read_bytes()
    digest = sha256_bytes(data)
    key = str(path.resolve())
    if pinned is not None and pinned.get(key) == digest:
        return data
    if remembered(digest):
        return data
    if allow_pickle:
        print(f"warning: loading {what} {path} with --allow-pickle: it is a Python pickle and runs any code "
              "it holds", file=sys.stderr)
        return data
    if pinned is not None and key in pinned:
        raise UntrustedPickleError(
            f"{what} {path} has sha256 {digest[:16]}..., not the {pinned[key][:16]}... pinned for it in the zoo's "
            f"{SUMS}: the file was modified or is corrupt, and it is a pickle that runs code when loaded. Restore "
            "it (git checkout), or pass --allow-pickle if you trust its origin (this executes code from the file)")
    raise UntrustedPickleError(
        f"refusing to load {what} {path}: it is a Python pickle that can run code when loaded, and it is "
        f"neither pinned in the zoo's {SUMS} nor a file gato wrote on this account (sha256 {digest[:16]}...). "
        "If you trust its origin, pass --allow-pickle (this executes code from the file)")
