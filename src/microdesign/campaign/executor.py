"""Where a campaign's evaluations run: in its own process (``executor=local``) or on Ray workers (``executor=ray``).

``local`` (the default) is the serial loop of :class:`~microdesign.campaign.loop.Campaign`: one trial
at a time in the campaign's process. ``ray`` spreads the trials over Ray actors (Moritz et al.,
"Ray: a distributed framework for emerging AI applications", OSDI 2018; docs.ray.io), on this
machine or on a cluster (``docs/scale_out.md``):

* Each worker is an actor (:class:`EvaluationWorker`) that builds the generator, characteriser, cell
  model and objective once from the campaign's resolved config, declares its resources
  (``num_gpus`` when the stages run on CUDA, ``num_cpus`` otherwise) and evaluates one design per call
  (generator -> characterisation -> cell -> objective). Workers return results; only the driver (the
  campaign process) writes the campaign file.
* ``mode: async`` (default) keeps every worker busy: when one frees, the proposer fits on the
  finished trials and proposes one design with the running ones as pending points (BoTorch
  ``X_pending``: the acquisition integrates over their unknown outcomes; Ginsbourger et al.,
  "Kriging is well-suited to parallelize optimization", 2010; Balandat et al., NeurIPS 2020).
  ``mode: sync`` proposes ``optimiser.q`` designs, runs them over the workers and waits for all
  before the next proposal: the same trials and values as ``executor=local`` for the same config.
* A worker that dies mid-trial (its process killed, its node lost: Ray's ``RayActorError``) is
  replaced; its trial becomes ``abandoned`` and is queued again with the same inputs and seed, up to
  ``max_retries`` times, then ``failed`` with the reason.
* ``split_cubes: true`` fans one design's cubes out as Ray tasks (``cubes_per_task`` cubes each)
  holding one worker's resources, so that a single design's characterisation (39 cubes of 128³ in
  the reference setting) uses the whole cluster; the trial's actor then only coordinates and holds
  no CPU of its own (on CUDA a 1% share of a GPU, for the generator). The per-cube values are those
  of the unsplit characterisation, in the same order.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from microdesign.errors import ConfigError

log = logging.getLogger(__name__)

KINDS = ("local", "ray")
MODES = ("async", "sync")
RAY_EXTRA_HINT = 'Ray installed: pip install -e ".[ray]" (the package\'s "ray" extra)'


def require_ray() -> Any:
    """Import Ray, or raise a ConfigError naming the extra that installs it.

    Raises:
        ConfigError: Ray is not installed.
    """
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("executor", "ray", RAY_EXTRA_HINT) from exc
    return ray


@dataclass(frozen=True)
class ExecutorSettings:
    """The ``executor`` config group (``conf/executor/``).

    Attributes:
        kind: ``"local"`` (in-process, one trial at a time) or ``"ray"``.
        address: Ray cluster to join: None starts a local Ray on this machine with the workers'
            resources; ``"auto"`` joins the cluster started on this node (``ray start``); ``"ray://host:port"``
            connects through Ray Client.
        num_workers: evaluation actors (trials evaluated at once) [-].
        mode: ``"async"`` (a new proposal whenever a worker frees, running trials as ``X_pending``) or
            ``"sync"`` (batches of ``optimiser.q``, wait for all).
        num_cpus_per_worker: CPUs each worker declares when the stages run on the CPU [-].
        num_gpus_per_worker: GPUs each worker declares; ``"auto"``: 1 when the generator or the
            characteriser is set to CUDA, or set to ``auto`` and the cluster has GPUs; else 0.
        max_retries: re-runs of a trial whose worker died before it becomes ``failed`` [-].
        split_cubes: characterise one design's cubes as parallel Ray tasks.
        cubes_per_task: cubes per task when ``split_cubes`` [-].

    Raises:
        ConfigError: an unknown kind or mode, or a count out of range.
    """

    kind: str = "local"
    address: str | None = None
    num_workers: int = 2
    mode: str = "async"
    num_cpus_per_worker: float = 1.0
    num_gpus_per_worker: float | str = "auto"
    max_retries: int = 2
    split_cubes: bool = False
    cubes_per_task: int = 4

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError("executor.kind", self.kind, f"one of {list(KINDS)} (executor=local | executor=ray)")
        if self.mode not in MODES:
            raise ConfigError("executor.mode", self.mode, f"one of {list(MODES)}")
        if int(self.num_workers) < 1:
            raise ConfigError("executor.num_workers", self.num_workers, "an integer >= 1")
        if not float(self.num_cpus_per_worker) > 0:
            raise ConfigError("executor.num_cpus_per_worker", self.num_cpus_per_worker, "a number > 0")
        g = self.num_gpus_per_worker
        if g != "auto" and not (isinstance(g, (int, float)) and g >= 0):
            raise ConfigError("executor.num_gpus_per_worker", g, "'auto' or a number >= 0")
        if int(self.max_retries) < 0:
            raise ConfigError("executor.max_retries", self.max_retries, "an integer >= 0")
        if int(self.cubes_per_task) < 1:
            raise ConfigError("executor.cubes_per_task", self.cubes_per_task, "an integer >= 1")
        a = self.address
        if a is not None and not (a == "auto" or str(a).startswith("ray://") or ":" in str(a)):
            raise ConfigError("executor.address", a, "null (a local Ray), 'auto' or 'ray://<host>:<port>'")

    @classmethod
    def from_config(cls, node: Mapping[str, Any] | None) -> ExecutorSettings:
        """Settings from the ``executor`` node (None or absent keys: the defaults, ``kind: local``).

        Raises:
            ConfigError: unknown keys or bad values.
        """
        from omegaconf import DictConfig, OmegaConf

        if node is None:
            return cls()
        d = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"executor.{unknown[0]}", d[unknown[0]], f"a key among {sorted(known)}")
        return cls(**d)


def uses_cuda(cfg: Any) -> bool | None:
    """Whether the campaign's torch stages ask for CUDA: True (``cuda``), None (``auto``), False (CPU)."""
    from omegaconf import OmegaConf

    devices = [str(OmegaConf.select(cfg, k, default="cpu") or "cpu")
               for k in ("generator.device", "characterise.solver.device")]
    if any(d.startswith("cuda") for d in devices):
        return True
    return None if "auto" in devices else False


# ---------------------------------------------------------------------------------- workers
class EvaluationWorker:
    """Body of the Ray actor that evaluates designs: builds the stages once, then one design per call.

    Args:
        config_yaml: the campaign's resolved config (the same one the campaign file stores).
        workdir: the campaign process's working directory; relative paths of the config (checkpoints,
            caches) resolve against it where it exists on the worker's node.
        split: ``{"cubes_per_task": n, "resources": {...}}`` to fan cubes out as Ray tasks; None: off.
    """

    def __init__(self, config_yaml: str, workdir: str | None = None, split: dict[str, Any] | None = None):
        from omegaconf import OmegaConf

        from microdesign.campaign.build import build_evaluator

        if workdir and os.path.isdir(workdir):
            os.chdir(workdir)
        cfg = OmegaConf.create(config_yaml)
        self.evaluator = build_evaluator(cfg)
        if split is not None:
            self.evaluator.characteriser = CubeFanOut(self.evaluator.characteriser, cfg.characterise,
                                                      int(split["cubes_per_task"]), dict(split["resources"]))
        self.name = f"{_node_ip()}:{os.getpid()}"

    def identity(self) -> str:
        """``<node ip>:<pid>`` of this worker."""
        return self.name

    def evaluate(self, inputs: Mapping[str, float], seed: int, n_cubes: int | None = None) -> tuple[Any, str]:
        """``(Evaluation, worker name)`` of one design (``n_cubes``: a fixed cube count, final validation)."""
        ev = self.evaluator if n_cubes is None else self.evaluator.fixed_cubes(int(n_cubes))
        return ev.evaluate(inputs, int(seed)), self.name


def _node_ip() -> str:
    try:
        import ray

        return ray.util.get_node_ip_address()
    except Exception:  # noqa: BLE001 - a name only
        return "localhost"


class CubeFanOut:
    """A characteriser whose per-cube measurement runs as Ray tasks of ``cubes_per_task`` cubes each.

    Wraps a :class:`~microdesign.characterise.Characteriser` (anything with ``measure``/``_measure``:
    cubes -> per-cube values): :meth:`characterise` and :meth:`characterise_adaptive` are the wrapped
    class's own, with its ``_measure`` replaced by the fan-out, so the adaptive loop, the CI and
    the result are those of the unsplit characterisation. Each task builds the characteriser from
    its config once per worker process (``device: auto`` resolves where the task runs).

    Raises:
        ConfigError: the characteriser has no per-cube measurement (a stand-in).
    """

    def __init__(self, characteriser: Any, config: Any, cubes_per_task: int, resources: dict[str, float]):
        from omegaconf import OmegaConf

        _check_splittable(characteriser)
        self.inner, self.cubes_per_task, self.resources = characteriser, int(cubes_per_task), dict(resources)
        self.config_yaml = OmegaConf.to_yaml(config, resolve=True)
        characteriser._measure = self._measure  # the wrapped class's loops call self._measure

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def characterise(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.characterise(*args, **kwargs)

    def characterise_adaptive(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.characterise_adaptive(*args, **kwargs)

    def _measure(self, cubes: np.ndarray, dx: float) -> tuple[dict[str, np.ndarray], str | None]:
        import ray

        task = ray.remote(_measure_chunk).options(**self.resources)
        chunks = [cubes[i:i + self.cubes_per_task] for i in range(0, cubes.shape[0], self.cubes_per_task)]
        results = ray.get([task.remote(self.config_yaml, c, dx) for c in chunks])
        values: dict[str, list[np.ndarray]] = {}
        for k, (vals, reason) in enumerate(results):
            if reason:
                return {key: np.concatenate(v) for key, v in values.items()}, f"{reason} (cube task {k + 1} of {len(chunks)})"
            for key, v in vals.items():
                values.setdefault(key, []).append(np.asarray(v))
        return {key: np.concatenate(v) for key, v in values.items()}, None


_CHARACTERISERS: dict[str, Any] = {}


def _measure_chunk(config_yaml: str, cubes: np.ndarray, dx: float) -> tuple[dict[str, np.ndarray], str | None]:
    """Ray task body: per-cube values of ``cubes`` by the characteriser of ``config_yaml`` (built once per process)."""
    from omegaconf import OmegaConf

    from microdesign.campaign.build import instantiate

    ch = _CHARACTERISERS.get(config_yaml)
    if ch is None:
        ch = _CHARACTERISERS[config_yaml] = instantiate(OmegaConf.create(config_yaml), "characterise")
    return ch.measure(cubes, dx)


# ---------------------------------------------------------------------------------- executor
@dataclass(frozen=True)
class Outcome:
    """What came back for one submitted trial: its evaluation, or why its worker was lost."""

    index: int
    evaluation: Any
    worker: str | None
    lost: str | None = None


class WorkerPool:
    """The scheduling of a campaign over parallel workers, whatever runs them.

    A subclass provides ``settings`` (:class:`ExecutorSettings`: ``mode``, ``max_retries``), ``idle``
    (workers without a trial), ``submit(index, inputs, seed)`` and ``wait() -> list[Outcome]`` (at
    least one ended evaluation); :class:`RayExecutor` is the one the package ships.
    """

    settings: ExecutorSettings

    @property
    def idle(self) -> int:
        raise NotImplementedError

    def submit(self, index: int, inputs: Mapping[str, float], seed: int, n_cubes: int | None = None) -> None:
        raise NotImplementedError

    def wait(self) -> list[Outcome]:
        raise NotImplementedError

    def run(self, campaign: Any) -> None:
        """Drive ``campaign`` over the workers until its budget stops it (sets ``campaign.stop_reason``)."""
        if self.settings.mode == "sync":
            self._run_sync(campaign)
        else:
            self._run_async(campaign)

    def _record(self, campaign: Any, running: dict[int, Any], outcomes: list[Outcome]) -> None:
        for o in outcomes:
            t = running.pop(o.index)
            if o.lost is None:
                campaign._finish(t, o.evaluation, worker=o.worker)
            else:
                campaign._worker_lost(t, o.lost, o.worker, self.settings.max_retries)

    @staticmethod
    def _room(campaign: Any, running: Mapping[int, Any]) -> int:
        return campaign.budget.max_evaluations - campaign.n_finished - len(running)

    def _run_async(self, campaign: Any) -> None:
        """Every worker busy: a new proposal (running trials as ``X_pending``) whenever one frees."""
        running: dict[int, Any] = {}
        while True:
            campaign.stop_reason = campaign._should_stop()
            while not campaign.stop_reason and self.idle and self._room(campaign, running) > 0:
                queued = [t for t in campaign.trials if t.status == "candidate"]
                t = queued[0] if queued else campaign._propose(q=1, pending=list(running.values()))[0]
                t = campaign._start(t)
                running[t.index] = t
                self.submit(t.index, t.inputs, t.seed)
            if not running:
                break
            self._record(campaign, running, self.wait())
        if not campaign.stop_reason:
            campaign.stop_reason = campaign._should_stop() or "nothing left to run"

    def _run_sync(self, campaign: Any) -> None:
        """Batches of ``q`` (the campaign's), spread over the workers; the next proposal after the whole batch."""
        running: dict[int, Any] = {}
        while True:
            campaign.stop_reason = campaign._should_stop()
            if campaign.stop_reason:
                break
            queue = [t for t in campaign.trials if t.status == "candidate"] or campaign._propose()
            while queue or running:
                while queue and self.idle:
                    if campaign._wall_time_spent() or self._room(campaign, running) <= 0:
                        queue = []
                        break
                    t = campaign._start(queue.pop(0))
                    running[t.index] = t
                    self.submit(t.index, t.inputs, t.seed)
                if running:
                    self._record(campaign, running, self.wait())


class RayExecutor(WorkerPool):
    """Evaluates trials on ``num_workers`` Ray actors and drives a campaign over them (:meth:`run`).

    Args:
        settings: the ``executor`` config.
        config_yaml: the campaign's resolved config (each worker builds its stages from it).
        cuda: whether the stages run on CUDA (True), on the CPU (False) or ``auto`` (None: GPUs if
            the cluster has them); decides the resources each worker declares.

    Raises:
        ConfigError: Ray is not installed, or a worker could not build its stages.
    """

    def __init__(self, settings: ExecutorSettings, config_yaml: str, cuda: bool | None = False):
        ray = require_ray()
        self.settings, self.config_yaml = settings, config_yaml
        if not ray.is_initialized():
            if settings.address is None:
                kw: dict[str, Any] = {}
                if cuda is False:
                    kw["num_cpus"] = max(1, math.ceil(settings.num_workers * settings.num_cpus_per_worker))
                ray.init(include_dashboard=False, log_to_driver=True, **kw)
                log.info("started a local Ray: %s", ray.cluster_resources())
            else:
                ray.init(address=settings.address, log_to_driver=True)
                log.info("joined Ray cluster %s: %s", settings.address, ray.cluster_resources())
        g = settings.num_gpus_per_worker
        if g == "auto":
            g = 1.0 if cuda or (cuda is None and ray.cluster_resources().get("GPU", 0) > 0) else 0.0
        worker = {"num_gpus": float(g)} if g else {"num_cpus": float(settings.num_cpus_per_worker)}
        self.worker_resources = worker
        if settings.split_cubes:  # the actor coordinates; its cubes hold the resources
            actor = {"num_cpus": 0, "num_gpus": 0.01} if g else {"num_cpus": 0}
            task = {"num_gpus": max(0.0, float(g) - 0.01), "num_cpus": 0} if g else dict(worker)
            self.split: dict[str, Any] | None = {"cubes_per_task": settings.cubes_per_task, "resources": task}
            self.actor_resources = actor
        else:
            self.split, self.actor_resources = None, worker
        have = ray.cluster_resources()
        for key, res in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
            need = settings.num_workers * float(self.actor_resources.get(key, 0))
            if need > have.get(res, 0.0):
                log.warning("%d workers need %g %s but the Ray cluster has %g: the workers that do not fit wait "
                            "for resources (an autoscaling cluster adds nodes)", settings.num_workers, need, res,
                            have.get(res, 0.0))
        self._actor_cls = ray.remote(EvaluationWorker)
        self._actors = [self._new_actor() for _ in range(settings.num_workers)]
        try:
            self._names = ray.get([a.identity.remote() for a in self._actors])
        except ray.exceptions.RayError as exc:
            self.shutdown()
            raise ConfigError("executor", "ray", f"workers that build the campaign's stages ({_short(exc)})") from exc
        self._free = list(range(settings.num_workers))
        self._running: dict[Any, tuple[int, int]] = {}
        log.info("Ray executor: %d workers %s, each %s, mode %s%s", settings.num_workers, self._names,
                 self.actor_resources, settings.mode, ", cubes split into tasks" if self.split else "")

    @property
    def num_workers(self) -> int:
        return self.settings.num_workers

    def _new_actor(self) -> Any:
        return self._actor_cls.options(**self.actor_resources).remote(self.config_yaml, os.getcwd(), self.split)

    # ------------------------------------------------------------------ submit / wait
    @property
    def idle(self) -> int:
        """Workers without a trial."""
        return len(self._free)

    @property
    def busy(self) -> int:
        return len(self._running)

    def submit(self, index: int, inputs: Mapping[str, float], seed: int, n_cubes: int | None = None) -> None:
        """Start evaluating a design on an idle worker (``index`` identifies it in :meth:`wait`).

        Raises:
            RuntimeError: no worker is idle.
        """
        if not self._free:
            raise RuntimeError("no idle worker")
        slot = self._free.pop(0)
        ref = self._actors[slot].evaluate.remote(dict(inputs), int(seed), n_cubes)
        self._running[ref] = (int(index), slot)

    def wait(self) -> list[Outcome]:
        """Block until at least one submitted evaluation ends; every one that has ended, as outcomes.

        A worker that died (``RayActorError``: process killed, node lost, out of memory) is replaced by
        a new actor and its trial comes back with ``lost`` set; an exception raised inside the
        evaluation (which never raises by design) comes back as a failed evaluation.
        """
        import ray

        from microdesign.campaign.evaluate import Evaluation

        if not self._running:
            return []
        ready, rest = ray.wait(list(self._running), num_returns=1)
        more = ray.wait(rest, num_returns=len(rest), timeout=0)[0] if rest else []
        out = []
        for ref in [*ready, *more]:
            index, slot = self._running.pop(ref)
            try:
                ev, name = ray.get(ref)
                self._names[slot] = name
                out.append(Outcome(index, ev, name))
            except ray.exceptions.RayTaskError as exc:  # raised inside evaluate(): a failed trial
                out.append(Outcome(index, Evaluation("failed", f"worker: {_short(exc)}"), self._names[slot]))
            except ray.exceptions.RayError as exc:  # the worker died: replace it
                lost = self._names[slot]
                log.warning("worker %s lost during trial %d: %s", lost, index, _short(exc))
                try:
                    ray.kill(self._actors[slot], no_restart=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
                self._actors[slot] = self._new_actor()
                self._names[slot] = f"{lost} (replaced)"
                out.append(Outcome(index, None, lost, f"{type(exc).__name__}: {_short(exc)}"))
            self._free.append(slot)
        return sorted(out, key=lambda o: o.index)

    def evaluate(self, inputs: Mapping[str, float], seed: int, n_cubes: int | None = None) -> Any:
        """Evaluate one design on a worker and wait for it (re-run on a lost worker, ``max_retries`` times);
        only while no trial is running (the final validation, after the trials).

        Raises:
            RuntimeError: trials are running.
        """
        from microdesign.campaign.evaluate import Evaluation

        if self._running:
            raise RuntimeError("RayExecutor.evaluate while trials are running")
        for _ in range(self.settings.max_retries + 1):
            self.submit(-1, inputs, seed, n_cubes)
            outcome = next(o for o in self.wait() if o.index == -1)
            if outcome.lost is None:
                return outcome.evaluation
        return Evaluation("failed", f"worker lost {self.settings.max_retries + 1} times: {outcome.lost}")

    def remote_evaluator(self) -> RemoteEvaluator:
        """An evaluator (``evaluate``, ``fixed_cubes``) that runs on the workers: the final validation."""
        return RemoteEvaluator(self)

    def shutdown(self) -> None:
        """Stop the workers. A local Ray this executor started stays up for the next campaign of the
        process (case studies) and ends with the process."""
        import ray

        for a in getattr(self, "_actors", []):
            try:
                ray.kill(a, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self._actors = []


class RemoteEvaluator:
    """``TrialEvaluator``-like front of a :class:`RayExecutor`: ``evaluate`` runs on a worker and waits."""

    def __init__(self, executor: RayExecutor, n_cubes: int | None = None):
        self.executor, self.n_cubes = executor, n_cubes

    def fixed_cubes(self, n_cubes: int) -> RemoteEvaluator:
        return RemoteEvaluator(self.executor, int(n_cubes))

    def evaluate(self, inputs: Mapping[str, float], seed: int) -> Any:
        return self.executor.evaluate(inputs, seed, self.n_cubes)


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + " ..."


def build_executor(cfg: Any) -> RayExecutor | None:
    """The executor of a campaign config: None for ``executor=local`` (the serial loop), else a
    :class:`RayExecutor` with its workers started.

    Raises:
        ConfigError: bad ``executor`` settings, Ray not installed, or workers that cannot build the stages.
    """
    from omegaconf import OmegaConf

    settings = ExecutorSettings.from_config(OmegaConf.select(cfg, "executor"))
    if settings.kind == "local":
        return None
    return RayExecutor(settings, OmegaConf.to_yaml(cfg, resolve=True), uses_cuda(cfg))


def check_executor(cfg: Any, characteriser: Any = None) -> ExecutorSettings:
    """Validate the ``executor`` node before any work (Ray importable when asked for; a characteriser
    that ``split_cubes`` can fan out).

    Raises:
        ConfigError: bad settings, ``executor=ray`` without Ray installed (naming the extra), or
            ``split_cubes`` with a characteriser without per-cube measurement.
    """
    from omegaconf import OmegaConf

    settings = ExecutorSettings.from_config(OmegaConf.select(cfg, "executor"))
    if settings.kind == "ray":
        require_ray()
        if settings.split_cubes and characteriser is not None:
            _check_splittable(characteriser)
    return settings


def _check_splittable(characteriser: Any) -> None:
    if not callable(getattr(characteriser, "_measure", None)):
        raise ConfigError("executor.split_cubes", True,
                          f"a characteriser with per-cube measurement (microdesign.characterise.Characteriser), "
                          f"not {type(characteriser).__name__}")


__all__ = ["CubeFanOut", "EvaluationWorker", "ExecutorSettings", "Outcome", "RayExecutor", "RemoteEvaluator",
           "WorkerPool", "build_executor", "check_executor", "require_ray", "uses_cuda"]
