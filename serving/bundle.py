"""Read a policy bundle and verify it whole: files, digest, signature, manifest, arrays.

A bundle is a folder holding exactly:

- ``manifest.json``: the schema of :mod:`ipwarmup.serving.manifest`; ``files`` lists every
  other file with its SHA-256 and size;
- the listed files (``weights.npz``, plain arrays, and usually a ``README.md`` card);
- ``bundle.sha256``: one SHA-256 over the manifest and every listed file (see
  :func:`bundle_digest`), so no byte of the bundle can change unnoticed;
- ``bundle.sig`` when signed: an ed25519 signature of the bytes of ``bundle.sha256``
  (``openssl pkeyutl -sign -rawin`` makes the same), by the key the manifest's
  ``signature.public_key`` names. An operator pins the key it trusts
  (``load_policy(path, public_key=...)``): then the bundle must be signed by that key.

Nothing else may be in the folder. The weights' shapes and dtypes are read from the npz's
headers and checked against the manifest before any array is loaded, so a small file
cannot make serving allocate gigabytes. Every failure is a :class:`BundleError` naming the
file or field.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ipwarmup.errors import BundleError
from ipwarmup.serving.manifest import (
    DIGEST,
    MANIFEST,
    MAX_FILE_BYTES,
    SIGNATURE,
    WEIGHTS,
    Manifest,
    parse_manifest,
)

MAX_MANIFEST_BYTES = 1 << 20
"""A manifest for 64 providers is ~150 KB; more is not a manifest."""
_HEX64 = re.compile(r"[0-9a-f]{64}")
PublicKey = Ed25519PublicKey | bytes | str | os.PathLike[str]


def bundle_digest(folder: Path, names: list[str]) -> str:
    """Return the hex SHA-256 over the manifest and the named files.

    For the manifest and then each file in sorted order: its name, a NUL byte, its size as
    8 bytes big-endian, and its bytes. Names and sizes are inside the hash, so no byte can
    move from one file to the next unnoticed.
    """
    digest = hashlib.sha256()
    for name in [MANIFEST, *sorted(names)]:
        data = (folder / name).read_bytes()
        digest.update(name.encode() + b"\0" + len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def raw_public_key(key: Ed25519PublicKey) -> str:
    """Return an ed25519 public key as 64 hex digits (the manifest's form)."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def read_public_key(key: PublicKey) -> Ed25519PublicKey:
    """Take an ed25519 public key as an object, 64 hex digits, raw or PEM bytes, or a file.

    Raises:
        BundleError: the key cannot be read or is not ed25519.
    """
    if isinstance(key, Ed25519PublicKey):
        return key
    if isinstance(key, str) and _HEX64.fullmatch(key.strip()):
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(key.strip()))
    data: bytes
    if isinstance(key, bytes):
        data = key
    else:
        try:
            data = Path(key).read_bytes()[:65536]
        except OSError as error:
            raise BundleError(f"public key: cannot read {key} ({error.strerror})") from error
    try:
        if len(data) == 32:
            return Ed25519PublicKey.from_public_bytes(data)
        text = data.strip()
        if _HEX64.fullmatch(text.decode("ascii", "replace")):
            return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text.decode()))
        loaded = serialization.load_pem_public_key(data)
    except ValueError as error:
        raise BundleError(f"public key: not an ed25519 key in PEM, raw or hex ({error})") from error
    if not isinstance(loaded, Ed25519PublicKey):
        raise BundleError(f"public key: expected ed25519, got {type(loaded).__name__}")
    return loaded


def sign(folder: Path, private_key: Ed25519PrivateKey) -> None:
    """Write ``bundle.sig``: the key's signature of ``bundle.sha256``."""
    (folder / SIGNATURE).write_bytes(private_key.sign((folder / DIGEST).read_bytes()))


def _fail(message: str) -> NoReturn:
    raise BundleError(message)


def _listing(folder: Path) -> dict[str, int]:
    """Return {name: size} of the folder's entries; refuse anything but small plain files."""
    if not folder.exists():
        _fail(f"{folder / MANIFEST}: missing; is '{folder}' an exported bundle?")
    if not folder.is_dir():
        _fail(f"{folder}: not a folder; a bundle is a folder")
    entries: dict[str, int] = {}
    try:
        with os.scandir(folder) as scan:
            for entry in scan:
                if not entry.is_file(follow_symlinks=False):
                    _fail(f"{folder / entry.name}: not a plain file; a bundle holds only files")
                size = entry.stat(follow_symlinks=False).st_size
                if size > MAX_FILE_BYTES:
                    _fail(f"{folder / entry.name}: {size} bytes, over {MAX_FILE_BYTES}")
                entries[entry.name] = size
    except OSError as error:
        raise BundleError(f"{folder}: cannot be listed ({error.strerror})") from error
    return entries


def _read_manifest(folder: Path, entries: dict[str, int]) -> Manifest:
    path = folder / MANIFEST
    if MANIFEST not in entries:
        _fail(f"{path}: missing; is '{folder}' an exported bundle?")
    if entries[MANIFEST] > MAX_MANIFEST_BYTES:
        _fail(f"{path}: {entries[MANIFEST]} bytes, over {MAX_MANIFEST_BYTES}")

    def no_constant(name: str) -> NoReturn:
        raise ValueError(f"{name} is not JSON")

    try:
        data = json.loads(path.read_bytes().decode("utf-8"), parse_constant=no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)[:200]
        raise BundleError(f"{path}: not valid JSON ({reason})") from error
    except OSError as error:
        raise BundleError(f"{path}: unreadable ({error.strerror})") from error
    return parse_manifest(data, "manifest")


def _check_files(folder: Path, manifest: Manifest, entries: dict[str, int]) -> None:
    expected = {MANIFEST, DIGEST, *manifest.files}
    if manifest.signature is not None:
        expected.add(SIGNATURE)
    for name in sorted(expected - set(entries)):
        _fail(f"{folder / name}: missing (the manifest lists it)")
    for name in sorted(set(entries) - expected):
        _fail(f"{folder / name}: not listed in manifest.files; a bundle holds nothing else")
    for name, entry in manifest.files.items():
        if entries[name] != entry.bytes:
            _fail(f"{folder / name}: {entries[name]} bytes, the manifest says {entry.bytes}; "
                  "the file was changed or truncated")  # fmt: skip
        actual = file_sha256(folder / name)
        if actual != entry.sha256:
            _fail(f"{folder / name}: SHA-256 {actual[:16]}... does not match "
                  f"manifest.files.{name}.sha256 {entry.sha256[:16]}...; the file was "
                  "changed")  # fmt: skip


def _check_digest(folder: Path, manifest: Manifest) -> bytes:
    recorded = (folder / DIGEST).read_bytes()
    actual = bundle_digest(folder, list(manifest.files))
    if recorded != f"{actual}\n".encode():
        _fail(f"{folder / DIGEST}: does not match the digest of the manifest and files "
              f"({actual[:16]}...); the manifest or the digest was changed")  # fmt: skip
    return recorded


def _check_signature(
    folder: Path, manifest: Manifest, digest: bytes, public_key: PublicKey | None
) -> None:
    pinned = None if public_key is None else read_public_key(public_key)
    if manifest.signature is None:
        if pinned is not None:
            _fail(f"{folder}: not signed, but a public key is pinned; sign the bundle")
        return
    named = Ed25519PublicKey.from_public_bytes(bytes.fromhex(manifest.signature.public_key))
    if pinned is not None and raw_public_key(pinned) != manifest.signature.public_key:
        _fail(f"{folder}: signed by key {manifest.signature.public_key[:16]}..., not by the "
              f"pinned key {raw_public_key(pinned)[:16]}...")  # fmt: skip
    try:
        (pinned or named).verify((folder / SIGNATURE).read_bytes(), digest)
    except InvalidSignature as error:
        raise BundleError(f"{folder / SIGNATURE}: the signature does not verify with key "
                          f"{manifest.signature.public_key[:16]}...") from error  # fmt: skip


@dataclass(frozen=True)
class _Expected:
    shape: tuple[int, ...]
    where: str


def _expected_arrays(manifest: Manifest) -> dict[str, _Expected]:
    arrays = {}
    for i, layer in enumerate(manifest.network.layers):
        where = f"network.layers.{i}"
        arrays[layer.weight] = _Expected((layer.outputs, layer.inputs), f"{where}.weight")
        arrays[layer.bias] = _Expected((layer.outputs,), f"{where}.bias")
    return arrays


def _read_weights(path: Path, expected: dict[str, _Expected]) -> dict[str, np.ndarray]:
    """Check the npz's members from their headers, then load them; refuse any surprise."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info for info in archive.infolist()}
            wanted = {f"{name}.npy": name for name in expected}
            for member in sorted(set(members) - set(wanted)):
                _fail(f"{path}: holds {member!r}, which the manifest's network does not use")
            arrays = {}
            for member, name in wanted.items():
                spec = expected[name]
                if member not in members:
                    _fail(f"{path}: no array {name!r} ({spec.where})")
                with archive.open(member) as handle:
                    version = np.lib.format.read_magic(handle)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
                    elif version == (2, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
                    else:
                        _fail(f"{path}: {name} has npy format {version}")
                    if dtype not in (np.dtype("<f4"), np.dtype("<f8")) or fortran:
                        _fail(f"{path}: {name} ({spec.where}) is {dtype}, expected "
                              "little-endian float32 or float64 in C order")  # fmt: skip
                    if tuple(shape) != spec.shape:
                        _fail(f"{path}: {name} ({spec.where}) has shape {tuple(shape)}, the "
                              f"manifest declares {spec.shape}")  # fmt: skip
                    size = int(np.prod(spec.shape)) * dtype.itemsize
                    if members[member].file_size != handle.tell() + size:
                        _fail(f"{path}: {name} is {members[member].file_size} bytes "
                              f"uncompressed, expected {handle.tell() + size}")  # fmt: skip
                    data = handle.read(size + 1)
                if len(data) != size:
                    _fail(f"{path}: {name} is truncated")
                array = np.frombuffer(data, dtype=dtype).reshape(spec.shape).astype(np.float64)
                if not np.all(np.isfinite(array)):
                    _fail(f"{path}: {name} ({spec.where}) holds NaN or infinity")
                arrays[name] = array
            return arrays
    except BundleError:
        raise
    # The npz is untrusted binary input: zipfile, zlib and numpy's header parser raise many
    # types on malformed data (BadZipFile, zlib.error, ValueError, EOFError, OSError...).
    except Exception as error:
        raise BundleError(f"{path}: unreadable ({type(error).__name__}: "
                          f"{str(error)[:200]})") from error  # fmt: skip


def read_bundle(
    path: str | os.PathLike[str], *, public_key: PublicKey | None = None
) -> tuple[Manifest, dict[str, np.ndarray]]:
    """Verify a bundle folder whole and return its manifest and weights (float64).

    Args:
        path: the bundle folder.
        public_key: the ed25519 key the operator trusts; when given, the bundle must be
            signed by it.

    Raises:
        BundleError: names the file or field that is wrong, and why.
    """
    folder = Path(path)
    entries = _listing(folder)
    manifest = _read_manifest(folder, entries)
    _check_files(folder, manifest, entries)
    digest = _check_digest(folder, manifest)
    _check_signature(folder, manifest, digest, public_key)
    weights = _read_weights(folder / WEIGHTS, _expected_arrays(manifest))
    return manifest, weights


def manifest_json(manifest: dict[str, Any]) -> str:
    """Render a manifest as written to disk (strict JSON: NaN refused)."""
    return json.dumps(manifest, indent=2, allow_nan=False) + "\n"
