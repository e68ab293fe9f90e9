"""The command line of every study: flags checked, x64 set, one timed run, files, verdict.

Each experiment module is short (the flax examples' habit)::

    FLAGS = common.define_flags(StudyConfig, output_dir="out/x", module_name=__name__)

    def main(argv):
        make = lambda: validate(common.config_from_flags(FLAGS, StudyConfig))
        common.run_cli(argv, FLAGS, make, report)

    if __name__ == "__main__":
        common.run_main(main, FLAGS)

Every bad input is refused before anything compiles, with one line
``error: --flag=value: reason`` and exit status 2: a flag absl cannot parse
(:func:`run_main`), a bad setting or one that cannot fit in memory
(``validate``), an output directory that cannot be written or is in use.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time

from experiments.common.outputs import check_output_dir, output_lock
from experiments.common.settings import DISTRIBUTED_FLAGS, flag_values


def refuse(message: str, status: int = 2):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(status)


def parse_error(e) -> str:
    """absl's ``flag --name=value: reason`` as ``--name=value: reason`` (reasons reworded)."""
    text = str(e).strip().removeprefix("flag ")
    text = re.sub(r"invalid literal for int\(\) with base 10: .*", "not an integer", text)
    text = re.sub(r"could not convert string to float: .*", "not a number", text)
    return text


def run_main(main, flags_obj) -> None:
    """``absl.app.run(main)`` with flag parse errors in the project's one-line form."""
    from absl import app, flags

    def parse(argv):
        try:
            return flags_obj(argv)
        except flags.Error as e:
            refuse(parse_error(e))

    app.run(main, flags_parser=parse)


def distributed_from_flags(flags_obj) -> dict | None:
    """The arguments of :func:`sim.distributed.initialize` from ``--distributed`` and
    its three companions (None without ``--distributed``); ``ValueError('--flag=value:
    reason')`` for a bad or inconsistent one."""
    given = {k: flags_obj[k].value for k in DISTRIBUTED_FLAGS if k in flags_obj}
    if "distributed" not in flags_obj or not flags_obj["distributed"].value:
        for k, v in given.items():
            if v is not None:
                raise ValueError(f"--{k}={v}: only used with --distributed")
        return None
    from sim import distributed

    try:
        return distributed.check_arguments(**given)
    except ValueError as e:
        raise ValueError(f"--{e}") from None


def enable_x64() -> None:
    """Turns float64 on for the process, once, at the command line's entry (the
    theory's closed forms need it; simulations pick their dtype by ``--x64``)."""
    import jax

    jax.config.update("jax_enable_x64", True)


def run_cli(argv, flags_obj, make_config, report) -> None:
    """The body of every experiment's ``main``: check the flags, run, write, judge.

    ``make_config()`` builds and validates the study config from the flags
    (``ValueError('--flag=value: reason')`` on a bad one: printed as one line,
    exit status 2, before anything compiles); ``report`` is the study module
    (``run_study`` and ``write_outputs``). The output directory is checked
    (creatable, writable, not a file) and then locked for the whole run. With
    ``--distributed`` the process joins the multi-process run first; every
    process computes, process 0 alone locks, prints and writes, and every
    process exits with the same status.
    """
    if len(argv) > 1:
        refuse(f"unexpected arguments {argv[1:]}")
    output_dir = flags_obj.output_dir
    try:
        config = make_config()
        dist = distributed_from_flags(flags_obj)
        check_output_dir(output_dir)
    except ValueError as e:
        refuse(str(e))
    from experiments.common.study import enable_compilation_cache

    enable_x64()
    enable_compilation_cache()
    main = True
    if dist is not None:  # before anything touches a JAX backend
        from sim import distributed

        distributed.initialize(**dist)
        main = distributed.is_main_process()
    with contextlib.ExitStack() as stack:
        if main:
            try:
                stack.enter_context(output_lock(output_dir))
            except ValueError as e:
                refuse(str(e))
        t0 = time.perf_counter()
        study = report.run_study(config, progress=flags_obj.progress and main)
        if not main:  # computed its share; process 0 writes and reports
            if flags_obj.check and (study.num_failed or not study.num_tested):
                sys.exit(1)
            return
        outputs = report.write_outputs(
            study,
            output_dir,
            flags_dict=flag_values(flags_obj, type(config)),
            wall_s=time.perf_counter() - t0,
        )
    finish(study, outputs, output_dir, t0, flags_obj.check)


def finish(study, outputs: list, output_dir: str, t0: float, check: bool) -> None:
    """Prints the table and where the files went; exits 1 on a failed ``--check``,
    and on a ``--check`` that tested nothing (it must not pass silently)."""
    import os

    print(study.table)
    print(
        f"wrote {len(outputs)} files to {os.path.abspath(output_dir)} "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    if not check:
        return
    if study.num_failed:
        print(f"check failed: {study.num_failed} comparison(s) outside tolerance", file=sys.stderr)
        sys.exit(1)
    tested = sum(r.testable for r in study.comparisons)
    if not tested:
        print(
            "check failed: no comparison was tested (every part switched off or not "
            "testable), so there is nothing to pass",
            file=sys.stderr,
        )
        sys.exit(1)
