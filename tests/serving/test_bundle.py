"""The bundle is verified whole: digest, signature, manifest schema, files and arrays.

Most tests start from a copy of the shipped ``models/last-period`` bundle. A manifest edit is
written back with a fresh digest (``_rewrite``), so that the check under test, not the
digest, is what refuses it; the digest and signature have tests of their own.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipwarmup.actions import ENV_VERSION
from ipwarmup.errors import BundleError
from ipwarmup.serving import load_policy
from ipwarmup.serving.bundle import bundle_digest, file_sha256
from ipwarmup.serving.manifest import DIGEST, MANIFEST, SIGNATURE, WEIGHTS
from ipwarmup.training.export import write_bundle
from tests.serving.shipped import SHIPPED, default_bundle

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = default_bundle()
EXAMPLE = json.loads((ROOT / "examples" / "telemetry-v1.json").read_text())


def _copy(tmp_path: Path, name: str = "b") -> Path:
    return Path(shutil.copytree(DEFAULT, tmp_path / name))


def _manifest(folder: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text())
    return manifest


def _rewrite(folder: Path, manifest: object) -> None:
    """Write a manifest and a matching digest, as a careless or hostile tool would."""
    (folder / MANIFEST).write_text(json.dumps(manifest))
    names = [p.name for p in folder.iterdir() if p.name not in (MANIFEST, DIGEST, SIGNATURE)]
    (folder / DIGEST).write_text(bundle_digest(folder, names) + "\n")


def _arrays() -> dict[str, np.ndarray]:
    with np.load(DEFAULT / WEIGHTS) as archive:
        return {name: archive[name] for name in archive.files}


def test_the_shipped_bundle_loads_or_names_its_version() -> None:
    manifest = _manifest(SHIPPED)
    assert manifest["format_version"] == 2
    assert set(manifest["files"]) | {MANIFEST, DIGEST} == {p.name for p in SHIPPED.iterdir()}
    for name, entry in manifest["files"].items():
        size = (SHIPPED / name).stat().st_size
        assert entry == {"sha256": file_sha256(SHIPPED / name), "bytes": size}
    names = list(manifest["files"])
    assert (SHIPPED / DIGEST).read_text() == bundle_digest(SHIPPED, names) + "\n"
    if manifest["env"]["version"] == ENV_VERSION:
        assert load_policy(SHIPPED).providers == ("gmail", "microsoft", "yahoo", "apple", "other")
    else:  # the simulator changed since it was trained: refused until re-exported
        with pytest.raises(BundleError, match="re-export the policy from a matching version"):
            load_policy(SHIPPED)


def _set(manifest: dict[str, Any], path: str, value: object) -> None:
    parts = [part.replace("\0", ".") for part in path.replace(".npz", "\0npz").split(".")]
    *parents, last = parts
    node: Any = manifest
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


# (dotted path, new value, what the error must say)
MANIFEST_CASES = [
    ("guardrails.block_cut", 50, "manifest.guardrails.block_cut"),
    ("guardrails.block_cut", 0, "manifest.guardrails.block_cut"),
    ("guardrails.max_growth_per_day", 2.0, "so it can bind"),
    ("guardrails.deferral_rate", 1.5, "manifest.guardrails.deferral_rate"),
    ("guardrails.bounce_cut", -0.5, "manifest.guardrails.bounce_cut"),
    ("guardrails.complaint_thresholds", {"hotmail": 0.001}, "complaint_thresholds.hotmail"),
    ("guardrails.min_monthly_messages", -1, "manifest.guardrails.min_monthly_messages"),
    ("guardrails.surprise", 1, "manifest.guardrails.surprise"),
    ("action.max_hourly_cap_messages", -5, "manifest.action.max_hourly_cap_messages"),
    ("action.min_hourly_cap_messages", 3e7, "min_hourly_cap_messages is above"),
    ("action.max_cap_change_per_day", 1.0, "manifest.action.max_cap_change_per_day"),
    ("action.pool_threshold", 0.5, "pool_threshold"),
    ("action.low.0", -2.0, "manifest.action.low.0"),
    ("action.low.5", 1.0, "every action low must be below its high"),
    ("action.names", ["x"], "action.names: expected 6 entries"),
    ("normalization.var.3", -1.0, "manifest.normalization.var.3"),
    ("normalization.mean.0", 1e300, "manifest.normalization.mean.0"),
    ("normalization.clip_obs", 0.0, "manifest.normalization.clip_obs"),
    ("normalization.epsilon", "1e-8", "manifest.normalization.epsilon"),
    ("normalization.mean", [0.0] * 50, "normalization.mean: expected 51 entries"),
    ("env.id", "other/Env-v0", f"trained on other/Env-v0 v{ENV_VERSION}"),
    ("env.version", ENV_VERSION + 1, f"trained on ipwarmup/IPWarmup-v0 v{ENV_VERSION + 1}"),
    ("env.providers", ["gmail", "gmail", "yahoo", "apple", "other"], "listed twice"),
    ("env.providers", ["microsoft", "gmail", "yahoo", "apple", "other"], "observation.names"),
    ("env.max_ips", 0, "manifest.env.max_ips"),
    ("env.max_ips", True, "manifest.env.max_ips"),
    ("env.decision_interval_hours", 5, "manifest.env.decision_interval_hours"),
    ("observation.names.0", "gmail.volume", "observation.names"),
    ("observation.units", [], "observation.units: expected 51 entries"),
    ("network.layers.0.activation", "gelu", "manifest.network.layers.0.activation"),
    ("network.layers.0.inputs", 50, "network.layers.0.inputs: expected 51"),
    ("network.layers.2.outputs", 7, "network.layers.2.outputs: expected 6"),
    ("network.layers.1.bias", "layer0.bias", "used twice"),
    ("network.layers", [], "manifest.network.layers"),
    ("files.weights.npz.bytes", -1, "manifest.files.weights.npz.bytes"),
    ("files.weights.npz.sha256", "x" * 64, "manifest.files.weights.npz.sha256"),
    ("format_version", 1, "format 1 is not supported"),
    ("format_version", "2", "format '2' is not supported"),
    ("signature", {"algorithm": "rsa", "public_key": "00" * 32}, "manifest.signature.algorithm"),
    ("extra", {}, "manifest.extra"),
]


@pytest.mark.parametrize(("path", "value", "message"), MANIFEST_CASES)
def test_every_manifest_check_names_its_field(
    tmp_path: Path, path: str, value: object, message: str
) -> None:
    folder = _copy(tmp_path)
    manifest = _manifest(folder)
    _set(manifest, path, value)
    _rewrite(folder, manifest)
    with pytest.raises(BundleError) as error:
        load_policy(folder)
    assert message in str(error.value)


def test_a_missing_section_is_named(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    manifest = _manifest(folder)
    del manifest["normalization"]
    _rewrite(folder, manifest)
    with pytest.raises(BundleError, match=r"manifest\.normalization: Field required"):
        load_policy(folder)


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "sub/weights.npz", ".hidden", "a\\b"])
def test_files_outside_the_bundle_are_refused(tmp_path: Path, name: str) -> None:
    folder = _copy(tmp_path)
    manifest = _manifest(folder)
    manifest["files"][name] = manifest["files"]["README.md"]
    _rewrite(folder, manifest)
    with pytest.raises(BundleError, match=r"manifest\.files\."):
        load_policy(folder)


def test_extra_missing_and_non_plain_files_are_refused(tmp_path: Path) -> None:
    extra = _copy(tmp_path, "extra")
    (extra / "notes.txt").write_text("hello")
    with pytest.raises(BundleError, match=r"notes\.txt: not listed in manifest\.files"):
        load_policy(extra)
    missing = _copy(tmp_path, "missing")
    (missing / "README.md").unlink()
    with pytest.raises(BundleError, match=r"README\.md: missing"):
        load_policy(missing)
    folder = _copy(tmp_path, "folder")
    (folder / "sub").mkdir()
    with pytest.raises(BundleError, match="not a plain file"):
        load_policy(folder)
    link = _copy(tmp_path, "link")
    (link / "README.md").unlink()
    (link / "README.md").symlink_to(DEFAULT / "README.md")
    with pytest.raises(BundleError, match="not a plain file"):
        load_policy(link)


def _npz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _with_weights(tmp_path: Path, data: bytes) -> Path:
    folder = _copy(tmp_path)
    (folder / WEIGHTS).write_bytes(data)
    manifest = _manifest(folder)
    manifest["files"][WEIGHTS] = {"sha256": file_sha256(folder / WEIGHTS), "bytes": len(data)}
    _rewrite(folder, manifest)
    return folder


def _members(**changes: bytes) -> dict[str, bytes]:
    members = {f"{name}.npy": _npy(array) for name, array in _arrays().items()}
    members.update(changes)
    return members


def test_weights_are_checked_from_their_headers_before_loading(tmp_path: Path) -> None:
    header = io.BytesIO()
    # A header declaring 1e8 floats over a few bytes: refused by shape, never allocated.
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (100_000_000,)}
    )
    huge = _with_weights(
        tmp_path / "a", _npz(_members(**{"layer0.bias.npy": header.getvalue() + b"\0" * 64}))
    )
    with pytest.raises(BundleError, match=r"layer0\.bias .*has shape \(100000000,\)"):
        load_policy(huge)
    extra = _with_weights(tmp_path / "b", _npz(_members(**{"spare.npy": _npy(np.zeros(3))})))
    with pytest.raises(BundleError, match=r"holds 'spare\.npy'"):
        load_policy(extra)
    members = _members()
    del members["layer1.weight.npy"]
    gone = _with_weights(tmp_path / "c", _npz(members))
    with pytest.raises(
        BundleError, match=r"no array 'layer1\.weight' \(network\.layers\.1\.weight\)"
    ):
        load_policy(gone)
    ints = _with_weights(
        tmp_path / "d", _npz(_members(**{"layer0.bias.npy": _npy(np.zeros(64, dtype=np.int64))}))
    )
    with pytest.raises(BundleError, match="expected little-endian float32 or float64"):
        load_policy(ints)
    shape = _with_weights(
        tmp_path / "e", _npz(_members(**{"layer0.weight.npy": _npy(np.zeros((51, 64)))}))
    )
    with pytest.raises(
        BundleError, match=r"has shape \(51, 64\), the manifest declares \(64, 51\)"
    ):
        load_policy(shape)
    nan = _with_weights(
        tmp_path / "f", _npz(_members(**{"layer0.bias.npy": _npy(np.full(64, np.nan))}))
    )
    with pytest.raises(BundleError, match="NaN or infinity"):
        load_policy(nan)
    garbage = _with_weights(tmp_path / "g", b"PK\x03\x04 not really a zip")
    with pytest.raises(BundleError, match=r"weights\.npz: unreadable"):
        load_policy(garbage)


def test_any_single_byte_change_anywhere_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    files = sorted(p.name for p in DEFAULT.iterdir())
    base = {name: (DEFAULT / name).read_bytes() for name in files}
    folder = _copy(tmp_path)
    refused = 0
    for trial in range(120):
        name = files[trial % len(files)]
        data = bytearray(base[name])
        position = int(rng.integers(len(data)))
        data[position] ^= int(rng.integers(1, 256))
        (folder / name).write_bytes(bytes(data))
        with pytest.raises(BundleError):
            load_policy(folder)
        refused += 1
        (folder / name).write_bytes(base[name])
    assert refused == 120
    load_policy(folder)  # restored, it loads again


# ------------------------------------------------------------------------ signatures
def _signed(tmp_path: Path, key: Ed25519PrivateKey, name: str = "signed") -> Path:
    manifest = _manifest(DEFAULT)
    card = (DEFAULT / "README.md").read_text()
    return write_bundle(tmp_path / name, manifest, _arrays(), card=card, private_key=key)


def test_a_signed_bundle_loads_with_its_key_and_is_refused_with_another(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    bundle = _signed(tmp_path, key)
    public = key.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "key.pem").write_bytes(pem)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    for pinned in (public, pem, raw, raw.hex(), str(tmp_path / "key.pem"), tmp_path / "key.pem"):
        assert load_policy(bundle, public_key=pinned).decide(EXAMPLE)["guardrails"] == []
    assert load_policy(bundle).name == "default"  # unpinned: integrity still checked
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(BundleError, match="not by the pinned key"):
        load_policy(bundle, public_key=other)


def test_a_forged_signature_is_refused_even_under_the_named_key(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    bundle = _signed(tmp_path, key)
    forged = bytearray((bundle / SIGNATURE).read_bytes())
    forged[10] ^= 1
    (bundle / SIGNATURE).write_bytes(bytes(forged))
    with pytest.raises(BundleError, match="signature does not verify"):
        load_policy(bundle)
    with pytest.raises(BundleError, match="signature does not verify"):
        load_policy(bundle, public_key=key.public_key())


def test_a_pinned_key_refuses_an_unsigned_or_resigned_bundle(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    with pytest.raises(BundleError, match="not signed, but a public key is pinned"):
        load_policy(DEFAULT, public_key=key.public_key())
    # An attacker edits the manifest and signs with their own key, naming it.
    mallory = Ed25519PrivateKey.generate()
    bundle = _signed(tmp_path, mallory, "mallory")
    with pytest.raises(BundleError, match="not by the pinned key"):
        load_policy(bundle, public_key=key.public_key())
    stray = _copy(tmp_path, "stray")
    (stray / SIGNATURE).write_bytes(b"\0" * 64)
    with pytest.raises(BundleError, match=r"bundle\.sig: not listed"):
        load_policy(stray)
    with pytest.raises(BundleError, match="public key: not an ed25519 key"):
        load_policy(DEFAULT, public_key=b"-----BEGIN PUBLIC KEY-----\nxx\n")


# ------------------------------------------------------------------------------ fuzz
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:3]):
            out += _paths(value, (*prefix, i))
    return out


BASE_MANIFEST = json.loads((DEFAULT / MANIFEST).read_text())
PATHS = _paths(BASE_MANIFEST)[1:]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.sampled_from(PATHS), value=_JSON, drop=st.booleans())
def test_fuzzed_manifests_raise_only_the_bundle_error(
    tmp_path: Path, path: tuple[object, ...], value: object, drop: bool
) -> None:
    folder = tmp_path / "fuzz"
    if not folder.exists():
        shutil.copytree(DEFAULT, folder)
    manifest = json.loads(json.dumps(BASE_MANIFEST))
    node: Any = manifest
    for key in path[:-1]:
        node = node[key]  # type: ignore[index]
    if drop and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = value  # type: ignore[index]
    _rewrite(folder, manifest)
    with contextlib.suppress(BundleError):
        load_policy(folder).decide(EXAMPLE)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=_JSON)
def test_a_manifest_of_any_json_raises_only_the_bundle_error(tmp_path: Path, value: object) -> None:
    folder = tmp_path / "any"
    if not folder.exists():
        shutil.copytree(DEFAULT, folder)
    _rewrite(folder, value)
    with pytest.raises(BundleError):
        load_policy(folder)


def test_deeply_nested_or_non_json_manifests_are_bundle_errors(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    for text in ("[" * 100_000 + "]" * 100_000, '{"a": NaN}', "\udcff", ""):
        (folder / MANIFEST).write_bytes(text.encode("utf-8", "surrogatepass"))
        names = [p.name for p in folder.iterdir() if p.name not in (MANIFEST, DIGEST)]
        (folder / DIGEST).write_text(bundle_digest(folder, names) + "\n")
        with pytest.raises(BundleError, match=r"manifest\.json: not valid JSON"):
            load_policy(folder)


# ------------------------------------------------------------------- the forward pass
def _reference(
    manifest: dict[str, Any], arrays: dict[str, np.ndarray], obs: np.ndarray
) -> np.ndarray:
    """The forward pass written out plainly, independent of ServedPolicy's in-place code."""
    norm = manifest["normalization"]
    x = (obs - np.array(norm["mean"])) / np.sqrt(np.array(norm["var"]) + norm["epsilon"])
    x = np.clip(x, -norm["clip_obs"], norm["clip_obs"])
    functions = {
        "tanh": np.tanh,
        "relu": lambda v: np.where(v > 0, v, 0.0),
        "identity": lambda v: v,
    }
    for layer in manifest["network"]["layers"]:
        x = functions[layer["activation"]](x @ arrays[layer["weight"]].T + arrays[layer["bias"]])
    action = manifest["action"]
    return np.clip(x, np.array(action["low"]), np.array(action["high"]))


@pytest.mark.parametrize(
    ("activations", "clip_obs", "low"),
    [
        (("tanh", "tanh", "identity"), 10.0, -1.0),
        (("relu", "relu", "identity"), 10.0, -1.0),
        (("relu", "tanh", "tanh"), 0.5, -0.25),
        (("identity", "relu", "identity"), 1.0, -0.1),
    ],
)
def test_each_activation_and_clip_matches_a_plain_numpy_reference(
    tmp_path: Path, activations: tuple[str, str, str], clip_obs: float, low: float
) -> None:
    manifest = _manifest(DEFAULT)
    for layer, activation in zip(manifest["network"]["layers"], activations, strict=True):
        layer["activation"] = activation
    manifest["normalization"]["clip_obs"] = clip_obs
    manifest["action"]["low"] = [low] * 6
    manifest["action"]["high"] = [0.9] * 6  # below tanh's reach, so it binds there too
    arrays = {name: array * 3.0 for name, array in _arrays().items()}  # bolder: clips bind
    policy = load_policy(write_bundle(tmp_path / "b", manifest, arrays))
    rng = np.random.default_rng(1)
    obs = rng.uniform(-1.0, 3.0, size=(256, 51))
    ours = policy.forward(obs)
    expected = _reference(manifest, {k: v.astype(np.float64) for k, v in arrays.items()}, obs)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)
    # Each clip bound: the action clip at both ends, and the observation clip.
    assert (ours == low).any() and (ours == 0.9).any()
    z = (obs - np.array(manifest["normalization"]["mean"])) / np.sqrt(
        np.array(manifest["normalization"]["var"]) + manifest["normalization"]["epsilon"]
    )
    assert (np.abs(z) > clip_obs).any()
    one = policy.predict(obs[0].astype(np.float32))[0]
    np.testing.assert_allclose(one, expected[0].astype(np.float32), rtol=1e-5, atol=1e-6)


def test_a_wrong_activation_or_a_missing_clip_would_be_seen(tmp_path: Path) -> None:
    """The reference differs when a layer's activation or the clip differs (the tests bite)."""
    manifest = _manifest(DEFAULT)
    arrays = {name: array * 3.0 for name, array in _arrays().items()}
    obs = np.random.default_rng(2).uniform(-1.0, 3.0, size=(64, 51))
    policy = load_policy(write_bundle(tmp_path / "b", manifest, arrays))
    relu = json.loads(json.dumps(manifest))
    relu["network"]["layers"][0]["activation"] = "relu"
    assert not np.allclose(policy.forward(obs), _reference(relu, arrays, obs))
    unclipped = json.loads(json.dumps(manifest))
    unclipped["action"]["low"] = [-1e9] * 6
    unclipped["action"]["high"] = [1e9] * 6
    assert not np.allclose(policy.forward(obs), _reference(unclipped, arrays, obs))
