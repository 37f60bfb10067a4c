"""The comparison protocol: bracketed tuning at equal budgets, selection on validation,
confirmation on test with fresh seeds, and the study's data in one file.

    python experiments/protocol.py pilot   --study compare task=reviews_tiny   # coarse grid, 1 seed
    python experiments/protocol.py trials  --study compare                     # T random trials
    python experiments/protocol.py select  --study compare                     # best per loss
    python experiments/protocol.py confirm --study compare                     # fresh seeds, test
    python experiments/protocol.py export  --study compare   # results/compare/runs.parquet
    python experiments/protocol.py report  --study compare   # table and figures from that file
    python experiments/protocol.py agreement --study compare --with compare_constraints
        # each loss's rank per task and Kendall's tau-b, from both studies' runs.parquet

A method is a search space, conf/experiment/search/<method>.yaml (search_space.py): a loss (the
default: every registered loss), or an RLHF baseline given by name with --methods (ppo, ppo_rm,
rloo, rloo_rm, online_dpo: online algorithms against the gold reward or a reward model trained on
the run's pairs), each tuned the same way. A run composes its method's file
(experiment=search/<method>); its run_label names the method in every table. The pilot runs
its coarse grid with the selection seed and says, per loss, whether its best lies strictly inside
the space or which axis to widen. `trials` draws T settings per loss (log-uniform, seeded) into
multirun/<study>/trials.json, so a resumed study runs the same trials, and launches them as one
Hydra multirun per loss (each trial a generated config under multirun/<study>/trial_conf).
Tuning runs score validation only for selection (test is scored once, at the final step, since
prefopt has no setting that turns it off; no choice reads it); every run of every phase takes at
most --max-steps optimiser steps, its checkpoint chosen on validation. `confirm` reruns each
loss's selected setting with seeds never equal to the selection seed. A launching subcommand
prints its runs times the measured time per run first; --dry-run prints that plan only.
Runs that finished are skipped by prefopt.train, so every phase resumes.

A study spans sessions and machines through results/<study>/: `export` writes runs.parquet (every
run's data and small files), trials.json and task_builds/ (the task build its runs read, packed by
prefopt.tasks.carry; the same seed builds another pi_ref on another CPU). Every launching phase and
`select` first carry these back into multirun/<study>/: the build into the study's own cache, the
trials, and each committed run (restored finished, so prefopt.train skips it). A build or trial
draw that differs from the one carried is refused, never mixed in.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from search_space import METHOD, inside_verdicts, load_space, stored_trials
from study import print_cost, sweep_plan, train

from prefopt.losses import available_losses

SELECTION_SEED = 0  # training seed of pilot and trial runs; confirmation seeds never equal it
TRIALS_SEED = 0  # seed of the trial draws (with the loss's name)
MAX_STEPS = 250  # optimiser steps of every run of every loss (trainer.max_steps)
# trainer.epochs of every run: enough that MAX_STEPS binds for every method (an online method's
# epoch is one pass over the prompts: 12 RLOO steps on the reviews task), so all take equal steps
EPOCHS = 100
TUNING_TEST_AT = "never"  # eval.test_at of tuning runs: validation only; test is for confirmation
MULTIRUN = Path("multirun")
RESULTS = Path("results")
PHASES = ("pilot", "trials", "confirm")


def study_dir(study: str) -> Path:
    """The study's sweep root: multirun/<study>/{pilot,trials,confirm}/<loss>/<run>."""
    return MULTIRUN / study


def study_cache(study: str) -> Path:
    """The study's own cache (its task build, pi_ref samples): multirun/<study>/.cache, absolute."""
    return (study_dir(study) / ".cache").resolve()


def study_results(study: str) -> Path:
    """results/<study>: the study's committed data (runs.parquet, trials.json, task_builds/)."""
    return RESULTS / study


def carry_out(study: str) -> None:
    """Pack the study cache's task builds into results/<study>/task_builds/ and copy its trials;
    an archive already there must hold the same build."""
    from prefopt.tasks.carry import SUFFIX, content_fingerprint, manifest_of, pack

    out = study_results(study)
    tasks = study_cache(study) / "tasks"
    found = sorted(tasks.iterdir()) if tasks.is_dir() else []
    for build in [p for p in found if p.is_dir() and p.name[0] != "." and p.name != "stages"]:
        archive = out / "task_builds" / f"{build.name}{SUFFIX}"
        if not archive.is_file():
            print(f"packed {pack(build, archive.parent)}")
        elif manifest_of(archive)["content"] != content_fingerprint(build, study_cache(study)):
            raise ValueError(f"{build} is another build than {archive}; the study mixes two")
    trials = study_dir(study) / "trials.json"
    if trials.is_file():
        out.mkdir(parents=True, exist_ok=True)
        (out / "trials.json").write_text(trials.read_text())


def carry_in(study: str) -> None:
    """Put the study's committed build, trials and runs back into multirun/<study>/."""
    from study_data import restore_study

    from prefopt.tasks.carry import unpack

    source = study_results(study)
    for archive in sorted((source / "task_builds").glob("*.tar.gz")):
        unpack(archive, study_cache(study))
    committed, local = source / "trials.json", study_dir(study) / "trials.json"
    if committed.is_file():
        if local.is_file() and local.read_text() != committed.read_text():
            raise ValueError(f"{local} differs from {committed}: two trial draws in one study")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(committed.read_text())
    if (source / "runs.parquet").is_file():
        written = restore_study(source / "runs.parquet", study_dir(study))
        print(f"restored {written} runs of {source / 'runs.parquet'} into {study_dir(study)}")


def common_overrides(study: str, phase: str, loss: str, max_steps: int) -> list[str]:
    """Overrides every run of a phase shares: its sweep folder, method, step budget, the study's
    cache, launcher."""
    overrides = [
        f"name={study}/{phase}",
        f"cache_dir={study_cache(study)}",
        f"experiment=search/{loss}",
        f"trainer.max_steps={max_steps}",
        f"trainer.epochs={EPOCHS}",
    ]
    if phase != "confirm":
        overrides.append(f"eval.test_at={TUNING_TEST_AT}")
    return [*overrides, "launcher=joblib"]


def pilot_commands(study: str, losses: list[str], max_steps: int) -> dict[str, list[str]]:
    """Each loss's pilot multirun: its grid, the selection seed."""
    commands = {}
    for loss in losses:
        grid = [
            f"{key}={','.join(repr(v) for v in values)}"
            for key, values in load_space(loss).pilot.items()
        ]
        commands[loss] = [
            *common_overrides(study, "pilot", loss, max_steps),
            *grid,
            f"seed={SELECTION_SEED}",
        ]
    return commands


def trial_name(loss: str, index: int) -> str:
    """The generated config of a loss's index-th trial (+trial=<name>)."""
    return f"{loss}_{index:02d}"


def write_trial_configs(conf_dir: Path, trials: dict[str, list[dict]]) -> None:
    """One `# @package _global_` config per trial under conf_dir/trial/, from the stored trials."""
    (conf_dir / "trial").mkdir(parents=True, exist_ok=True)
    for loss, settings in trials.items():
        for index, setting in enumerate(settings):
            nested: dict = {}
            for key, value in setting.items():
                group, name = key.split(".", 1)
                nested.setdefault(group, {})[name] = value
            text = "# @package _global_\n" + yaml.safe_dump(nested, sort_keys=True)
            (conf_dir / "trial" / f"{trial_name(loss, index)}.yaml").write_text(text)


def trial_commands(study: str, losses: list[str], max_steps: int) -> dict[str, list[str]]:
    """Each loss's multirun over its stored trials (drawn and stored on the first call)."""
    root = study_dir(study)
    spaces = [load_space(loss) for loss in losses]
    trials = stored_trials(root / "trials.json", spaces, TRIALS_SEED)
    conf_dir = (root / "trial_conf").resolve()
    write_trial_configs(conf_dir, trials)
    return {
        loss: [
            *common_overrides(study, "trials", loss, max_steps),
            f"hydra.searchpath=[file://{conf_dir}]",
            "+trial=" + ",".join(trial_name(loss, i) for i in range(len(trials[loss]))),
            f"seed={SELECTION_SEED}",
        ]
        for loss in losses
    }


def confirmation_seeds(n_seeds: int) -> list[int]:
    """`n_seeds` fresh seeds, none equal to the selection seed."""
    return [SELECTION_SEED + offset for offset in range(1, n_seeds + 1)]


def confirm_commands(study: str, losses: list[str], max_steps: int) -> dict[str, list[str]]:
    """Each loss's selected setting with its fresh seeds, scored on test."""
    selected = select_settings(study_dir(study) / "trials", losses)
    commands = {}
    for loss in losses:
        if loss not in selected:
            print(f"{loss}: no finished trial to select from; not confirmed")
            continue
        seeds = confirmation_seeds(load_space(loss).confirm_seeds)
        commands[loss] = [
            *common_overrides(study, "confirm", loss, max_steps),
            *(f"{key}={value!r}" for key, value in selected[loss].items()),
            f"seed={','.join(str(s) for s in seeds)}",
        ]
    return commands


def print_plan(phase: str, study: str, commands: dict[str, list[str]]) -> int:
    """Each loss's runs, then the runs left x time per run; returns the number of runs."""
    total = finished = 0
    for loss, overrides in commands.items():
        plan = sweep_plan(overrides)
        total += plan.runs
        finished += plan.finished()
        print(f"{phase} {loss}: {plan.runs} runs: python -m prefopt.train -m {' '.join(overrides)}")
    print_cost(phase, total, finished, study_dir(study))
    return total


def launch(phase: str, study: str, commands: dict[str, list[str]], extra, dry_run: bool) -> None:
    """Print the plan; unless a dry run, run each loss's multirun (no confirmation asked)."""
    commands = {loss: [*overrides, *extra] for loss, overrides in commands.items()}
    print_plan(phase, study, commands)
    if dry_run:
        print("dry run: nothing launched")
        return
    for overrides in commands.values():
        train(*overrides)


def select_settings(sweep: Path, losses: list[str]) -> dict[str, dict[str, float]]:
    """Each loss's setting (its space's keys -> values) with the best mean validation score at
    each run's best validation checkpoint; a loss without a finished run is left out."""
    from prefopt.analysis.selection import checkpoint_rows, select_hyperparameters
    from prefopt.report import selection_metric
    from prefopt.results import load_sweep

    if not sweep.is_dir():
        return {}
    frame = load_sweep(sweep)
    metric = selection_metric(frame)
    if metric is None:
        return {}
    selected = {}
    for loss in losses:
        runs = frame[frame[METHOD] == loss]
        keys = list(load_space(loss).space)
        if runs.empty or not set(keys) <= set(runs.columns):
            continue
        best = select_hyperparameters(
            checkpoint_rows(runs, "best", metric), method=METHOD, hyperparameters=keys
        )
        if not best.empty:
            selected[loss] = {key: float(best[key].iloc[0]) for key in keys}
    return selected


def print_verdicts(sweep: Path, losses: list[str]) -> dict[str, dict[str, str]]:
    """Each loss's best setting in `sweep` and, per axis, whether it lies strictly inside."""
    verdicts = {}
    for loss, setting in select_settings(sweep, losses).items():
        verdicts[loss] = inside_verdicts(load_space(loss), setting)
        values = ", ".join(f"{key}={value:.3g}" for key, value in setting.items())
        flags = "; ".join(f"{key}: {text}" for key, text in verdicts[loss].items())
        print(f"{loss}: best {values} -- {flags}")
    return verdicts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "phase", choices=(*PHASES, "select", "export", "report", "agreement"), help="what to do"
    )
    parser.add_argument("--study", default="compare", help="multirun/<study>, results/<study>")
    parser.add_argument(
        "--methods",
        "--losses",
        dest="losses",
        nargs="+",
        default=available_losses(),
        help="search spaces to tune (default: every loss; RLHF baselines by name)",
    )
    parser.add_argument("--max-steps", type=int, default=MAX_STEPS, help="steps of every run")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, launch nothing")
    parser.add_argument(
        "--with",
        dest="others",
        nargs="+",
        default=[],
        help="agreement: the studies of the other tasks (results/<study>/runs.parquet)",
    )
    parser.add_argument("extra", nargs="*", help="more overrides for every run (task=...)")
    args = parser.parse_intermixed_args(argv)  # overrides may follow the options
    if args.phase in (*PHASES, "select") and not args.dry_run:
        carry_in(args.study)
    if args.phase in PHASES:
        build = {"pilot": pilot_commands, "trials": trial_commands, "confirm": confirm_commands}
        commands = build[args.phase](args.study, args.losses, args.max_steps)
        launch(args.phase, args.study, commands, args.extra, args.dry_run)
        if args.phase == "pilot" and not args.dry_run:
            print_verdicts(study_dir(args.study) / "pilot", args.losses)
    elif args.phase == "select":
        print_verdicts(study_dir(args.study) / "trials", args.losses)
    else:
        from study_data import agreement_study, export_study, report_study

        data = study_results(args.study) / "runs.parquet"
        if args.phase == "export":
            export_study(study_dir(args.study), data)
            carry_out(args.study)
        elif args.phase == "agreement":
            if not args.others:
                parser.error("agreement needs --with STUDY [STUDY ...], the other tasks' studies")
            paths = [data, *(study_results(other) / "runs.parquet" for other in args.others)]
            agreement_study(paths, study_results(args.study))
        else:
            report_study(data, study_results(args.study))


if __name__ == "__main__":
    main()
