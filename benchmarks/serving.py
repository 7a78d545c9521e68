"""Serving speed: a bundle's decisions next to SB3 and onnxruntime on the same weights.

Run ``python benchmarks/serving.py`` (``--model DIR`` for a trained model, ``--json PATH``
to also write every figure as JSON, ``--last-period`` for a bundle of the last period alone
on schema-1 records, as ``models/default``; by default the env's layout, with history and
the MTA's set-up, on ``examples/telemetry.json``'s schema-2 record). It prints, it does
not assert: the targets are informational and the exit code is 0 whether they are met or
missed. The onnxruntime peer needs the ``bench`` extra (``pip install -e ".[bench]"``:
onnxruntime, onnx, onnxscript); without it that peer is skipped with a note.

The model: by default a fresh PPO trained for 360 steps in a temporary folder (as the
serving tests' fixture does) and exported with ``export_model``, so the bundle and the SB3
peer hold the same weights by construction. ``--model DIR`` takes a training output
(``model.zip`` and ``vecnormalize.pkl``), exported the same way for ``--scenario``; or a
bundle (``manifest.json``), which holds no ``model.zip``: its SB3 and onnxruntime peers are
then skipped with a note.

What is measured, all in this one process (the HTTP server excepted):

1. ``ServedPolicy.decide(record)`` on ``examples/telemetry.json`` (validation, encoding,
   network, guardrails), one call at a time: p50/p99 over 5,000 calls; its parts alone
   (``ipwarmup.serving.single``'s fast check and compiled kernel with the Python that
   gathers their input, and that row's steps one by one: the gather, ``pickle.dumps``, the
   compiled ``prepare``, numpy's ``log10``, the compiled ``decide``; writing the
   decision); the long way that a record the fast check
   refuses takes (pydantic's validation, then the same kernel) and its validation alone;
   and the network alone, ``ServedPolicy.predict(obs)`` on one observation (numpy,
   normalisation included).
2. ``ServedPolicy.forward(batch)`` on 1,024 observations: decisions/s.
3. The peers on the same weights: SB3 ``model.predict(normalize(obs), deterministic=True)``
   (``PPO.load``; the VecNormalize statistics applied in numpy inside the timed call, as
   ``predict`` does its own); and onnxruntime running the actor (``mlp_extractor.policy_net``
   and ``action_net``, normalisation and action clipping folded into the graph) exported
   with ``torch.onnx.export``. Single observation p50/p99 and batch-1,024 decisions/s for
   each, and the largest difference from the bundle's actions.
4. Ratios of the peers' single-observation p50 to ``decide`` and to ``predict``. Targets
   (issue 11): ``decide`` p50 at most 30 µs and 10x faster than SB3 ``predict``;
   ``decide_batch`` and the batch endpoint at least 20,000 decisions/s; the normal client
   keeps at least 80% of its throughput under attack.
5. HTTP (``_serving_http.py``): ``serve`` in a subprocess on a free 127.0.0.1 port; one
   keep-alive client (``http.client``) posting the example record for 5 s; the same posting
   1,000 records to ``/v1/decide/batch`` (decisions/s); and fairness: the normal client's
   requests/s alone, then while four client processes post worst-case records (the example
   padded to 64 KiB with ~4,000 unknown keys), as a share kept. ``decide_batch`` on the same
   1,000 records is timed in-process beside the forward pass.

Method: ``time.perf_counter_ns`` around each call (latency) or around a loop of calls run
for at least a second (throughput), after a warm-up; the garbage collector stays on, as in
a server. Beside each wall-clock figure, the same from this process's CPU time
(``time.process_time_ns``; for the batch endpoint, the server's from /proc): on a machine
that others load, wall-clock figures fall with the load, while CPU-time figures say what a
core of its own would give (cache and memory contention still slow them a little).
One 2 MB array is allocated and freed before anything is measured: until glibc's
malloc has freed such a block once, it serves the 512 KB temporaries of a batch-1,024
forward with fresh pages from the kernel each time (its dynamic mmap threshold), which makes
numpy's batch figure ~2.5x worse and depend on what ran before. Every thread pool is
limited to one thread before numpy and torch load (BLAS, OpenMP, torch, onnxruntime), so
the figures are for one core; on a shared machine a multi-threaded BLAS can be several
times slower for these small matrices, not faster.
"""

from __future__ import annotations

import os

# Before numpy (and anything importing it) loads: one BLAS/OpenMP thread, no telemetry.
# The server subprocess inherits them.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import pickle  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import write_json  # noqa: E402  # the script's own folder
from _serving_http import batch_run, fairness, single_run, worst_case_body  # noqa: E402

import ipwarmup  # noqa: E402
from ipwarmup.serving import kernel, kernel_record  # noqa: E402
from ipwarmup.serving.policy import ServedPolicy, load_policy  # noqa: E402
from ipwarmup.serving.telemetry import encode_arrays, record_arrays, validate  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "telemetry.json"
EXAMPLE_V1 = EXAMPLE.with_name("telemetry-v1.json")
LAST_PERIOD = ("observation.history_periods=0", "observation.mta_inputs=false")
SCENARIO = "steady_b2c_transactional"
SINGLE_CALLS = 5_000
BATCH = 1_024
HTTP_SECONDS = 5.0
DECIDE_TARGET_US = 30.0
SPEEDUP_TARGET = 10.0
BATCH_TARGET = 20_000.0
FAIRNESS_TARGET = 0.8
FLEET = 1_000
"""Records per decide_batch call and per POST /v1/decide/batch request."""


@dataclass(frozen=True)
class Latency:
    """Per-call latency of one thing, in microseconds (wall clock, and this process's CPU)."""

    name: str
    calls: int
    p50_us: float
    p99_us: float
    cpu_p50_us: float


@dataclass(frozen=True)
class Throughput:
    """Decisions per second of one thing on a batch."""

    name: str
    batch: int
    batches: int
    decisions_per_s: float
    batch_p50_us: float
    decisions_per_cpu_s: float


def latency(name: str, call: Callable[[], object], calls: int = SINGLE_CALLS) -> Latency:
    for _ in range(max(calls // 10, 50)):
        call()
    times = np.empty(calls, dtype=np.int64)
    cpu_times = np.empty(calls, dtype=np.int64)
    clock, cpu = time.perf_counter_ns, time.process_time_ns
    for i in range(calls):
        start, cpu_start = clock(), cpu()
        call()
        times[i] = clock() - start
        cpu_times[i] = cpu() - cpu_start
    p50, p99 = np.percentile(times, [50, 99]) / 1e3
    return Latency(name, calls, float(p50), float(p99), float(np.percentile(cpu_times, 50)) / 1e3)


def throughput(
    name: str, call: Callable[[], object], batch: int, min_seconds: float = 1.0
) -> Throughput:
    for _ in range(5):
        call()
    times: list[int] = []
    clock, cpu = time.perf_counter_ns, time.process_time_ns
    began, cpu_began = clock(), cpu()
    while clock() - began < min_seconds * 1e9 or len(times) < 10:
        start = clock()
        call()
        times.append(clock() - start)
    cpu_seconds = (cpu() - cpu_began) / 1e9
    seconds = sum(times) / 1e9
    p50 = float(np.percentile(times, 50)) / 1e3
    return Throughput(name, batch, len(times), batch * len(times) / seconds, p50,
                      batch * len(times) / cpu_seconds)  # fmt: skip


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Model:
    """The bundle under test and, when there is one, the SB3 model it was exported from."""

    bundle: Path
    model_dir: Path | None
    origin: str


def train_tiny(folder: Path, overrides: tuple[str, ...] = ()) -> Path:
    """Train a PPO for 360 steps on the default scenario; return the model folder."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    from ipwarmup.envs import make_vec_env

    model_dir = folder / "model"
    model_dir.mkdir()
    env = VecNormalize(make_vec_env(scenario=SCENARIO, overrides=overrides, n_envs=4, seed=0))
    model = PPO("MlpPolicy", env, n_steps=45, batch_size=180, seed=0, device="cpu")
    model.learn(360)
    model.save(model_dir / "model.zip")
    env.save(str(model_dir / "vecnormalize.pkl"))
    env.close()
    return model_dir


def prepare(
    path: Path | None, scenario: str, scratch: Path, overrides: tuple[str, ...] = ()
) -> Model:
    """Find or build the bundle (and its SB3 model) to measure."""
    from ipwarmup.envs import build_config
    from ipwarmup.training.export import export_model

    if path is not None and (path / "manifest.json").is_file():
        return Model(path, None, f"bundle {path}")
    if path is None:
        model_dir, origin = train_tiny(scratch, overrides), "a fresh PPO trained for 360 steps"
    elif (path / "model.zip").is_file():
        model_dir, origin = path, f"model {path}"
    else:
        raise SystemExit(f"--model: '{path}' holds neither manifest.json nor model.zip")
    config = build_config(scenario=scenario, overrides=overrides)
    bundle = export_model(model_dir, scratch / "bundle", config, name="benchmark")
    return Model(bundle, model_dir, origin)


def observations(
    policy: ServedPolicy, scenario: str, count: int, overrides: tuple[str, ...] = ()
) -> np.ndarray:
    """Collect ``count`` observations from simulated warmups under random actions."""
    from ipwarmup.envs import make_vec_env

    n_envs = 64
    env = make_vec_env(scenario=scenario, overrides=overrides, n_envs=n_envs, seed=0)
    rng = np.random.default_rng(0)
    rows = [env.reset()]
    while sum(len(r) for r in rows) < count:
        actions = rng.uniform(-1.0, 1.0, size=(n_envs, *env.action_space.shape))
        rows.append(env.step(actions.astype(np.float32))[0])
    env.close()
    batch = np.concatenate(rows)[:count].astype(np.float32)
    if batch.shape[1] != len(policy.manifest["observation"]["names"]):
        raise SystemExit(f"--scenario {scenario}: its observations do not fit the bundle")
    return batch


# --------------------------------------------------------------------------- the peers


class Normalizer:
    """VecNormalize's observation statistics, applied as ``VecNormalize.normalize_obs``."""

    def __init__(self, stats: Path) -> None:
        with stats.open("rb") as handle:
            # Our own training output, unpickled only here, never in serving.
            vec = pickle.load(handle)
        self.mean = vec.obs_rms.mean
        self.std = np.sqrt(vec.obs_rms.var + vec.epsilon)
        self.clip = vec.clip_obs

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Return the normalised observations, float32 as SB3 takes them."""
        scaled: np.ndarray = np.clip((obs - self.mean) / self.std, -self.clip, self.clip)
        return scaled.astype(np.float32)


def sb3_peer(
    model_dir: Path, single: np.ndarray, batch: np.ndarray, bundle: ServedPolicy
) -> dict[str, Any]:
    from stable_baselines3 import PPO

    model = PPO.load(model_dir / "model.zip", device="cpu")
    normalize = Normalizer(model_dir / "vecnormalize.pkl")

    def predict(obs: np.ndarray) -> np.ndarray:
        action, _ = model.predict(normalize(obs), deterministic=True)
        return np.asarray(action)

    return {
        "single": latency("SB3 model.predict, 1 obs", lambda: predict(single)),
        "batch": throughput(f"SB3 model.predict, {BATCH} obs", lambda: predict(batch), BATCH),
        "max_abs_diff": float(np.max(np.abs(predict(batch) - bundle.forward(batch)))),
    }


class _Actor(torch.nn.Module):
    """SB3's deterministic actor with VecNormalize and the action clipping folded in."""

    def __init__(self, model: Any, normalize: Normalizer, low: float, high: float) -> None:
        super().__init__()
        self.policy_net = model.policy.mlp_extractor.policy_net
        self.action_net = model.policy.action_net
        self.register_buffer("mean", torch.as_tensor(normalize.mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(normalize.std, dtype=torch.float32))
        self.clip = float(normalize.clip)
        self.low, self.high = low, high

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = torch.clamp((obs - self.mean) / self.std, -self.clip, self.clip)
        action: torch.Tensor = torch.clamp(self.action_net(self.policy_net(x)), self.low, self.high)
        return action


def onnx_peer(
    model_dir: Path, single: np.ndarray, batch: np.ndarray, bundle: ServedPolicy, scratch: Path
) -> dict[str, Any]:
    import onnxruntime
    from stable_baselines3 import PPO

    model = PPO.load(model_dir / "model.zip", device="cpu")
    space = model.action_space
    actor = _Actor(model, Normalizer(model_dir / "vecnormalize.pkl"), space.low[0], space.high[0])
    actor.eval()
    try:
        import onnxscript  # noqa: F401  (torch's default, dynamo-based exporter needs it)

        exporter = "dynamo"
    except ImportError:
        exporter = "legacy TorchScript (onnxscript is not installed)"
    path = scratch / "actor.onnx"
    # The dynamo exporter logs a warning per torchvision operator it cannot register.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(
            actor,
            (torch.as_tensor(batch[:2]),),
            str(path),
            input_names=["obs"],
            output_names=["action"],
            dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}},
            dynamo=exporter == "dynamo",
            verbose=False,
        )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    one = single.reshape(1, -1)

    def run(obs: np.ndarray) -> np.ndarray:
        result: np.ndarray = session.run(None, {"obs": obs})[0]
        return result

    return {
        "exporter": exporter,
        "version": onnxruntime.__version__,
        "single": latency("onnxruntime, 1 obs", lambda: run(one)),
        "batch": throughput(f"onnxruntime, {BATCH} obs", lambda: run(batch), BATCH),
        "max_abs_diff": float(np.max(np.abs(run(batch) - bundle.forward(batch)))),
    }


# --------------------------------------------------------------------------- HTTP


# --------------------------------------------------------------------------- report


def _row(item: Latency | Throughput) -> str:
    if isinstance(item, Latency):
        return (f"  {item.name:<38} p50 {item.p50_us:9.1f} µs   p99 {item.p99_us:9.1f} µs   "
                f"CPU p50 {item.cpu_p50_us:7.1f} µs")  # fmt: skip
    return (
        f"  {item.name:<38} {item.decisions_per_s:>12,.0f} decisions/s   "
        f"(batch p50 {item.batch_p50_us:,.0f} µs; {item.decisions_per_cpu_s:,.0f} per CPU-s)"
    )


def _ratio(peer: Latency, ours: Latency, what: str) -> str:
    return (f"  {peer.name} p50 / {what} p50 = {peer.p50_us / ours.p50_us:6.2f}x "
            f"(CPU p50: {peer.cpu_p50_us / ours.cpu_p50_us:6.2f}x)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Measure and print; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="model or bundle folder")
    parser.add_argument("--scenario", default=SCENARIO, help="scenario of the observations")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write figures as JSON")
    parser.add_argument("--last-period", action="store_true",
                        help="a bundle of the last period alone, on schema-1 records")  # fmt: skip
    args = parser.parse_args(argv)
    overrides = LAST_PERIOD if args.last_period else ()
    torch.set_num_threads(1)
    np.ones(1 << 18).sum()  # raise glibc's mmap threshold now (see the module docstring)
    started = time.perf_counter()
    print(
        f"ipwarmup {ipwarmup.__version__}, Python {platform.python_version()}, numpy "
        f"{np.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f}; one thread everywhere"
    )
    with tempfile.TemporaryDirectory(prefix="ipwarmup-bench-") as scratch_name:
        scratch = Path(scratch_name)
        model = prepare(args.model, args.scenario, scratch, overrides)
        policy = load_policy(model.bundle)
        print(f"model: {model.origin}; bundle {policy.name!r}, providers {policy.providers}, "
              f"layout {policy.layout}")  # fmt: skip
        body = (EXAMPLE_V1 if args.last_period else EXAMPLE).read_bytes()
        record = json.loads(body)
        policy.decide(record)  # refuses a bundle whose providers differ from the example's
        batch = observations(policy, args.scenario, BATCH, overrides)
        single = batch[BATCH // 2]

        decide = latency("bundle decide(record)", lambda: policy.decide(record))
        predict = latency("bundle predict(obs), 1 obs", lambda: policy.predict(single))
        forward = throughput(f"bundle forward, {BATCH} obs", lambda: policy.forward(batch), BATCH)
        fleet = [json.loads(body) for _ in range(FLEET)]
        decide_batch = throughput(
            f"bundle decide_batch, {FLEET} records", lambda: policy.decide_batch(fleet), FLEET
        )
        # Where decide's time goes: its steps, alone, as decide runs them; the long way
        # (pydantic, then the kernel) that records the fast check refuses take; and the
        # shared batch encoder on one record, which decide_batch runs (and decide once did).
        numbers = policy._single.decide(record)
        assert numbers is not None  # the example passes the fast check; its output is finite
        clean = validate(record, policy.providers, max_ips=policy.max_ips, layout=policy.layout)
        parts = [
            latency(
                "  of which check, encode, net, guards",
                lambda: policy._single.decide(record),
            ),
            latency("  of which writing the decision", lambda: policy._decision(*numbers)),
            latency(
                "decide the long way (pydantic first)",
                lambda: policy._decide_one(policy._validate(record)),
            ),
            latency(
                "  of which validate(record) (pydantic)",
                lambda: validate(
                    record, policy.providers, max_ips=policy.max_ips, layout=policy.layout
                ),
            ),
            latency(
                "  shared encode(), one record",
                lambda: encode_arrays(
                    [clean],
                    policy.providers,
                    *record_arrays([clean], policy.providers),
                    horizon_days=policy.horizon_days,
                    max_ips=policy.max_ips,
                    layout=policy.layout,
                ),
            ),
        ]
        # The fast path's steps one by one, as OneRecord.decide runs them (the Python
        # between them, the pool rules and reasons, is the rest of its row above).
        one = policy._single
        flat = one._gather(record)
        assert flat is not None
        data = pickle.dumps(flat, 2)
        layout = one._layout_v2 if len(flat) > 10 * len(policy.providers) + 7 else one._layout
        values, logs, out = np.empty(len(flat)), np.empty(one._n_logs), np.empty(one._size)
        assert kernel_record.prepare(data, values, one._consts, layout, logs)
        log_inputs, log_out = logs.copy(), np.empty_like(logs)
        np.log10(logs, out=logs)
        steps = [
            latency("    gather its numbers (Python)", lambda: one._gather(record)),
            latency("    pickle.dumps them", lambda: pickle.dumps(flat, 2)),
            latency(
                "    compiled prepare (read, check)",
                lambda: kernel_record.prepare(data, values, one._consts, layout, log_out),
            ),
            latency("    numpy log10", lambda: np.log10(log_inputs, out=log_out)),
            latency(
                "    compiled decide (encode, net, guards)",
                lambda: kernel.decide(values, logs, one._consts, layout, out),
            ),
        ]
        parts[1:1] = steps
        figures: dict[str, Any] = {
            "decide": decide,
            "decide_fast_check_and_kernel": parts[0],
            "decide_gather": steps[0],
            "decide_pickle": steps[1],
            "decide_kernel_prepare": steps[2],
            "decide_log10": steps[3],
            "decide_kernel_decide": steps[4],
            "decide_write": parts[6],
            "decide_long_way": parts[7],
            "decide_validate": parts[8],
            "shared_encode_one_record": parts[9],
            "predict": predict,
            "forward": forward,
            "decide_batch": decide_batch,
        }
        peers: dict[str, dict[str, Any]] = {}
        notes: list[str] = []
        if model.model_dir is None:
            notes.append("SB3 and onnxruntime peers skipped: a bundle holds no model.zip")
        else:
            peers["sb3"] = sb3_peer(model.model_dir, single, batch, policy)
            try:
                import onnxruntime  # noqa: F401
            except ImportError:
                notes.append("onnxruntime peer skipped: pip install -e '.[bench]'")
            else:
                peers["onnxruntime"] = onnx_peer(model.model_dir, single, batch, policy, scratch)
        web = single_run(model.bundle, body, HTTP_SECONDS)
        web_batch = batch_run(model.bundle, fleet, HTTP_SECONDS)
        fair = fairness(model.bundle, body, worst_case_body(record))

    print("\nsingle decision (latency)")
    for item in [decide, *parts, predict, *(peer["single"] for peer in peers.values())]:
        print(_row(item))
    print(f"\nbatch of {BATCH} (throughput)")
    for item in [forward, decide_batch, *(peer["batch"] for peer in peers.values())]:
        print(_row(item))
    for name, peer in peers.items():
        extra = ""
        if name == "onnxruntime":
            extra = f" (onnxruntime {peer['version']}, exporter: {peer['exporter']})"
        print(f"  {name}: largest |action - bundle action| {peer['max_abs_diff']:.2e}{extra}")
    for note in notes:
        print(f"  note: {note}")
    print("\nratios (higher: the bundle is faster)")
    for peer in peers.values():
        print(_ratio(peer["single"], decide, "decide"))
        print(_ratio(peer["single"], predict, "predict"))
        print(
            f"  {peer['batch'].name}: bundle forward is "
            f"{forward.decisions_per_s / peer['batch'].decisions_per_s:.2f}x its throughput"
        )
    print("\nHTTP, keep-alive loopback clients (ipwarmup serve: uvicorn, log level warning)")
    for label, run in (("POST /v1/decide, one client", web),
                       (f"POST /v1/decide/batch, {FLEET} records", web_batch)):  # fmt: skip
        print(
            f"  {label}: {run['requests']:,} requests in {run['seconds']:.2f} s, "
            f"{run['requests_per_s']:,.0f} req/s, p50 {run['p50_us']:,.0f} µs, "
            f"p99 {run['p99_us']:,.0f} µs, statuses {run['statuses']}"
        )
    print(
        f"  batch endpoint: {web_batch['decisions_per_s']:,.0f} decisions/s; "
        f"{web_batch['decisions_per_cpu_s']:,.0f} per second of the server's CPU time"
    )
    alone, loaded = fair["alone"], fair["under_attack"]
    print(
        f"  fairness: a normal client alone {alone['requests_per_s']:,.0f} req/s "
        f"(p99 {alone['p99_us']:,.0f} µs); while 4 clients send {fair['worst_body_bytes']:,}-byte "
        f"records of unknown keys: {loaded['requests_per_s']:,.0f} req/s "
        f"(p99 {loaded['p99_us']:,.0f} µs), {fair['kept']:.0%} kept"
    )
    hostile = fair["worst_case_alone"]
    print(
        f"  one worst-case record: p50 {hostile['p50_us']:,.0f} µs, statuses {hostile['statuses']}"
    )
    print(f"\nload average now {os.getloadavg()[0]:.2f} (at the start it is on the first line)")
    print("\ntargets (informational)")
    met = "met" if decide.p50_us <= DECIDE_TARGET_US else "missed"
    print(f"  decide p50 {decide.p50_us:.1f} µs <= {DECIDE_TARGET_US:.0f} µs: {met} "
          f"(CPU p50 {decide.cpu_p50_us:.1f} µs: "
          f"{'met' if decide.cpu_p50_us <= DECIDE_TARGET_US else 'missed'})")  # fmt: skip
    for label, rate, cpu_rate in (
        ("decide_batch", decide_batch.decisions_per_s, decide_batch.decisions_per_cpu_s),
        ("POST /v1/decide/batch", web_batch["decisions_per_s"],
         web_batch["decisions_per_cpu_s"]),
    ):  # fmt: skip
        met = "met" if rate >= BATCH_TARGET else "missed"
        cpu_met = "met" if cpu_rate >= BATCH_TARGET else "missed"
        print(f"  {label} {rate:,.0f} decisions/s >= {BATCH_TARGET:,.0f}: {met} "
              f"(per CPU-s {cpu_rate:,.0f}: {cpu_met})")  # fmt: skip
    met = "met" if fair["kept"] >= FAIRNESS_TARGET else "missed"
    print(f"  normal client keeps {fair['kept']:.0%} >= {FAIRNESS_TARGET:.0%} under attack: {met}")
    if "sb3" in peers:
        speedup = peers["sb3"]["single"].p50_us / decide.p50_us
        cpu_speedup = peers["sb3"]["single"].cpu_p50_us / decide.cpu_p50_us
        met = "met" if speedup >= SPEEDUP_TARGET else "missed"
        print(f"  decide >= {SPEEDUP_TARGET:.0f}x faster than SB3 predict: {speedup:.2f}x, {met} "
              f"(CPU p50 {cpu_speedup:.2f}x)")  # fmt: skip
    print(f"\nwall time {time.perf_counter() - started:.1f} s")

    if args.json is not None:
        report = {
            "model": model.origin,
            **{key: asdict(value) for key, value in figures.items()},
            "peers": {
                name: {
                    key: asdict(value) if isinstance(value, Latency | Throughput) else value
                    for key, value in peer.items()
                }
                for name, peer in peers.items()
            },
            "http": web,
            "http_batch": web_batch,
            "fairness": fair,
            "notes": notes,
        }
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
