"""The bad-input table: every row must end in exit code 2, one line on stderr, no traceback.

``cases(tmp)`` builds the files the rows need under ``tmp`` and returns ``(id, args)`` pairs.
``classify(run)`` sorts an outcome into clean / usage box / traceback / accepted / other
(the counts go into the issue's closing note).
"""

from __future__ import annotations

from pathlib import Path

TINY = ["--epochs", "1", "--optimizers", "sgd", "--problem", "breast-cancer-logreg"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _config(tmp: Path, name: str, body: str) -> str:
    base = 'problem = "breast-cancer-logreg"\noptimizer = "sgd"\nepochs = 1\n'
    return str(_write(tmp / f"{name}.toml", base + body))


def _tampered_checkpoints(tmp: Path) -> dict[str, Path]:
    """A good one-epoch run, then copies of its folder with a damaged checkpoint."""
    import shutil

    import torch

    from ravine.train.config import TrainConfig, train_from_config

    good = tmp / "good-run"
    train_from_config(TrainConfig(problem="breast-cancer-logreg", optimizer="sgd", epochs=1), good)
    out: dict[str, Path] = {}

    def variant(name: str, edit) -> None:
        folder = tmp / f"ckpt-{name}"
        shutil.copytree(good, folder)
        edit(folder / "checkpoint.pt")
        out[name] = folder

    def flip(path: Path) -> None:
        data = bytearray(path.read_bytes())
        for i in range(len(data) // 3, len(data) // 3 + 64):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))

    def edit_state(**changes):
        def apply(path: Path) -> None:
            state = torch.load(path, weights_only=True)
            for key, value in changes.items():
                if callable(value):
                    value(state)
                else:
                    state[key] = value
            torch.save(state, path)
        return apply

    variant("flipped", flip)
    variant("truncated", lambda p: p.write_bytes(p.read_bytes()[:100]))
    variant("history", edit_state(history={"epoch": "garbage"}))
    variant("schedule", edit_state(schedule={"bogus": [1, 2]}))
    variant("iteration", edit_state(iteration=-5))
    variant("epoch", edit_state(epoch=-1))
    variant("config", edit_state(config={"optimizer": 3}))
    return out


def cases(tmp: Path) -> list[tuple[str, list[str]]]:
    """Every bad input, per command."""
    tmp.mkdir(parents=True, exist_ok=True)
    a_file = _write(tmp / "a-file", "x")
    too_long = str(tmp / ("d" * 300))
    csv = lambda name, text: str(_write(tmp / f"{name}.csv", text))  # noqa: E731
    rows = "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40))
    npz_garbage = tmp / "garbage.npz"
    npz_garbage.write_bytes(b"PK\x03\x04 not really a zip" + bytes(range(256)))
    npy_pickle = tmp / "pickled.npz"
    npy_pickle.write_bytes(b"\x93NUMPY" + bytes(range(200)))
    out = str(tmp / "out")
    table: list[tuple[str, list[str]]] = [
        # --out (checked before any work)
        ("compare-out-unwritable", ["compare", *TINY, "--out", "/proc/ravine-x/y"]),
        ("compare-out-readonly-fs", ["compare", *TINY, "--out", "/sys/ravine-x"]),
        ("compare-out-is-file", ["compare", *TINY, "--out", str(a_file)]),
        ("compare-out-too-long", ["compare", *TINY, "--out", too_long]),
        ("compare-out-empty", ["compare", *TINY, "--out", ""]),
        ("train-out-is-file", ["train", _config(tmp, "ok", ""), "--out", str(a_file)]),
        ("train-out-unwritable", ["train", _config(tmp, "ok", ""), "--out", "/proc/ravine-x/y"]),
        ("bench-out-is-file", ["bench", "nist", "--out", str(a_file)]),
        ("bench-out-unwritable", ["bench", "nist", "--out", "/proc/ravine-x/y"]),
        ("bench-out-empty", ["bench", "nist", "--out", ""]),
        # --lr
        ("lr-two-numbers", ["compare", *TINY, "--lr", "0.1,0.2", "--out", out]),
        ("lr-same-name-twice", ["compare", *TINY, "--lr", "sgd=0.1,sgd=0.2", "--out", out]),
        ("lr-empty-name", ["compare", *TINY, "--lr", "=0.1", "--out", out]),
        ("lr-underflow", ["compare", *TINY, "--lr", "sgd=1e-400", "--out", out]),
        ("lr-overflow", ["compare", *TINY, "--lr", "1e400", "--out", out]),
        ("lr-zero", ["compare", *TINY, "--lr", "0", "--out", out]),
        ("lr-negative", ["compare", *TINY, "--lr", "-1", "--out", out]),
        ("lr-nan", ["compare", *TINY, "--lr", "nan", "--out", out]),
        ("lr-word", ["compare", *TINY, "--lr", "fast", "--out", out]),
        ("lr-unknown-optimizer", ["compare", *TINY, "--lr", "adam=0.1", "--out", out]),
        # budgets and ranges (the same as train's)
        ("epochs-zero", ["compare", *TINY, "--epochs", "0", "--out", out]),
        ("epochs-negative", ["compare", *TINY, "--epochs", "-3", "--out", out]),
        ("epochs-huge", ["compare", *TINY, "--epochs", "1000000000", "--out", out]),
        ("batch-zero", ["compare", *TINY, "--batch-size", "0", "--out", out]),
        ("batch-word", ["compare", *TINY, "--batch-size", "big", "--out", out]),
        ("seed-negative", ["compare", *TINY, "--seed", "-1", "--out", out]),
        ("seed-huge", ["compare", *TINY, "--seed", str(2**40), "--out", out]),
        ("target-above-accuracy", ["compare", *TINY, "--target", "1.5", "--out", out]),
        ("target-negative", ["compare", *TINY, "--target", "-0.2", "--out", out]),
        ("target-nan", ["compare", *TINY, "--target", "nan", "--out", out]),
        ("optimizers-empty", ["compare", "--optimizers", ",", "--epochs", "1", "--out", out]),
        ("optimizers-twice", ["compare", "--optimizers", "sgd,sgd", "--epochs", "1", "--out", out]),
        ("optimizer-unknown", ["compare", "--optimizers", "sgdd", "--epochs", "1", "--out", out]),
        ("problem-unknown", ["compare", "--problem", "digits", "--out", out]),
        ("device-unknown", ["compare", *TINY, "--device", "tpu", "--out", out]),
        ("schedule-unknown", ["compare", *TINY, "--schedule", "cosine-ish", "--out", out]),
        ("schedule-arg-without-schedule", ["compare", *TINY, "--schedule-arg", "every=2", "--out", out]),
        ("schedule-arg-unknown-key", ["compare", *TINY, "--schedule", "step", "--schedule-arg", "evry=2",
                                      "--out", out]),
        ("schedule-arg-no-equals", ["compare", *TINY, "--schedule", "step", "--schedule-arg", "every",
                                    "--out", out]),
        ("option-not-for-problem", ["compare", *TINY, "--data", str(a_file), "--out", out]),
        # the user's data
        ("csv-missing", ["compare", "--problem", "csv", "--data", str(tmp / "none.csv"), "--optimizers", "sgd",
                         "--epochs", "1", "--out", out]),
        ("csv-five-rows", ["compare", "--problem", "csv", "--data", csv("five", "a,b,y\n1,2,0\n2,3,1\n3,4,0\n4,5,1\n"
                                                                         "5,6,0\n"), "--optimizers", "sgd",
                           "--epochs", "1", "--out", out]),
        ("csv-empty-header-name", ["compare", "--problem", "csv", "--data", csv("emptyname", "a,,y\n" + rows),
                                   "--optimizers", "sgd", "--epochs", "1", "--out", out]),
        ("csv-duplicate-header", ["compare", "--problem", "csv", "--data", csv("dup", "a,a,y\n" + rows),
                                  "--optimizers", "sgd", "--epochs", "1", "--out", out]),
        ("csv-huge-features", ["compare", "--problem", "csv", "--data", csv("huge", "a,b,y\n" + "".join(
            f"{(i + 1) * 1e300},{-(i + 1) * 1e300},{i * 0.5}\n" for i in range(40))), "--optimizers", "sgd",
            "--epochs", "1", "--out", out]),
        ("csv-text-feature", ["compare", "--problem", "csv", "--data", csv("text", "a,b,y\n1,x,0\n" + rows),
                              "--optimizers", "sgd", "--epochs", "1", "--out", out]),
        ("csv-target-missing", ["compare", "--problem", "csv", "--data", csv("tgt", "a,b,y\n" + rows),
                                "--target-column", "z", "--optimizers", "sgd", "--epochs", "1", "--out", out]),
        ("npz-garbage", ["compare", "--problem", "npz", "--data", str(npz_garbage), "--optimizers", "sgd",
                         "--epochs", "1", "--out", out]),
        ("npz-not-zip", ["compare", "--problem", "npz", "--data", str(npy_pickle), "--optimizers", "sgd",
                         "--epochs", "1", "--out", out]),
        ("mnist-no-data-dir", ["compare", "--problem", "mnist-mlp", "--data-dir", str(tmp / "nothing"),
                               "--optimizers", "sgd", "--epochs", "1", "--out", out]),
        # typer-level mistakes (usage boxes before this issue)
        ("option-typo", ["compare", "--epoch", "1"]),
        ("epochs-not-int", ["compare", "--epochs", "one"]),
        ("seed-not-int", ["compare", "--seed", "x"]),
        ("command-unknown", ["comparee"]),
        ("listing-extra-option", ["optimizers", "--out", out]),
        ("listing-extra-arg", ["problems", "all"]),
        ("bench-no-name", ["bench"]),
        ("train-no-config", ["train"]),
        ("train-nproc-not-int", ["train", _config(tmp, "ok", ""), "--nproc", "two"]),
        # bench
        ("bench-unknown-suite", ["bench", "nistt", "--out", out]),
        ("bench-unknown-method", ["bench", "nist", "--method", "newton", "--out", out]),
        ("bench-unknown-problem", ["bench", "nist", "--problems", "Misra9", "--out", out]),
        ("bench-device", ["bench", "nist", "--device", "tpu", "--out", out]),
        # train configs
        ("config-missing", ["train", str(tmp / "none.toml"), "--out", out]),
        ("config-not-toml", ["train", str(_write(tmp / "bad.toml", "lr = = 1\n")), "--out", out]),
        ("config-binary", ["train", str(npz_garbage), "--out", out]),
        ("config-unknown-key", ["train", _config(tmp, "unk", "learning_rate = 0.1\n"), "--out", out]),
        ("config-lr-zero", ["train", _config(tmp, "lr0", "lr = 0\n"), "--out", out]),
        ("config-lr-text", ["train", _config(tmp, "lrs", 'lr = "0.1"\n'), "--out", out]),
        ("config-hyper-lr-shadowed", ["train", _config(tmp, "shadow", "lr = 0.1\n[hyper]\nlr = 0.5\n"),
                                      "--out", out]),
        ("config-epochs-huge", ["train", str(tmp / "ep.toml"), "--out", out]),
        ("config-hidden-huge", ["train", str(_write(tmp / "hid.toml", 'problem = "digits-mlp"\noptimizer = "sgd"\n'
                                                    "epochs = 1\n[problem_options]\nhidden = [100000, 100000]\n")),
                                "--out", out]),
        ("config-hidden-zero", ["train", str(_write(tmp / "hid0.toml", 'problem = "digits-mlp"\noptimizer = "sgd"\n'
                                                    "epochs = 1\n[problem_options]\nhidden = [0]\n")),
                                "--out", out]),
        ("config-seed-huge", ["train", _config(tmp, "sd", f"seed = {2**40}\n"), "--out", out]),
        ("config-schedule-no-name", ["train", _config(tmp, "sch", "[schedule]\nevery = 2\n"), "--out", out]),
        ("nproc-zero", ["train", _config(tmp, "ok", ""), "--nproc", "0", "--out", out]),
        ("nproc-too-many", ["train", _config(tmp, "ok", ""), "--nproc", "1000", "--out", out]),
        ("resume-without-out", ["train", _config(tmp, "ok", ""), "--resume"]),
        ("resume-empty-folder", ["train", _config(tmp, "ok", ""), "--resume", "--out", str(tmp / "empty")]),
    ]
    (tmp / "empty").mkdir(exist_ok=True)
    _write(tmp / "ep.toml", 'problem = "breast-cancer-logreg"\noptimizer = "sgd"\nepochs = 1000000000\n')
    for name, folder in _tampered_checkpoints(tmp).items():
        table.append((f"checkpoint-{name}", ["train", _config(tmp, "ok", ""), "--resume", "--out", str(folder)]))
    # the commands added by other issues: --out a file (those that check it first) and a mistyped option
    for command in ("landscape", "autodiff", "activations"):
        table.append((f"{command}-out-is-file", [command, "--out", str(a_file)]))
    for command in ("curvature", "landscape", "trajectories", "linsys", "autodiff", "activations"):
        table.append((f"{command}-option-typo", [command, "--bogus"]))
    table += [
        ("train-into-existing-run", ["train", _config(tmp, "ok", ""), "--out", str(tmp / "good-run")]),
        ("train-resume-and-overwrite", ["train", _config(tmp, "ok", ""), "--resume", "--overwrite",
                                        "--out", str(tmp / "good-run")]),
        # trajectories and landscape
        ("trajectories-unknown-function", ["trajectories", "--function", "banana", "--out", out]),
        ("trajectories-unknown-optimizer", ["trajectories", "--optimizers", "gd,nope", "--out", out]),
        ("trajectories-lm-not-least-squares", ["trajectories", "--function", "rastrigin", "--optimizers", "lm",
                                               "--out", out]),
        ("trajectories-start-one-number", ["trajectories", "--start", "1", "--out", out]),
        ("trajectories-start-nan", ["trajectories", "--start", "nan,1", "--out", out]),
        ("trajectories-steps-zero", ["trajectories", "--steps", "0", "--out", out]),
        ("trajectories-kappa-below-1", ["trajectories", "--function", "quadratic", "--kappa", "0.5", "--out", out]),
        ("trajectories-out-is-file", ["trajectories", "--out", str(a_file)]),
        ("linsys-tol-one-or-more", ["linsys", "--tol", "2", "--out", out]),  # x = 0 would "converge"
        ("compare-optimizers-empty-name", ["compare", "--optimizers", "sgd,,adam", "--out", out]),
        ("landscape-unknown-problem", ["landscape", "--problem", "nope", "--out", out]),
        ("landscape-unknown-directions", ["landscape", "--problem", "diabetes-linreg", "--directions", "uniform",
                                          "--out", out]),
        ("landscape-resolution-one", ["landscape", "--problem", "diabetes-linreg", "--resolution", "1",
                                      "--out", out]),
        ("landscape-span-negative", ["landscape", "--problem", "diabetes-linreg", "--span", "-1", "--out", out]),
        ("landscape-unknown-optimizer", ["landscape", "--problem", "diabetes-linreg", "--optimizer", "adamw2",
                                         "--out", out]),
        ("landscape-checkpoint-missing", ["landscape", "--problem", "diabetes-linreg", "--checkpoint",
                                          str(tmp / "none.pt"), "--out", out]),
        ("landscape-checkpoint-other-problem", ["landscape", "--problem", "sparse-sigmoid", "--checkpoint",
                                                str(tmp / "good-run" / "checkpoint.pt"), "--out", out]),
        # what a newcomer meets first: names, files, seeds, a tiny CSV, a changed config on --resume
        ("optimizer-typo", ["compare", "--problem", "breast-cancer-logreg", "--optimizers", "adamm", "--epochs", "1",
                            "--out", out]),
        ("diagnose-unknown-activation", ["diagnose", "--activation", "relux", "--out", out]),
        ("diagnose-unknown-init", ["diagnose", "--init", "xavier", "--out", out]),
        ("activations-unknown-name", ["activations", "--names", "swish", "--out", out]),
        ("tune-unknown-optimizer", ["tune", "--optimizer", "adamm", "--out", out]),
        ("bench-problem-typo", ["bench", "nist", "--problems", "Misra1x", "--out", out]),
        ("config-unknown-optimizer", ["train", str(_write(tmp / "unkopt.toml", 'problem = "breast-cancer-logreg"\n'
                                                                        'optimizer = "sgd-ish"\n')), "--out", out]),
        ("config-hyper-out-of-range", ["train", str(_write(tmp / "mom.toml", 'problem = "breast-cancer-logreg"\n'
                                                           'optimizer = "momentum"\nepochs = 1\n[hyper]\n'
                                                           'momentum = 1.5\n')), "--out", out]),
        ("config-schedule-out-of-range", ["train", _config(tmp, "every0", '[schedule]\nname = "step"\nevery = 0\n'),
                                          "--out", out]),
        ("csv-is-a-folder", ["compare", "--problem", "csv", "--data", str(tmp), "--optimizers", "sgd", "--epochs", "1",
                             "--out", out]),
        ("csv-tiny-problem-implied", ["compare", "--data", csv("tiny", "a,b,y\n1,2,0\n2,3,1\n3,4,0\n4,5,1\n5,6,0\n"),
                                      "--target-column", "y", "--optimizers", "sgd", "--epochs", "1", "--out", out]),
        ("npz-missing", ["compare", "--data", str(tmp / "none.npz"), "--optimizers", "sgd", "--epochs", "1",
                         "--out", out]),
        ("mnist-data-dir-without-files", ["compare", "--problem", "mnist-mlp", "--data-dir", str(tmp / "empty"),
                                          "--optimizers", "sgd", "--epochs", "1", "--out", out]),
        ("seed-float", ["compare", *TINY, "--seed", "1e99", "--out", out]),
        ("seed-word", ["compare", *TINY, "--seed", "abc", "--out", out]),
        ("train-seed-negative", ["train", _config(tmp, "ok", ""), "--seed", "-1", "--out", out]),
        ("curvature-tol-word", ["curvature", "--tol", "small", "--out", out]),
        ("resume-no-such-folder", ["train", _config(tmp, "ok", ""), "--resume", "--out", str(tmp / "never-made")]),
        ("resume-lr-differs", ["train", _config(tmp, "lr5", "lr = 0.5\n"), "--resume", "--out", str(tmp / "good-run")]),
        ("csv-no-data", ["compare", "--problem", "csv", "--optimizers", "sgd", "--epochs", "1", "--out", out]),
        ("curvature-problem-option-typo", ["curvature", "--problem", "digits-mlp", "--option", "hiden=3",
                                           "--out", out]),
        ("resume-optimizer-differs", ["train", str(_write(tmp / "adam.toml", 'problem = "breast-cancer-logreg"\n'
                                                                      'optimizer = "adam"\nepochs = 1\n')),
                                      "--resume", "--out", str(tmp / "good-run")]),
    ]
    return table


#: words the one line must contain (the message must point at the real problem)
EXPECT = {
    "compare-out-is-file": "is a file", "compare-out-empty": "--out", "compare-out-too-long": "255 bytes",
    "compare-out-readonly-fs": "cannot write", "bench-out-unwritable": "cannot write",
    "lr-two-numbers": "two numbers", "lr-same-name-twice": "sgd twice", "lr-empty-name": "--lr",
    "lr-underflow": "1e-400", "epochs-zero": "[1, 100000]", "epochs-huge": "[1, 100000]",
    "config-epochs-huge": "[1, 100000]", "seed-huge": "--seed", "config-seed-huge": "4294967295",
    "target-above-accuracy": "--target", "csv-empty-header-name": "no name", "csv-duplicate-header": "twice",
    "csv-huge-features": "rescale", "npz-not-zip": "not a zip archive", "config-hyper-lr-shadowed": "set lr once",
    "config-hidden-huge": "GiB", "nproc-too-many": "CPU core", "checkpoint-flipped": "corrupt",
    "checkpoint-history": "damaged", "checkpoint-schedule": "damaged", "checkpoint-iteration": "iteration is -5",
    "checkpoint-epoch": "epoch is -1", "train-into-existing-run": "--resume", "option-typo": "--epochs",
    # the project's form, `Invalid <field>: <value> (allowed: ...)`, with the numbers a newcomer needs
    "optimizer-unknown": "Invalid optimizer: 'sgdd' (did you mean 'sgd'? allowed: adagrad,",
    "optimizer-typo": "Invalid optimizer: 'adamm' (did you mean 'adam'? allowed:",
    "problem-unknown": "Invalid problem: 'digits' (did you mean 'digits-", "schedule-unknown": "Invalid schedule: "
    "'cosine-ish' (", "diagnose-unknown-activation": "Invalid activation: 'relux' (did you mean 'relu'? allowed:",
    "diagnose-unknown-init": "Invalid init: 'xavier' (did you mean 'xavier-", "activations-unknown-name":
    "Invalid activation: 'swish' (allowed: elu, gelu", "tune-unknown-optimizer": "Invalid optimizer: 'adamm' (did you",
    "bench-unknown-problem": "Invalid NIST problem: 'Misra9' (", "bench-problem-typo": "Invalid NIST problem: "
    "'Misra1x' (did you mean 'Misra1", "config-unknown-optimizer": "Invalid optimizer: 'sgd-ish' (",
    "config-hyper-out-of-range": "Invalid [hyper] momentum: 1.5 (allowed: 0 <= momentum < 1)",
    "config-schedule-out-of-range": "Invalid [schedule] every: 0 (allowed: integer >= 1)",
    "csv-missing": "Invalid data: ", "csv-is-a-folder": "(a folder; allowed: a CSV file",
    "csv-five-rows": "Invalid data: 5 rows in 2 classes, the smallest with 2 (too few for a stratified 60/20/20 % "
    "train/val/test split; allowed: at least 3 rows of every class and 8 rows in all)",
    "csv-tiny-problem-implied": "Invalid data: 5 rows in 2 classes, the smallest with 2 (too few",
    "npz-missing": "(no such file; allowed: an .npz file", "mnist-no-data-dir": "Invalid data_dir: ",
    "mnist-data-dir-without-files": "(no train-images-idx3-ubyte[.gz] in it; allowed: a folder holding",
    "seed-not-int": "Invalid --seed: 'x' (allowed: an integer in [0, 4294967295])",
    "seed-negative": "Invalid --seed: -1 (allowed: an integer in [0, 4294967295])",
    "seed-float": "Invalid --seed: 1e99 (allowed: an integer in [0, 4294967295])",
    "seed-word": "Invalid --seed: 'abc' (allowed: an integer in [0, 4294967295])",
    "train-seed-negative": "Invalid --seed: -1 (allowed: an integer in [0, 4294967295])",
    "epochs-not-int": "Invalid --epochs: 'one' (allowed: an integer)", "train-nproc-not-int": "Invalid --nproc: "
    "'two' (allowed: an integer", "curvature-tol-word": "Invalid --tol: 'small' (allowed: a number)",
    "resume-empty-folder": "holds no checkpoint.pt", "resume-no-such-folder": "Invalid --resume: ",
    "resume-lr-differs": "Invalid lr: 0.5 (checkpoint ", "config-unknown-key": "Invalid config key: 'learning_rate' (",
    "schedule-arg-unknown-key": "Invalid hyperparameter for schedule 'step': 'evry' (did you mean 'every'? allowed:",
    "csv-target-missing": "Invalid target column of ",
    "csv-no-data": "Invalid data: none given for problem csv (allowed: the path of a .csv file: --data FILE",
    "curvature-problem-option-typo": "Invalid option for problem 'digits-mlp': 'hiden' (did you mean 'hidden'? "
    "allowed:", "resume-optimizer-differs": "Invalid optimizer: 'adam' (checkpoint ",
}


def classify(run) -> str:
    """clean | usage-box | traceback | accepted | other (see the module docstring)."""
    text = run.output
    if "in alarm" in text:  # the measurement's time limit hit a run that had accepted the input
        return "accepted"
    if "Traceback" in text:
        return "traceback"
    if run.returncode == 0:
        return "accepted"
    if "╭" in text or "Usage:" in text:
        return "usage-box"
    if run.returncode == 2 and len(run.stderr_lines()) == 1:
        return "clean"
    return "other"


def measure(tmp: Path, timeout: float = 30.0, skip: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Run every row in this process (``python tests/cli/fuzz_cases.py``) and group the ids by outcome."""
    import signal
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from cli_helpers import run_inproc

    groups: dict[str, list[str]] = {}

    def alarm(*_):
        raise TimeoutError

    signal.signal(signal.SIGALRM, alarm)
    for case_id, args in cases(tmp):
        if case_id in skip:
            groups.setdefault("not run (no limit: would exhaust the machine)", []).append(case_id)
            continue
        signal.alarm(int(timeout))
        run = None
        try:
            run = run_inproc(args)
            kind = classify(run)
        except TimeoutError:
            kind = "accepted"  # still working after the timeout: the input was taken
        finally:
            signal.alarm(0)
        groups.setdefault(kind, []).append(case_id)
        print(f"{kind:10} {case_id}: {run.stderr.strip()[-200:]!r}" if run is not None else f"{kind:10} {case_id}",
              file=sys.__stderr__, flush=True)
    return groups


if __name__ == "__main__":
    import sys
    import tempfile

    skip = tuple(sys.argv[1:])
    result = measure(Path(tempfile.mkdtemp(prefix="ravine-fuzz-")), skip=skip)
    for kind, ids in sorted(result.items()):
        print(f"{kind}: {len(ids)}  {', '.join(ids)}")
