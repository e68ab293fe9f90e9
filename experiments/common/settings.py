"""A study's settings, written once, and the command-line flags made from them.

Each study's configuration is a frozen dataclass whose fields are declared
with :func:`setting`: the default, the help text and the generic checks live
in the field. :func:`define_flags` makes one absl flag per field (name,
default and help from the field; its kind from the annotation: ``int``,
``float``, ``bool``, ``str``, or a ``tuple[...]`` given as a comma-separated
list), plus the flags of every study that are not settings (``--output_dir``,
``--check``, ``--progress``, ``--distributed`` and its companions).
:func:`config_from_flags` reads them back into the dataclass.

Settings shared by every study (``--seed``, ``--x64``,
``--false_failure_rate``, ``--prng_impl``, ``--chunk_chains``) are the fields
of :class:`CommonSettings`, which each study's configuration extends.

One rule for every setting: each one is checked on every run, whether or not
the part it belongs to is switched off (``--top_ks`` with ``--bias_chains=0``
is checked as it is with the bias part on). :func:`check_settings` does the
generic checks (integers in range, finite floats, seeds, no repeated list
entries); each study's ``validate`` adds the ones that need several settings.
Every refusal is ``ValueError('--flag=value: reason')``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable

# The largest integer setting accepted unless a field says otherwise: chain
# indices, generations and sample sizes are int32 in the engine.
MAX_INT = 2**31 - 1
# Sizes (chains, generations, samples) are bounded by the memory model instead
# (:mod:`experiments.common.memory`), which says what a size would need; this
# bound only keeps them in int64.
MAX_SIZE = 2**62
PRNG_IMPLS = ("philox4x32", "threefry2x32")


def bad(flag: str, value, why: str):
    """Raises the project's one refusal: ``ValueError('--flag=value: why')``."""
    raise ValueError(f"--{flag}={value}: {why}")


def setting(
    default,
    help: str,
    *,
    high: int = MAX_INT,
    check: Callable | None = None,
    item: Callable | None = None,
    show: Callable | None = None,
    seed: bool = False,
    keep_case: bool = False,
):
    """A study setting (a dataclass field) and the flag made from it.

    Args:
      default: the default value (a tuple for a list flag).
      help: the flag's help text.
      high: the largest integer accepted (integers and integer list entries).
      check: ``check(value) -> reason or None``, run by :func:`check_settings`.
      item: parses one entry of a list flag from its text (``ValueError(reason)``
        if it cannot); default: by the annotation (int, float, or a string
        stripped and lower-cased unless ``keep_case``).
      show: writes one default entry of a list flag as text (default ``str``;
        floats as ``:g``).
      seed: the value is a seed (:func:`sim.chain.check_seed`'s rule).
      keep_case: list entries keep their case.
    """
    meta = dict(
        help=help, high=high, check=check, item=item, show=show, seed=seed, keep_case=keep_case
    )
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class CommonSettings:
    """Settings every study has (each study's configuration extends this)."""

    seed: int = setting(0, "Root seed; every chain's path depends on it and its index.", seed=True)
    x64: bool = setting(False, "Simulate in float64 (theory is always float64).")
    false_failure_rate: float = setting(
        1e-3,
        "Family-wise false-failure rate of the comparison table (Bonferroni over its "
        "testable rows).",
        check=lambda v: None if 0 < v < 1 else "must be in (0, 1)",
    )
    prng_impl: str = setting(
        "philox4x32",
        "PRNG: philox4x32 (fastest on CPU, measured in bench/) or threefry2x32 (JAX's default).",
        check=lambda v: None if v in PRNG_IMPLS else f"choose one of {', '.join(PRNG_IMPLS)}",
    )
    chunk_chains: int | None = setting(
        None,
        "Chains per compiled call (default: automatic). Results do not depend on it.",
        check=lambda v: None if v is None or v >= 1 else "must be >= 1",
    )


def parse_int(text: str) -> int:
    """An integer from its text, also written as an integral number (``1e10``, ``20.0``);
    ``ValueError('not an integer')`` otherwise."""
    import decimal

    try:
        return int(text)
    except ValueError:
        pass
    try:
        d = decimal.Decimal(str(text).strip())
    except decimal.InvalidOperation:
        raise ValueError("not an integer") from None
    if not d.is_finite() or d != d.to_integral_value():
        raise ValueError("not an integer")
    return int(d)


def _integer_parser():
    """absl's integer parser, also reading integral numbers written as floats (``1e10``)."""
    from absl import flags

    class IntegerParser(flags.IntegerParser):
        def convert(self, argument):
            if isinstance(argument, str):
                try:
                    return super().convert(argument)
                except ValueError:
                    return parse_int(argument)
            return super().convert(argument)

    return IntegerParser()


def _kind(annotation):
    """(base type, is a list) of a field's annotation."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0]
    if typing.get_origin(annotation) is tuple:
        return typing.get_args(annotation)[0], True
    return annotation, False


def _fields(config_cls):
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        base, is_list = _kind(hints[f.name])
        yield f, base, is_list


def _show(f, base, x) -> str:
    if f.metadata.get("show"):
        return f.metadata["show"](x)
    return f"{x:g}" if base is float else str(x)


# The flags of every study that are not settings of its numbers.
DISTRIBUTED_FLAGS = ("coordinator_address", "num_processes", "process_id")


def define_flags(config_cls, *, output_dir: str, module_name: str, flag_values=None):
    """Defines one absl flag per field of ``config_cls`` and the run flags.

    ``module_name`` is the CLI module's name (``__name__``): the flags are its
    own, so ``--help`` lists them all (the ``--distributed`` flags included).
    Returns the FlagValues.
    """
    import sys

    from absl import flags

    fv = flag_values if flag_values is not None else flags.FLAGS
    if module_name == "__main__":  # absl keys the main module's flags by its file
        module_name = sys.argv[0]
    kw = dict(flag_values=fv, module_name=module_name)
    for f, base, is_list in _fields(config_cls):
        help_ = f.metadata.get("help") or f.name
        if is_list:
            flags.DEFINE_list(f.name, [_show(f, base, x) for x in f.default], help_, **kw)
        elif base is bool:
            flags.DEFINE_bool(f.name, f.default, help_, **kw)
        elif base is int:
            flags.DEFINE(
                _integer_parser(),
                f.name,
                f.default,
                help_,
                serializer=flags.ArgumentSerializer(),
                **kw,
            )
        elif base is float:
            flags.DEFINE_float(f.name, f.default, help_, **kw)
        else:
            flags.DEFINE_string(f.name, f.default, help_, **kw)
    flags.DEFINE_string(
        "output_dir",
        output_dir,
        "Where figures and data go (checked before anything runs; locked while a study writes).",
        **kw,
    )
    flags.DEFINE_bool(
        "check",
        False,
        "Exit with status 1 if any testable comparison fails (or none was tested).",
        **kw,
    )
    flags.DEFINE_bool("progress", True, "Show progress bars.", **kw)
    flags.DEFINE_bool(
        "distributed",
        False,
        "Join a multi-process run (jax.distributed.initialize) before JAX starts: chains are "
        "sharded over the devices of all processes and process 0 writes the outputs. On a TPU "
        "pod slice the other three flags can be left out.",
        **kw,
    )
    flags.DEFINE_string(
        "coordinator_address",
        None,
        "With --distributed: host:port of process 0 (default: detect).",
        **kw,
    )
    flags.DEFINE_integer(
        "num_processes",
        None,
        "With --distributed: the number of processes (default: detect).",
        **kw,
    )
    flags.DEFINE_integer(
        "process_id", None, "With --distributed: this process's index, 0.. (default: detect).", **kw
    )
    return fv


def _parse_item(f, base, text):
    parse = f.metadata.get("item")
    if parse is not None:
        return parse(text)
    if base is int:
        return parse_int(text)
    if base is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError("not a number") from None
    text = str(text).strip()
    return text if f.metadata.get("keep_case") else text.lower()


def config_from_flags(flags_obj, config_cls):
    """``config_cls`` filled from the flags of the same names (list entries parsed;
    ``ValueError('--name=entry: reason')`` for one that does not parse)."""
    values = {}
    for f, base, is_list in _fields(config_cls):
        v = flags_obj[f.name].value
        if is_list:
            out = []
            for text in v:
                try:
                    out.append(_parse_item(f, base, text))
                except ValueError as e:
                    bad(f.name, text, str(e))
            v = tuple(out)
        values[f.name] = v
    return config_cls(**values)


def _check_number(name, base, v, high):
    if base is int:
        if isinstance(v, bool) or not isinstance(v, int):
            bad(name, v, "not an integer")
        if not -high <= v <= high:
            bad(name, v, f"out of range (at most {high:,} in magnitude)")
    elif base is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            bad(name, v, "not a number")
        if not math.isfinite(v):
            bad(name, v, "must be a finite number")


def check_settings(config):
    """The generic checks of every field (see the module docstring); returns ``config``."""
    for f, base, is_list in _fields(type(config)):
        v = getattr(config, f.name)
        meta = f.metadata
        high = meta.get("high", MAX_INT)
        if meta.get("seed"):
            from sim.chain import check_seed

            try:
                check_seed(v, f.name)
            except ValueError as e:
                bad(f.name, v, str(e).split(" ", 1)[1] if str(e).startswith(f.name) else str(e))
        elif is_list:
            seen = set()
            for x in v:
                if base in (int, float):
                    _check_number(f.name, base, x, high)
                if x in seen:
                    bad(
                        f.name,
                        _show(f, base, x),
                        "listed twice (each entry runs once: repeat none)",
                    )
                seen.add(x)
        elif v is not None and base in (int, float):
            _check_number(f.name, base, v, high)
        check = meta.get("check")
        if check is not None:
            why = check(v)
            if why:
                bad(f.name, "" if v is None else v, why)
    return config


def flag_values(flags_obj, config_cls) -> dict:
    """The flags that set a study's config, plus where and how it ran (for the manifest)."""
    names = {f.name for f in dataclasses.fields(config_cls)} | {"output_dir", "check", "progress"}
    return {k: flags_obj[k].value for k in flags_obj if k in names}
