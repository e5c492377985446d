#!/usr/bin/env python3
"""Markdown tables of every OOD score per set from cff-eval summaries, one table per model.

usage: ood_table.py "TITLE=PATH/summary.json" [...]

Each table has one row per score the model carries (AUROC / FPR at 95% TPR per set, then the worst AUROC),
headed by the model's accuracy, its recommended score and the share of in-distribution test images it flags.
"""
import json
import sys


def table(title, path):
    with open(path) as f:
        s = json.load(f)
    o = s["ood"]
    acc = s.get("classification", {}).get("accuracy")
    images = o["in_distribution"]["images"]
    flagged = o["in_distribution"].get("flagged_at_threshold")
    head = f"\n### {title}\n\n"
    head += f"accuracy {100 * acc:.2f}% " if acc is not None else ""
    head += f"({images} test images), recommended `{o['threshold_score']}`"
    head += f", in-distribution flagged {100 * flagged:.2f}%\n" if flagged is not None else "\n"
    lines = [head, "| score | " + " | ".join(r["name"] for r in o["sets"]) + " | worst AUROC |",
             "|---|" + "---|" * (len(o["sets"]) + 1)]
    for score in o["scores"]:
        cells = [f"{r[score]['auroc']:.3f} / {r[score]['fpr95']:.2f}" for r in o["sets"]]
        worst = min(r[score]["auroc"] for r in o["sets"])
        lines.append(f"| {score} | " + " | ".join(cells) + f" | {worst:.3f} |")
    return "\n".join(lines)


def main():
    if len(sys.argv) < 2 or any("=" not in a for a in sys.argv[1:]):
        sys.exit(__doc__.strip().split("\n\n")[1])
    for arg in sys.argv[1:]:
        title, path = arg.split("=", 1)
        try:
            print(table(title, path))
        except (OSError, KeyError, ValueError) as e:
            sys.exit(f"ood_table.py: {path}: {e}")


if __name__ == "__main__":
    main()
