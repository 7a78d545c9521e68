"""CPU time of one daily step of ``make_vec_env`` at 256 envs: a before/after check under load.

Run ``python benchmarks/vec_step_cpu.py`` here, and
``benchmarks/at_commit.sh COMMIT benchmarks/vec_step_cpu.py`` for another commit, in
alternation (``--actions zeros`` or ``random``). It steps the batch through whole episodes
(resets and the continuation after the horizon included, as in section 2 of
``env_throughput.py``) and prints this process's CPU milliseconds per vec step, the best
of the repeats, and the simulated env-hours per CPU second, with the wall-clock time per
step beside it. CPU time is what the run itself cost, less moved than wall time by other
processes queueing for the shared cores, so two commits compare even when
``env_throughput.py``'s wall-clock ratios are swamped. A batch's rows run on several
threads (``ipwarmup.envs.threads``): ``--threads N`` sets their number (default: the
package's, ``NUMBA_NUM_THREADS`` or the machine's cores), and CPU time counts every thread.
It prints, it does not assert.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads: one core, as env_throughput.py

import time  # noqa: E402

from _common import daily_batch, load  # noqa: E402  # the script's own folder

import ipwarmup.envs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Time the batch's daily steps and print the best repeat's CPU time per step."""
    batch = daily_batch(__doc__.splitlines()[0], argv)
    args, threads, env, actions = batch.args, batch.threads, batch.env, batch.actions
    steps = len(actions)
    started_load = load()
    env.reset()
    for action in actions:  # warm-up: kernels loaded or compiled, caches filled
        env.step(action)
    best = best_wall = float("inf")
    for _ in range(args.repeats):
        start, start_wall = time.process_time(), time.perf_counter()
        for action in actions:
            env.step(action)
        best = min(best, (time.process_time() - start) / steps)
        best_wall = min(best_wall, (time.perf_counter() - start_wall) / steps)
    hours = args.n_envs * env.config.decision_interval_hours / best
    print(
        f"{ipwarmup.envs.__file__}  n_envs {args.n_envs}  actions {args.actions}  "
        f"threads {threads}: {1e3 * best:.3f} ms CPU per vec step (best of {args.repeats} x "
        f"{steps} steps), {hours:,.0f} env-hours per CPU s; wall {1e3 * best_wall:.3f} ms "
        f"per step; load {started_load} -> {load()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
