"""Settings that follow the data: sizes, budgets and schedules derived from the training split.

A template's defaults are sized for its one-minute offline demo; real data needs
settings sized for it. An app's optional ``auto_settings(config)`` hook reads its
training split and returns :class:`Choice` values (key, value, the reason in words),
built mostly from the rules below, which know no app: they are given the keys to set.
:func:`apply` puts them into the configuration, except for keys the user gave (a
preset, ``--config``, ``--set``), which always win. The run's ``config.yaml`` then holds
them as plain values and ``run.json`` the reasons; :func:`describe` is the printed block.

Auto settings apply when ``train.auto_settings`` is true (the default), the data is
not an offline generated dataset (the demo keeps its fast settings) and the run is not
a ``--resume`` (the interrupted run's ``config.yaml`` already holds them).

The rules, each a step function of one number of the training split:

=====================  ==========================================================
vocabulary             tokens seen at least twice in train (rarer ones share OOV)
widths (units, emb.)   64 under 20 k training tokens, 128 under 1 M, else 256; then the widest
                       of those allowed (that width and the narrower steps) whose epoch, timed on
                       the model itself (a few batches, scaled to an epoch's tokens), fits at
                       least 5 times into ``train.max_minutes``
dropout                0.5 under 1 M tokens, 0.3 under 3 M, else 0.2
batch size             16 under 2 k examples, else the smallest of 32, 64 and 128 that keeps an
                       epoch within 1,000 steps (32 under 32 k examples, 64 under 64 k, else 128)
EMA of the weights     off under 300 steps per epoch, else momentum 1 - 1/steps
learning rate          encoder-decoders only: 0.002 after a linear warm-up over the first epoch
                       (at most 1,000 steps; without it, fast rates kept one at the unigram level)
classifier stack       from 300 k training tokens: 2 GRU layers, embeddings 64, dropout 0.3,
                       learning rate 0.004 (:func:`classifier_stack`; below, one layer)
bucket boundaries      the 5 %, 10 %, ..., 95 %, 99 % quantiles of training lengths
budget                 ``train.max_minutes`` 15, epochs up to 200 or 10 patiences (the budget
                       or early stopping ends them), patience about 1,500 steps (5 to 100 epochs)
=====================  ==========================================================
"""

import collections
import dataclasses
import math
import typing

import numpy as np

from seq_templates import config as config_module
from seq_templates import errors

DEFAULT_MINUTES = 15.0
MAX_EPOCHS = 200
WIDTH_STEPS = ((20_000, 64), (1_000_000, 128), (None, 256))
DROPOUT_STEPS = ((1_000_000, 0.5), (3_000_000, 0.3), (None, 0.2))
BATCH_STEPS = ((2_000, 16), (32_000, 32), (64_000, 64), (None, 128))  # 1,000 steps per epoch at most
MAX_VOCABULARY = 50_000
PATIENCE_STEPS = 1500  # early stopping waits about this many steps (in whole epochs, 5 to 100)
ENCODER_DECODER_RATE = 0.002  # after WARMUP_STEPS: twice Adam's default
WARMUP_STEPS = 1000
STACK_TOKENS = 300_000  # from here a classifier stacks two layers (SST-2: 567 k; aclimdb 5.8 M)
EPOCHS_IN_BUDGET = 5  # the widest width whose epochs fit this many times into train.max_minutes
# An epoch's validation pass and callbacks, on top of its timed training steps: none, because the timed
# steps meet each batch shape for the first time (each new shape costs), which outweighs them: spa_eng's
# timed 1.98 min per epoch at width 64 ran at 2.2 min in epoch 1 and 1.27 min from epoch 2, with validation.
EPOCH_OVERHEAD = 1.0


@dataclasses.dataclass
class Choice:
    """One setting chosen from the data.

    Attributes:
        key: ``section.name``, e.g. ``model.units``.
        value: The plain value written into ``config.yaml``.
        reason: Why, in words, e.g. ``1.9 M training tokens``.
    """

    key: str
    value: typing.Any
    reason: str


@dataclasses.dataclass
class AfterOthers:
    """A rule that reads settings other rules choose (the schedule reads the batch size in use).

    Attributes:
        rule: ``config -> [Choice]``, called with the configuration after every plain
            :class:`Choice` (and the user's values) is in.
    """

    rule: typing.Callable


@dataclasses.dataclass
class WithinBudget:
    """Widths the data allows, narrowed to the widest whose epochs fit the training budget.

    The data's rule gives the widest width (:func:`widths`); whether its epochs fit into
    ``train.max_minutes`` depends on the machine, so the run times a few training steps of
    the model itself (``lifecycle``) and :func:`narrow_to_budget` decides.

    Attributes:
        keys: The width keys (``model.units``, ...), all set to one width.
        widths: The candidates, widest first; the first is the data's choice.
        num_tokens: Training tokens (steps, values) an epoch reads.
        reason: The data's reason for the first width.
    """

    keys: tuple
    widths: list
    num_tokens: int
    reason: str


def applies(config, recipe=None, resume=False):
    """Whether auto settings apply: ``train.auto_settings`` on, real data, not a resume.

    Args:
        config: The resolved configuration.
        recipe: The registered dataset's recipe, or None for a local file.
        resume: Whether the run continues an interrupted one.
    """
    return bool(getattr(config["train"], "auto_settings", False)) and not resume and not (
        recipe and recipe.get("generator"))


def apply(config, section_classes, choices, explicit_keys):
    """Puts ``choices`` into ``config``, except the keys the user gave.

    Every value passes the same checks as a ``--set`` (type, choices, minimum).
    :class:`AfterOthers` rules run last, on the configuration with the other choices in.

    Args:
        config: The resolved configuration (dict of section name to dataclass).
        section_classes: The app's ``CONFIG_SECTIONS``.
        choices: :class:`Choice` and :class:`AfterOthers` values from the app's ``auto_settings``.
        explicit_keys: ``section.key`` names set by a preset, ``--config`` or ``--set``.

    Returns:
        ``(new config, applied choices, kept choices)``: kept are those the user's value overrode.
    """
    applied, kept = [], []

    def put(config, plain_choices):
        values = config_module.to_dict(config)
        for choice in plain_choices:
            (kept if choice.key in explicit_keys else applied).append(choice)
            if choice.key not in explicit_keys:
                section, _, name = choice.key.partition(".")
                values[section][name] = choice.value
        try:
            return config_module.resolve_values(section_classes, values, source="auto settings")
        except errors.SeqTemplatesError as error:  # a rule's bug, not the user's: say so
            raise errors.SeqTemplatesError(f"{error} (set train.auto_settings=false to skip auto settings)") from None

    config = put(config, [choice for choice in choices if isinstance(choice, Choice)])  # WithinBudget: later
    for later in (choice for choice in choices if isinstance(choice, AfterOthers)):
        config = put(config, later.rule(config))
    return config, applied, kept


def describe(applied, kept, config, title="Settings from the training split"):
    """The block printed before training: each chosen value with its reason, then the user's."""
    lines = [f"{title} (train.auto_settings=false turns them off; --set KEY=VALUE overrides one):"]
    lines += [f"  {choice.key} {format_value(choice.value)}: {choice.reason}" for choice in applied]
    if kept:
        given = ", ".join(f"{choice.key}={format_value(_lookup(config, choice.key))}" for choice in kept)
        lines.append(f"  yours, kept: {given}")
    return "\n".join(lines)


def _lookup(config, key):
    section, _, name = key.partition(".")
    return getattr(config[section], name)


def format_value(value):
    """A value as ``--set`` would take it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    return str(value)


def amount(number):
    """``1_900_000`` -> ``1.9 M``: counts in reasons."""
    for size, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if number >= size:
            return f"{number / size:.3g}{suffix}"
    return str(int(number))


def step(number, steps):
    """The value of the first ``(bound, value)`` whose bound exceeds ``number`` (None: no bound)."""
    for bound, value in steps:
        if bound is None or number < bound:
            return value
    return steps[-1][1]


# Statistics of a training split.
def token_counts(token_lists):
    """A ``collections.Counter`` over every token of ``token_lists`` (lists of str)."""
    counts = collections.Counter()
    for tokens in token_lists:
        counts.update(tokens)
    return counts


def standardized_tokens(texts, standardize_mode, level="word", batch_size=4096):
    """Raw strings -> lists of tokens as the in-graph standardizer makes them (words or characters)."""
    import tensorflow as tf

    from seq_templates.preprocessing import text

    token_lists = []
    for start in range(0, len(texts), batch_size):
        standardized = text.standardize(tf.constant(list(texts[start:start + batch_size]), dtype=tf.string),
                                        standardize_mode)
        pieces = (tf.strings.unicode_split(standardized, "UTF-8") if level == "char"
                  else tf.strings.split(standardized))
        token_lists += [[token.decode("utf-8") for token in tokens] for tokens in pieces.to_list()]
    return token_lists


# Rules: each returns a list of Choice (empty when it has nothing to say).
def vocabulary(key, counts, reserved=2, min_count=2, maximum=MAX_VOCABULARY):
    """``key`` = the tokens seen ``min_count`` times or more (plus ``reserved`` ids), at most ``maximum``."""
    frequent = sum(1 for count in counts.values() if count >= min_count)
    size = max(min(frequent, maximum) + reserved, reserved + 1)
    return [Choice(key, size, f"{amount(frequent)} of {amount(len(counts))} distinct tokens seen "
                              f"{min_count}+ times in train" + (f" (at most {amount(maximum)})"
                                                                if frequent > maximum else ""))]


def widths(keys, num_tokens, steps=WIDTH_STEPS, what="training tokens", within_budget=False):
    """Each key in ``keys`` (units, embedding size, ...) = :data:`WIDTH_STEPS` of ``num_tokens``.

    With ``within_budget``, a :class:`WithinBudget` follows: the run narrows the widths to the
    widest step (this one or a narrower one) whose epochs fit the budget.
    """
    width, reason = step(num_tokens, steps), f"{amount(num_tokens)} {what}"
    choices = [Choice(key, width, reason) for key in keys]
    narrower = sorted({value for _, value in steps if value < width}, reverse=True)
    if within_budget and narrower:
        choices.append(WithinBudget(tuple(keys), [width, *narrower], int(num_tokens), reason))
    return choices


def budget_rule(choices, explicit_keys):
    """The :class:`WithinBudget` among ``choices`` the run applies: None if the user gave a width."""
    for choice in choices:
        if isinstance(choice, WithinBudget) and not set(choice.keys) & set(explicit_keys):
            return choice
    return None


def narrow_to_budget(rule, config, seconds_per_token):
    """The widest of ``rule.widths`` whose epochs fit :data:`EPOCHS_IN_BUDGET` times into the budget.

    Args:
        rule: The :class:`WithinBudget`.
        config: The configuration with every other setting in (batch size, budget, epochs).
        seconds_per_token: ``config -> seconds`` of training per token (``rule.num_tokens`` make
            an epoch) of the model built with that configuration, timed by the caller; called
            widest first, until one fits.

    Returns:
        ``(choices, timings)``: a :class:`Choice` per key (the width and why), and
        ``{width: seconds per epoch}`` of the widths timed. No budget: the data's width, untimed.
    """
    train_config = config["train"]
    minutes = train_config.max_minutes
    if not minutes:
        return [Choice(key, rule.widths[0], rule.reason) for key in rule.keys], {}
    epochs = max(1, min(EPOCHS_IN_BUDGET, train_config.epochs))
    budget, timings = 60 * minutes, {}
    for width in rule.widths:  # widest first: the first that fits ends the timing
        seconds = seconds_per_token(with_values(config, {key: width for key in rule.keys}))
        timings[width] = seconds * rule.num_tokens * EPOCH_OVERHEAD
        if timings[width] * epochs <= budget:
            break
    fits = timings[width] * epochs <= budget  # else ``width`` is the narrowest, which did not fit either
    timed = ", ".join(f"{value} {timings[value] / 60:.3g}" for value in timings)
    reason = (f"{rule.reason} allow {rule.widths[0]}; " + (
        f"the widest whose epoch fits {epochs} times into" if fits else
        f"the narrowest: none fits {epochs} epochs into") +
        f" {minutes:g} min (minutes per epoch, timed: {timed})")
    return [Choice(key, width, reason) for key in rule.keys], timings


def with_values(config, values):
    """A copy of ``config`` with ``{"section.name": value}`` set (no checks: the values are a rule's)."""
    config = dict(config)
    for key, value in values.items():
        section, _, name = key.partition(".")
        config[section] = dataclasses.replace(config[section], **{name: value})
    return config


def dropout(key, num_tokens, steps=DROPOUT_STEPS, what="training tokens"):
    """``key`` = :data:`DROPOUT_STEPS` of ``num_tokens``: less data, more regularisation."""
    return [Choice(key, step(num_tokens, steps), f"{amount(num_tokens)} {what}")]


def batch_size(num_examples, steps=BATCH_STEPS, what="training examples"):
    """``train.batch_size`` = :data:`BATCH_STEPS` of ``num_examples``."""
    return [Choice("train.batch_size", step(num_examples, steps), f"{amount(num_examples)} {what}")]


def bucket_boundaries(lengths, key="train.bucket_boundaries"):
    """``key`` = the 5 %, 10 %, ..., 95 % and 99 % quantiles of the training lengths (each once)."""
    lengths = np.asarray(lengths, dtype="float64")
    if lengths.size == 0:
        return []
    levels = [*np.arange(5, 100, 5), 99]
    boundaries = sorted({int(math.ceil(value)) + 1 for value in np.percentile(lengths, levels)})
    return [Choice(key, boundaries, f"length quantiles of train (median {int(np.median(lengths))}, "
                                    f"99 % {int(np.percentile(lengths, 99))})")]


def schedule(num_examples, minutes=DEFAULT_MINUTES, max_epochs=MAX_EPOCHS):
    """The budget, the epochs, early stopping's patience and the weight average, by steps per epoch.

    Args:
        num_examples: Training examples (windows, sentences, pairs).
        minutes: ``train.max_minutes``.
        max_epochs: ``train.epochs``: the budget or early stopping ends training before.

    Returns:
        An :class:`AfterOthers`: the steps per epoch depend on the batch size in use.
    """
    return AfterOthers(lambda config: _schedule(num_examples, config["train"].batch_size, minutes, max_epochs))


def steps_per_epoch(num_examples, batch):
    """Batches in one epoch of ``num_examples`` (at least 1)."""
    return max(1, math.ceil(num_examples / batch))


def _schedule(num_examples, batch, minutes, max_epochs):
    steps = steps_per_epoch(num_examples, batch)
    per_epoch = f"{steps} steps per epoch"
    patience = int(min(100, max(5, math.ceil(PATIENCE_STEPS / steps))))
    choices = [Choice("train.max_minutes", minutes, "the default training budget"),
               Choice("train.epochs", max(max_epochs, 10 * patience),
                      "the budget or early stopping ends training first"),
               Choice("train.early_stopping_patience", patience,
                      f"about {PATIENCE_STEPS} steps without improvement ({per_epoch}; 5 to 100 epochs)")]
    if steps < 300:
        choices.append(Choice("train.ema_momentum", None, f"{per_epoch}: too few for a weight average"))
    else:
        momentum = min(0.999, round(1.0 - 1.0 / steps, 4))
        choices.append(Choice("train.ema_momentum", momentum, f"1 - 1/steps: {per_epoch}"))
    return choices


def recurrent_sizes(lengths, width_keys=("model.units", "model.embedding_dim"), dropout_key="model.dropout_rate",
                    length_key="train.bucket_boundaries", dropout_steps=DROPOUT_STEPS, width_steps=WIDTH_STEPS,
                    what="training tokens", rows=None):
    """The rules every recurrent template shares, from its training examples' lengths in tokens.

    Bucket boundaries by length quantiles, widths and dropout by training tokens, the batch
    size by examples, then the budget, epochs, patience and weight average by steps per epoch.

    Args:
        lengths: One length (tokens, steps) per training example.
        width_keys: The keys sized by :func:`widths`.
        dropout_key: The key set by :func:`dropout`, or None.
        length_key: The bucket boundaries' key, or None (unbucketed data).
        dropout_steps: The ``(bound, rate)`` steps of :func:`dropout`.
        width_steps: The ``(bound, width)`` steps of :func:`widths`.
        what: What ``lengths`` count, for the reasons (``training tokens``, ``training values``).
        rows: The training examples when ``lengths`` are a sample's (a prepared split): the
            token count is scaled up to them. None: ``lengths`` are every example's.
    """
    rows, num_tokens = rows or len(lengths), split_tokens(lengths, rows)
    return [*(bucket_boundaries(lengths, length_key) if length_key else []),
            *widths(width_keys, num_tokens, width_steps, what, within_budget=True),
            *(dropout(dropout_key, num_tokens, dropout_steps, what) if dropout_key else []),
            *batch_size(rows, what="training windows" if "values" in what else "training examples"),
            schedule(rows)]


def split_tokens(lengths, rows=None):
    """The tokens of a training split from its examples' ``lengths``, scaled up to ``rows`` examples
    when the lengths are a sample's (a prepared split; None: every example's)."""
    return int(np.sum(lengths) * (rows or len(lengths)) / max(len(lengths), 1))


def classifier_stack(lengths, rows=None, width_keys=("model.units", "model.embedding_dim"),
                     what="training tokens"):
    """A sequence classifier's recurrent stack, by training tokens: :func:`recurrent_sizes`'s keys to size.

    From :data:`STACK_TOKENS` training tokens, two stacked GRU layers over 64-wide embeddings, with
    dropout 0.3 and a learning rate of 0.004 (chosen on SST-2, checked on aclimdb: docs/benchmarks.md).
    Below, one layer as :func:`recurrent_sizes` sizes it.

    Args:
        lengths, rows: As in :func:`recurrent_sizes`.
        width_keys: The width keys the app would give :func:`recurrent_sizes`.
        what: What ``lengths`` count, for the reasons.

    Returns:
        ``(choices, width_keys, dropout_key)``: the stack's choices, and the keys left to
        :func:`recurrent_sizes` (the embedding is no longer a width key once stacked).
    """
    num_tokens = split_tokens(lengths, rows)
    if num_tokens < STACK_TOKENS:
        return [], width_keys, "model.dropout_rate"
    reason = f"{amount(num_tokens)} {what}: from {amount(STACK_TOKENS)}, a 2-layer GRU stack"
    return ([Choice("model.num_layers", 2, reason), Choice("model.cell", "gru", reason),
             Choice("model.embedding_dim", 64, reason), Choice("model.dropout_rate", 0.3, reason),
             Choice("train.learning_rate", 0.004, reason)],
            tuple(key for key in width_keys if key != "model.embedding_dim"), None)


def sentence_pairs(sources, targets, level_key, standardize, vocabulary_keys, width_keys,
                   dropout_key="model.dropout_rate", dropout_steps=DROPOUT_STEPS, target_reserved=4, rows=None):
    """The rules of an encoder-decoder's training pairs: words, two vocabularies, :func:`recurrent_sizes`.

    Args:
        sources, targets: The training pairs' raw strings.
        level_key: The key set to ``word`` (real sentences are read as words).
        standardize: ``{source key: mode, target key: mode}``: the in-graph standardizer's modes.
        vocabulary_keys: ``(source key, target key)`` sized by :func:`vocabulary`.
        width_keys, dropout_key, dropout_steps: As :func:`recurrent_sizes` takes them.
        target_reserved: Ids the target vocabulary keeps (padding, OOV, start, end).
        rows: The training pairs when ``sources`` and ``targets`` are a sample's (a prepared
            split); None: they are every pair.

    Returns:
        The choices; a pair's length is the longer side (the target with its start token).
    """
    modes = list(standardize.values())
    source_words, target_words = (standardized_tokens(texts, mode) for texts, mode in zip((sources, targets), modes))
    lengths = [max(len(source), len(target) + 1) for source, target in zip(source_words, target_words)]
    words = "real sentences: words, as the in-graph tokenizer splits them"
    return [Choice(level_key, "word", words), *(Choice(key, mode, words) for key, mode in standardize.items()),
            *vocabulary(vocabulary_keys[0], token_counts(source_words)),
            *vocabulary(vocabulary_keys[1], token_counts(target_words), reserved=target_reserved),
            *recurrent_sizes(lengths, width_keys, dropout_key, dropout_steps=dropout_steps, rows=rows),
            *encoder_decoder_learning_rate(rows or len(lengths))]


def encoder_decoder_learning_rate(num_examples, rate=ENCODER_DECODER_RATE, warmup=WARMUP_STEPS):
    """``train.learning_rate`` and its linear warm-up (``train.warmup_steps``) for an encoder-decoder.

    An encoder-decoder first sits at the unigram distribution (it predicts the commonest target
    words whatever the source), and a high rate from the first step can keep it there: eng->spa
    never left it in five epochs at the demo's 0.003 (batch 64), nor in two at 0.002 (batch 128),
    with no warm-up. Raised linearly over the first epoch (at most ``warmup`` steps), the rate
    cannot push the first steps' large, noisy Adam updates into that plateau
    (docs/benchmarks.md has the probes).

    Args:
        num_examples: Training pairs (the warm-up is an epoch of the batch size in use, at most ``warmup``).
        rate: The learning rate after the warm-up.
        warmup: The most warm-up steps.

    Returns:
        A :class:`Choice` and an :class:`AfterOthers` (the steps per epoch depend on the batch size).
    """
    def warm_up(config):
        steps = steps_per_epoch(num_examples, config["train"].batch_size)
        return [Choice("train.warmup_steps", min(steps, warmup),
                       f"one epoch ({steps} steps), at most {warmup}: the rate rises from 0 to {rate:g}")]
    return [Choice("train.learning_rate", rate, "after a linear warm-up (train.warmup_steps)"),
            AfterOthers(warm_up)]


def series_windows(frame, target_columns, frequency, report=None, prefix="data.", model_prefix="model."):
    """The rules of a forecaster's windows, held-out blocks, residual and ETS form, from one series.

    ``horizon`` one season (2 to 24 steps; else ``len/20``, 1 to 12 steps); ``test_size`` and
    ``validation_size`` 10 % of the series each, between 2 and 10 horizons; ``input_width``
    two seasons or two horizons, at most a third of the training block; ``residual_to``
    whichever of naive, seasonal naive and the mean of the window's seasons errs less on
    the training block (the mean only where seasonal naive beats naive: a season to
    average, not a smoothing); the ETS
    baseline's trend and seasonal form by AICc on the training block (its last 2,000 steps).

    With gaps or missing values in the series (``report``), ``missing_policy`` is ``interpolate``.

    Args:
        frame: The series (``windows.series_frame``), filled; its first target decides.
        target_columns: The targets (``[]``: the first column).
        frequency: Its pandas frequency alias; the season is the frequency's usual one.
        report: ``windows.fill_missing``'s report of reading it with interpolation, or None.
        prefix, model_prefix: The sections of the windowing and the network's keys.
    """
    from seq_templates.data import prepared_series
    from seq_templates.preprocessing import windows as windows_module

    target = windows_module.column_groups(frame, target_columns)["targets"][0]
    values = frame[target].to_numpy(dtype="float64")  # a prepared series' frame: its last steps
    steps, season = prepared_series.steps(frame), int(windows_module.season_length_for(frequency) or 1)
    horizon = season if 2 <= season <= 24 else max(1, min(12, steps // 20))
    held_out = int(max(2 * horizon, min(round(0.1 * steps), 10 * horizon)))
    train = values[:max(1, len(values) - 2 * held_out)]  # (of a prepared series, the training steps kept)
    train_steps = max(1, steps - 2 * held_out)
    width = int(max(1, min(max(2 * horizon, 2 * season), train_steps // 3)))
    why = f"{steps} steps, season {season}"
    choices = [Choice(f"{prefix}season_length", season, "the frequency's usual season"),
               Choice(f"{prefix}horizon", horizon, f"one season ({why})" if 2 <= season <= 24 else why),
               Choice(f"{prefix}test_size", held_out, f"10 % of {steps} steps, 2 to 10 horizons"),
               Choice(f"{prefix}validation_size", held_out, f"10 % of {steps} steps, 2 to 10 horizons"),
               Choice(f"{prefix}input_width", width, f"two seasons or horizons, at most a third of the "
                                                      f"{train_steps}-step training block")]
    filled = sum((report or {}).get("filled_values", {}).values())
    if filled:
        choices.append(Choice(f"{prefix}missing_policy", "interpolate",
                              f"{filled} missing values ({(report or {}).get('rows_added_for_gaps', 0)} rows "
                              "added for gaps) filled by interpolation in time"))
    errors_by_residual = _naive_errors(train, horizon, season if width >= season >= 2 else None, width)
    candidates = dict(errors_by_residual)
    if candidates.get("seasonal", np.inf) >= candidates["last_value"]:
        candidates.pop("seasonal_mean", None)  # no season to average: it would only smooth
    residual = min(candidates, key=candidates.get)
    choices.append(Choice(f"{model_prefix}residual_to", residual, "the lowest training-block MAE of " + ", ".join(
        f"{name} {error:.4g}" for name, error in errors_by_residual.items()) + (
        "; seasonal_mean only where seasonal beats last_value" if "seasonal_mean" in errors_by_residual else "")))
    trend, seasonal, aicc = _ets_form(train[-2000:], season, multiplicative=bool(np.all(train > 0)))
    choices += [Choice(f"{prefix}ets_trend", trend, f"lowest AICc on the training block ({aicc:.1f})"),
                Choice(f"{prefix}ets_seasonal", seasonal, f"lowest AICc on the training block ({aicc:.1f})")]
    windows = max(1, train_steps - width - horizon + 1)
    return choices + recurrent_sizes([width] * min(windows, 10_000), (f"{model_prefix}units",), dropout_key=None,
                                     length_key=None, what="training values (window steps)", rows=windows)


def _naive_errors(train, horizon, season, width):
    """Mean absolute error over every origin of the training block of each baseline the network
    may correct: ``last_value``, and with a ``season`` ``seasonal`` and (two or more whole seasons
    in the ``width``-step window) ``seasonal_mean``, scored from the same origins."""
    errors_by_residual = {}
    count = width // season if season else 1
    start = max((season or 1) * count, 1)
    origins = np.arange(start, len(train) - horizon + 1)
    if origins.size == 0:
        return {"last_value": 0.0}
    steps = np.arange(horizon)
    future = train[origins[:, None] + steps]
    errors_by_residual["last_value"] = float(np.mean(np.abs(future - train[origins - 1][:, None])))
    if season:
        seasonal = train[origins[:, None] - season + steps % season]
        errors_by_residual["seasonal"] = float(np.mean(np.abs(future - seasonal)))
    if season and count >= 2:
        mean = np.mean([train[origins[:, None] - back * season + steps % season] for back in range(1, count + 1)], 0)
        errors_by_residual["seasonal_mean"] = float(np.mean(np.abs(future - mean)))
    return errors_by_residual


def _ets_form(train, season, multiplicative=True):
    """``(trend, seasonal, aicc)`` of the Holt-Winters form with the lowest AICc (statsmodels).

    ``multiplicative``: whether a multiplicative season may be tried (the whole training block is
    positive; the fit sees only its last steps).
    """
    import warnings

    from statsmodels.tsa import holtwinters

    seasonals = [None]
    if season >= 2 and len(train) >= 2 * season + 2:
        seasonals += ["add", "mul"] if multiplicative and np.all(train > 0) else ["add"]
    best = (None, None, float("inf"))
    if len(train) < 4:  # too short to fit any form; the backtest's own checks explain the length
        return best
    for trend in (None, "add"):
        for seasonal in seasonals:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    fitted = holtwinters.ExponentialSmoothing(
                        train, trend=trend, damped_trend=bool(trend), seasonal=seasonal,
                        seasonal_periods=season if seasonal else None, initialization_method="estimated").fit()
                except (ValueError, IndexError, np.linalg.LinAlgError):
                    continue
            aicc = float(fitted.aicc)
            if np.isfinite(aicc) and aicc < best[2]:
                best = (trend, seasonal, aicc)
    return best
