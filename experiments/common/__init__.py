"""The scaffold every experiment stands on (DESIGN.md, "experiments ... on one scaffold").

* :mod:`~experiments.common.settings`: a study's configuration is one frozen
  dataclass whose fields (:func:`setting`) carry their defaults, help and
  generic checks; the flags are generated from it, the common ones
  (:class:`CommonSettings`, ``--output_dir``, ``--check``, ``--progress``,
  ``--distributed`` ...) defined here once.
* :mod:`~experiments.common.table`: comparisons, Bonferroni verdicts, the
  printed table and summary-row columns.
* :mod:`~experiments.common.study`: the :class:`Study` result, float64 for the
  theory, the timed run.
* :mod:`~experiments.common.outputs`: the output directory (checked, locked),
  CSVs, arrays, figures (atomic) and the manifest.
* :mod:`~experiments.common.memory`: the README's memory model, to refuse a
  study that cannot fit before it runs.
* :mod:`~experiments.common.cli`: the command line (one-line refusals, exit 2).
"""

from experiments.common.cli import distributed_from_flags, finish, run_cli, run_main
from experiments.common.memory import RunSize, check_memory
from experiments.common.outputs import (
    check_output_dir,
    output_lock,
    save_figure,
    subplots,
    write_csv,
    write_manifest,
    write_npz,
    write_study,
)
from experiments.common.settings import (
    MAX_INT,
    MAX_SIZE,
    PRNG_IMPLS,
    CommonSettings,
    bad,
    check_settings,
    config_from_flags,
    define_flags,
    flag_values,
    setting,
)
from experiments.common.study import (
    Study,
    enable_compilation_cache,
    float64,
    judged,
    timed_run,
    timing,
)
from experiments.common.table import (
    FAIL,
    PASS,
    SKIP,
    Comparison,
    binomial_se,
    format_sections,
    format_table,
    judge_all,
    mean_is_measurable,
    moment_columns,
    report_generations,
    theory_columns,
    z_threshold,
)

__all__ = [
    "CommonSettings",
    "Comparison",
    "FAIL",
    "MAX_INT",
    "MAX_SIZE",
    "PASS",
    "PRNG_IMPLS",
    "RunSize",
    "SKIP",
    "Study",
    "bad",
    "binomial_se",
    "check_memory",
    "check_output_dir",
    "check_settings",
    "config_from_flags",
    "define_flags",
    "distributed_from_flags",
    "enable_compilation_cache",
    "finish",
    "flag_values",
    "float64",
    "format_sections",
    "format_table",
    "judge_all",
    "judged",
    "mean_is_measurable",
    "moment_columns",
    "output_lock",
    "report_generations",
    "run_cli",
    "run_main",
    "save_figure",
    "setting",
    "subplots",
    "theory_columns",
    "timed_run",
    "timing",
    "write_csv",
    "write_manifest",
    "write_npz",
    "write_study",
    "z_threshold",
]
