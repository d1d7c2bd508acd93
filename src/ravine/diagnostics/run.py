"""``ravine diagnose``: train briefly with the instruments on and say what is wrong, in plain words.

:func:`diagnose` builds a problem (optionally with another activation or
initialization), measures the gradient noise at the start, trains with
:class:`~ravine.diagnostics.instruments.Instruments`, measures the noise again,
and collects the findings of the learning curves
(:func:`~ravine.diagnostics.curves.diagnose_history`), of the instruments
(:func:`~ravine.diagnostics.instruments.instrument_findings`) and of the noise
(:func:`~ravine.diagnostics.noise.noise_finding`). With ``compare_inits`` the
same network is trained under each of the course's five initializations and
the activation std by depth is kept for each.

Example:
    >>> res = diagnose("digits-mlp", epochs=2, progress=None)  # doctest: +SKIP
    >>> [f["kind"] for f in res["findings"]]  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ravine import optim, problems
from ravine.diagnostics.curves import diagnose_history
from ravine.diagnostics.instruments import Instruments, instrument_findings
from ravine.diagnostics.noise import DEFAULT_BATCH_SIZES, gradient_noise, noise_finding
from ravine.errors import ConfigError, check_int
from ravine.models import COURSE_INITS
from ravine.train import fit
from ravine.utils import resolve_device, write_json

ProgressFactory = Callable[[str], Callable[[int, int, dict[str, Any]], None]]
#: model options ``diagnose`` may override on problems that have them
MODEL_OPTIONS = ("activation", "init")
PROBE_ROWS = 512


def _options(recipe: problems.Problem, problem_options: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict:
    options = dict(problem_options)
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in recipe.options:
            allowed = ", ".join(k for k in MODEL_OPTIONS if k in recipe.options) or "none"
            raise ConfigError(f"Invalid option {key} for problem {recipe.name!r} (allowed for it: {allowed})")
        options[key] = value
    return options


def _noise(inst: Any, batch_sizes: Sequence[int], seed: int) -> dict[str, Any] | None:
    X, y = inst.data.X_train, inst.data.y_train
    pool = min(PROBE_ROWS, len(X))
    sizes = [s for s in batch_sizes if s <= pool // 2]
    if len(sizes) < 2:
        return None
    return gradient_noise(inst.model, inst.loss_fn, X, y, sizes, pool=pool, seed=seed)


def _one_run(recipe: problems.Problem, options: dict[str, Any], optimizer: str, *, lr: float | None,
             epochs: int, batch_size: int | None, seed: int, device: torch.device, every: int, noise: bool,
             progress: Callable[..., None] | None) -> dict[str, Any]:
    inst = recipe.build(seed=seed, device=device, **options)
    probe = inst.data.X_train[:PROBE_ROWS]
    instruments = Instruments(every=every, probe=probe)
    noise_start = _noise(inst, DEFAULT_BATCH_SIZES, seed) if noise else None
    result = fit(inst, optimizer, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, device=device,
                 callbacks=[instruments], progress=progress, tensorboard=False)
    history = result.history
    to_json = getattr(history, "to_json", None)
    history_json = to_json() if callable(to_json) else history
    noise_end = _noise(inst, DEFAULT_BATCH_SIZES, seed + 1) if noise and history["status"] == "ok" else None
    ref = inst.reference_error
    curve = [f.to_dict() for f in diagnose_history(history, ref if ref else None)]
    tools = instrument_findings(instruments.result())
    if noise_end is not None:
        tools.append(noise_finding(noise_end, batch_size, len(inst.data.X_train)))
    return {"history": history_json, "instruments": instruments.result(),
            "noise": {"start": noise_start, "end": noise_end}, "curve_findings": curve,
            "instrument_findings": tools, "findings": curve + tools,
            "lr": float(result.optimizer.param_groups[0]["lr"]), "metric_name": inst.metric_name,
            "higher_is_better": inst.higher_is_better, "reference_error": ref}


def diagnose(problem: str = "digits-mlp", optimizer: str = "sgd", *, lr: float | None = None,
             epochs: int | None = None, batch_size: int | str | None = "auto", activation: str | None = None,
             init: str | None = None, every: int = 10, noise: bool = True, compare_inits: bool = False,
             problem_options: Mapping[str, Any] | None = None, seed: int = 0, device: str = "auto",
             out_dir: str | Path | None = None, progress: ProgressFactory | None = None) -> dict[str, Any]:
    """Train ``problem`` with the instruments on; return (and write) the findings.

    Args:
        problem: a registered problem (``ravine problems``); ``csv`` / ``npz`` take
            ``problem_options={"data": path, "target": column}``.
        optimizer: a registered optimizer name.
        lr: learning rate (default: the problem's for this optimizer).
        epochs: training epochs (default: the problem's).
        batch_size: minibatch size, None for full batch, "auto" for the problem's.
        activation, init: override the network's activation / initialization
            (problems with a network: digits-mlp, digits-cnn, mnist, csv, npz).
        every: instrument report interval in iterations.
        noise: measure the gradient noise (per-sample gradients) at start and end.
        compare_inits: also train under each of the course's five initializations.
        problem_options: other options of the problem.
        seed: one seed for data split, weights, shuffling and noise sampling.
        device: ``cpu``, ``cuda`` or ``auto``.
        out_dir: when set, write ``diagnose.json`` and ``report.html`` there.
        progress: ``progress(label) -> callback(done, total, info)`` for progress bars.

    Returns:
        ``{"problem", "optimizer", "lr", "epochs", "batch_size", "activation" (the option's value, else the
        model's activation kinds; None for a model without any), "init" (None for a problem without the
        option), "seed", "every",
        "device", "metric_name", "higher_is_better", "reference_error", "history", "instruments", "noise",
        "findings", "headline", "compare_inits", "wall_time"}`` (plain lists and numbers).
    """
    start = time.perf_counter()
    recipe = problems.get(problem)
    name = optim.info(optimizer).name
    every = check_int("every", every, 1, 10**9, error=ConfigError)
    options = _options(recipe, problem_options or {}, {"activation": activation, "init": init})
    budget = check_int("epochs", epochs, 1, 100_000, error=ConfigError) if epochs is not None else recipe.epochs
    if batch_size == "auto":
        batch_size = None if optim.info(name).full_batch else recipe.batch_size
    elif batch_size is not None:
        batch_size = check_int("batch_size", batch_size, 1, error=ConfigError)
    if compare_inits and "init" not in recipe.options:
        raise ConfigError(f"Invalid --compare-inits for problem {recipe.name!r} (it has no network to "
                          "initialize; allowed: problems with an init option)")
    dev = resolve_device(device)
    main = _one_run(recipe, options, name, lr=lr, epochs=budget, batch_size=batch_size, seed=seed, device=dev,
                    every=every, noise=noise, progress=progress("training") if progress else None)
    resolved = {k: options.get(k, recipe.options.get(k)) for k in MODEL_OPTIONS}
    if resolved["activation"] is None:  # a model without the option: name the activations it has, if any
        kinds = list(dict.fromkeys(layer["kind"] for layer in main["instruments"]["layers"]))
        resolved["activation"] = ", ".join(kinds) or None
    out: dict[str, Any] = {
        "problem": recipe.name, "optimizer": name, "lr": main["lr"], "epochs": budget, "batch_size": batch_size,
        "activation": resolved["activation"], "init": resolved["init"], "seed": seed, "every": every,
        "device": str(dev), "metric_name": main["metric_name"], "higher_is_better": main["higher_is_better"],
        "reference_error": main["reference_error"], "history": main["history"],
        "instruments": main["instruments"], "noise": main["noise"], "findings": main["findings"],
        "headline": main["findings"][0]["kind"] if main["findings"] else "healthy", "compare_inits": None}
    if compare_inits:
        out["compare_inits"] = {}
        for init_name in COURSE_INITS:
            run = _one_run(recipe, {**options, "init": init_name}, name, lr=lr, epochs=budget,
                           batch_size=batch_size, seed=seed, device=dev, every=every, noise=False,
                           progress=progress(init_name) if progress else None)
            ins = run["instruments"]
            ep = run["history"]["epoch"]
            out["compare_inits"][init_name] = {
                "layers": [s["layer"] for s in ins["probe_start"]],
                "std_start": [s["std"] for s in ins["probe_start"]],
                "std_end": [s["std"] for s in ins["probe_end"]],
                "status": run["history"]["status"],
                "final_train_loss": ep["train_loss"][-1] if ep["train_loss"] else math.nan,
                "final_val_metric": ep["val_metric"][-1] if ep["val_metric"] else math.nan,
                "findings": [f["kind"] for f in run["findings"]]}
    out["wall_time"] = time.perf_counter() - start
    if out_dir is not None:
        from ravine.diagnostics.report import write_report

        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "diagnose.json", out)
        write_report(folder, out)
    return out
