"""Same seed, two checkouts: does a refactor move any figure? Compares the runs' test metrics and curves.

A change that should not change what the templates learn (moving code, new plumbing) is
checked by training the same commands, on the same seed, with the checkout before it and
with the one after it, then comparing ``metrics.json`` and ``history.json`` of each pair:

    git worktree add /tmp/before <commit before>
    (cd /tmp/before && python -m seq_templates.cli train ner --output-dir /tmp/before_runs/ner ...)
    python -m seq_templates.cli train ner --output-dir /tmp/after_runs/ner ...
    python benchmarks/same_seed.py --label "issue 17" --before /tmp/before_runs --after /tmp/after_runs \\
        --run "ner: train ner" ...

Each ``--run NAME: COMMAND`` names a run folder present under both ``--before`` and ``--after``
and the command that trained it (for the report). The section written to docs/benchmarks.md
gives, per run, the headline metric before and after, the largest relative difference over
every number in ``metrics.json`` and in the per-epoch validation losses (timings left out).
"""

import argparse
import json
import math
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import report  # noqa: E402

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- same-seed:begin -->", "<!-- same-seed:end -->"
HEADLINES = (("accuracy", ("model", "accuracy")), ("entity F1", ("model", "micro", "f1")),
             ("BLEU", ("model", "bleu")), ("MAE", ("model", "mae")), ("loss", ("model", "loss")))
TIMING_WORDS = ("seconds", "minutes", "time", "per_second")


def numbers(value, where=""):
    """``{path: number}`` of every number in a JSON value."""
    if isinstance(value, dict):
        return {key: number for name, item in value.items() for key, number in numbers(item, f"{where}.{name}").items()}
    if isinstance(value, list):
        return {key: number for index, item in enumerate(value)
                for key, number in numbers(item, f"{where}[{index}]").items()}
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return {}
    return {where: float(value)}


def largest_difference(before, after):
    """The largest relative difference over shared numbers, and the paths present in only one."""
    left, right = ({key: value for key, value in numbers(side).items()
                    if not any(word in key for word in TIMING_WORDS)} for side in (before, after))
    largest = 0.0
    for key in set(left) & set(right):
        a, b = left[key], right[key]
        if math.isnan(a) and math.isnan(b):
            continue
        largest = max(largest, abs(a - b) / max(abs(a), abs(b), 1e-12))
    return largest, sorted(set(left) ^ set(right))


def headline(metrics):
    for name, path in HEADLINES:
        value = metrics
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (int, float)):
            return name, float(value)
    return "-", float("nan")


def compare(before_folder, after_folder):
    read = lambda folder, name: json.loads((folder / name).read_text(encoding="utf-8"))  # noqa: E731
    before_metrics, after_metrics = read(before_folder, "metrics.json"), read(after_folder, "metrics.json")
    before_history, after_history = read(before_folder, "history.json"), read(after_folder, "history.json")
    metric_difference, unmatched = largest_difference(before_metrics, after_metrics)
    curve_difference, _ = largest_difference(before_history.get("val_loss", []), after_history.get("val_loss", []))
    name, before_value = headline(before_metrics)
    _, after_value = headline(after_metrics)
    return {"metric": name, "before": before_value, "after": after_value, "metrics": metric_difference,
            "val_loss": curve_difference, "epochs": (len(before_history.get("loss", [])),
                                                     len(after_history.get("loss", []))),
            "unmatched": unmatched}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="what changed, for the section's title")
    parser.add_argument("--before", required=True, type=pathlib.Path)
    parser.add_argument("--after", required=True, type=pathlib.Path)
    parser.add_argument("--run", action="append", required=True, metavar="NAME: COMMAND")
    parser.add_argument("--note", default="")
    parser.add_argument("--output", default=str(REPOSITORY / "docs" / "benchmarks.md"))
    arguments = parser.parse_args(argv)
    lines = [BEGIN, f"## Same seed before and after: {arguments.label}", "",
             "Each run trained twice with the same command and seed, by the checkout before the change and by "
             "the one after it; `benchmarks/same_seed.py` compares every number of `metrics.json` (timings left "
             "out) and the per-epoch validation loss. " + arguments.note, "",
             "| run | command | metric | before | after | largest relative difference: metrics / val_loss | "
             "epochs |", "|---|---|---|---|---|---|---|"]
    for item in arguments.run:
        name, _, command = item.partition(":")
        result = compare(arguments.before / name.strip(), arguments.after / name.strip())
        lines.append(f"| {name.strip()} | `{command.strip()}` | {result['metric']} | {result['before']:.4f} | "
                     f"{result['after']:.4f} | {result['metrics']:.1e} / {result['val_loss']:.1e} | "
                     f"{result['epochs'][0]} / {result['epochs'][1]} |")
        print(lines[-1])
        if result["unmatched"]:
            print(f"  {name.strip()}: numbers in only one of the two: {', '.join(result['unmatched'][:10])}")
    lines += ["", END]
    report.write_section(arguments.output, "\n".join(lines), BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
