"""The run flags every training command shares, defined once, and the one way option rules are
written (no TensorFlow here: ``--help`` and bad flags answer before it loads).

- :func:`define_run_flags`: ``--checkpoint_dir``, ``--tensorboard_dir``, ``--sample_dir``,
  ``--seed``, ``--deterministic``, ``--save_interval``, ``--sample_interval``,
  ``--log_interval``, ``--max_to_keep``, ``--max_steps``, ``--nan_policy``,
  ``--mixed_precision``, ``--xla``, ``--dry_run``: a model's flags module names the ones its
  trainer takes, with its defaults (and older spellings as absl aliases: pretraining's
  ``--output_dir``, ``--save_every``, ``--log_every``, ``--jit_compile``).
- :class:`Rule`: one rule on one or more options (``--batch_size must be >= 2 ...``). Where
  the rules are written: a model's TF-free ``config`` module holds its table (``RULES``) next
  to the config class. The flag layer registers the table as absl validators
  (:func:`register_rules`: a bad flag is one line before anything runs); the library checks a
  config object built without flags against the same table (the config module's
  ``problems(config)``, built on :func:`violations`). A rule is written once, in the table:
  not again as a validator in a flags module, nor as an ``if`` in a trainer. (Flag *types* --
  an enum's choices, an integer's ``lower_bound`` -- are part of the flag's definition, not
  rules; checks that read the file system stay with the flags that name the files.)
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from absl import flags

from face_aging import precision
from face_aging.engine.options import NAN_POLICIES

# A flag-defining helper: its flags are listed in --helpshort of the command that calls it.
flags.disclaim_key_flags()


@dataclasses.dataclass(frozen=True)
class Rule:
    """``test(*values of names)`` must hold; else ``message`` (one line, flag spelling;
    ``{name}`` fields are filled with the values).

    A value of None (an option left to its derived default) passes a one-name rule.
    """
    names: Tuple[str, ...]
    test: Callable[..., bool]
    message: str

    def holds(self, values: Sequence) -> bool:
        if len(self.names) == 1 and values[0] is None:
            return True
        return bool(self.test(*values))

    def text(self, values: Sequence) -> str:
        """The message for these values."""
        return self.message.format(**dict(zip(self.names, values)))


def rule(names, test: Callable[..., bool], message: str) -> Rule:
    """A :class:`Rule` on one name (a string) or several (a sequence)."""
    return Rule((names,) if isinstance(names, str) else tuple(names), test, message)


def at_least(minimum, *names: str, why: str = "") -> List[Rule]:
    """``--NAME must be >= minimum`` for each name (``why`` appended in parentheses)."""
    suffix = f" ({why})" if why else ""
    return [rule(n, lambda v, m=minimum: v >= m, f"--{n} must be >= {minimum}{suffix}")
            for n in names]


def one_of(name: str, choices: Sequence[str]) -> Rule:
    """``--NAME must be one of CHOICES`` (an enum flag checks it while parsing; a config built
    without flags is checked by :func:`violations`)."""
    return rule(name, lambda v: v in choices, f"--{name} must be one of {', '.join(choices)}")


def violations(rules: Iterable[Rule], config, fields: Optional[Mapping[str, str]] = None
               ) -> List[str]:
    """The messages of the rules ``config`` (an object with the options as attributes, or a
    mapping) breaks, in table order. ``fields`` maps a flag name to the config's field name
    where they differ (pretraining's ``save_interval`` is its config's ``save_every``)."""
    fields = fields or {}

    def value(name):
        name = fields.get(name, name)
        return config[name] if isinstance(config, Mapping) else getattr(config, name)

    checked = [(r, [value(n) for n in r.names]) for r in rules]
    return [r.text(values) for r, values in checked if not r.holds(values)]


def register_rules(flag_values, rules: Iterable[Rule]) -> None:
    """Registers each rule as an absl validator of the flags it names (the ones defined)."""
    def checker(r):
        def check(values):
            values = [values[n] for n in r.names] if len(r.names) > 1 else [values]
            if not r.holds(values):
                raise flags.ValidationError(r.text(values))
            return True
        return check

    for r in rules:
        if any(n not in flag_values for n in r.names):
            continue
        if len(r.names) == 1:
            flags.register_validator(r.names[0], checker(r), flag_values=flag_values)
        else:
            flags.register_multi_flags_validator(list(r.names), checker(r),
                                                 flag_values=flag_values)


# --------------------------------------------------------------------------- the run flags

DETERMINISTIC_HELP = ("TF op determinism, oneDNN and Grappler's graph rewrites off, one "
                      "intra-op thread (multi-threaded reductions varied with load; Grappler's "
                      "rewrite varied between processes): the same seed gives the same "
                      "weights, and a killed and resumed run ends with the same weights, bit "
                      "for bit, as an uninterrupted one. Slower.")
NAN_POLICY_HELP = ("A step with a non-finite loss, gradient or weight is undone; stop: end "
                   "the run with one line; skip: go on.")

#: name -> (absl DEFINE function name, help) of every run flag, in --help order.
RUN_FLAGS: Dict[str, Tuple[str, str]] = {
    "checkpoint_dir": ("DEFINE_string", "Where checkpoints are written and resumed from."),
    "tensorboard_dir": ("DEFINE_string", "TensorBoard directory (default: CHECKPOINT_DIR/logs; "
                                         "--log_dir is absl's own flag for log files)."),
    "sample_dir": ("DEFINE_string", "Where sample images are written."),
    "save_interval": ("DEFINE_integer", "Steps between checkpoints (and at the end)."),
    "sample_interval": ("DEFINE_integer", "Steps between sample images."),
    "log_interval": ("DEFINE_integer", "Steps between progress lines and TensorBoard scalars."),
    "max_to_keep": ("DEFINE_integer", "Checkpoints kept (0: all)."),
    "max_steps": ("DEFINE_integer", "Training steps."),
    "seed": ("DEFINE_integer", "Seed of the weights, the data order and every random draw."),
    "deterministic": ("DEFINE_bool", DETERMINISTIC_HELP),
    "nan_policy": ("DEFINE_enum", NAN_POLICY_HELP),
    "mixed_precision": ("", ""),  # precision.define_flag (its own parser and help)
    "xla": ("DEFINE_bool", "Compile the training step with XLA (jit_compile)."),
    "dry_run": ("DEFINE_bool", "Check the options, print them and write nothing."),
}

#: The rules of the run flags (a trainer checks its config with them too).
RUN_RULES = (at_least(1, "save_interval", "sample_interval", "log_interval", "max_steps")
             + at_least(0, "max_to_keep") + [one_of("nan_policy", NAN_POLICIES)])


def define_run_flags(flag_values, defaults: Mapping[str, object],
                     notes: Optional[Mapping[str, str]] = None,
                     aliases: Optional[Mapping[str, str]] = None) -> None:
    """Defines the run flags named in ``defaults`` (name -> default, in :data:`RUN_FLAGS`) on
    ``flag_values``, with their rules (:data:`RUN_RULES`).

    Args:
      notes: name -> text added to the shared help (what the flag means for this model).
      aliases: old name -> run flag name, defined with ``DEFINE_alias`` (the old spelling
        keeps working and sets the same value).
    """
    notes = notes or {}
    unknown = sorted(set(defaults) - set(RUN_FLAGS))
    if unknown:
        raise ValueError(f"not run flags: {', '.join(unknown)}")
    for name in RUN_FLAGS:
        if name not in defaults:
            continue
        define, text = RUN_FLAGS[name]
        text = f"{text} {notes[name]}" if name in notes else text
        if name == "mixed_precision":
            precision.define_flag(flag_values, default=defaults[name],
                                  extra_help=f" {notes[name]}" if name in notes else "")
        elif define == "DEFINE_enum":
            flags.DEFINE_enum(name, defaults[name], list(NAN_POLICIES), text,
                              flag_values=flag_values)
        else:
            getattr(flags, define)(name, defaults[name], text, flag_values=flag_values)
    for old, name in (aliases or {}).items():
        flags.DEFINE_alias(old, name, flag_values=flag_values)
    register_rules(flag_values, [r for r in RUN_RULES if r.names[0] in defaults])
