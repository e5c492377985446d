#!/usr/bin/env python3
"""Trains short runs of named configurations with cff-train, evaluates each with cff-eval, and prints one
table side by side: accuracy, energy OOD AUROC per set, judge label agreement, FID and diversity per step
count, unconditional judge confidence, training time.

    tools/sweep/sweep.py --configs default,force-half [--out runs/sweep] [--train-args "..."] [--eval-args "..."]

Configurations are named in tools/sweep/configs.json (extra cff-train options each, and optionally extra
cff-eval options under "eval"). The paper-literal recipe is always a row.

    tools/sweep/sweep.py --model models/fashion-mnist-cff.cff --configs base,spacing-2 [--eval-args "..."]

With --model nothing is trained: the rows are sampler settings (tools/sweep/samplers.json, extra cff-eval
options each) applied to that one model, so levers of the sampler are compared on the same network.

A configuration whose run folder already holds a model and an evaluation made with the same options is not
trained again, and one stopped while training resumes from its last epoch checkpoint, so an
interrupted sweep continues where it stopped. Writes OUT/sweep.md and
OUT/sweep.json; each run's logs are OUT/NAME/train.log and OUT/NAME/eval.log. Exit status: 0 all rows done,
1 a run failed (its row says why), 2 bad options.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PAPER_LITERAL = "paper-literal"

DEFAULT_TRAIN_ARGS = "--limit 10000 --epochs 2 --eval-limit 2000 --samples-every 0 --progress 60"
DEFAULT_EVAL_ARGS = ("--limit 2000 --samples 500 --steps 10,20 --skip denoising "
                     "--ood uniform,gaussian,inverted,vflip --unconditional")


def fail_usage(message):
    print(f"sweep: {message}", file=sys.stderr)
    sys.exit(2)


def load_configs(path):
    try:
        with open(path) as f:
            configs = json.load(f)
    except (OSError, ValueError) as e:
        fail_usage(f"{path}: {e}")
    return {k: v for k, v in configs.items() if not k.startswith("_")}


def write_record(path, record):
    """Writes a run's record atomically (temporary file, then rename)."""
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(record, f, indent=2)
    os.replace(temporary, path)


def run_logged(command, log_path, append=False):
    """Runs command with its output in log_path; returns (exit status, seconds)."""
    start = time.monotonic()
    with open(log_path, "a" if append else "w") as log:
        log.write("$ " + " ".join(shlex.quote(c) for c in command) + "\n")
        log.flush()
        status = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
    return status, time.monotonic() - start


def last_line(path):
    try:
        with open(path) as f:
            lines = [line.strip() for line in f if line.strip()]
        return lines[-1] if lines else "(empty log)"
    except OSError:
        return "(no log)"


def run_config(name, config, args, index, total):
    folder = os.path.join(args.out, name)
    os.makedirs(folder, exist_ok=True)
    model = os.path.join(folder, "model.cff")
    report = os.path.join(folder, "eval")
    summary_path = os.path.join(report, "summary.json")
    record_path = os.path.join(folder, "sweep-run.json")
    train_command = ([os.path.join(args.build, "training", "cff-train"), "--data", args.data, "--out", folder,
                      "--export", model, "--seed", str(args.seed), "--threads", str(args.threads)]
                     + shlex.split(args.train_args) + config.get("train", []))
    eval_command = ([os.path.join(args.build, "tools", "cff-eval"), model, "--data", args.data, "--out", report,
                     "--seed", str(args.seed), "--threads", str(args.threads)]
                    + (["--judge", args.judge] if args.judge else []) + shlex.split(args.eval_args)
                    + config.get("eval", []))
    wanted = {"train": train_command, "eval": eval_command}

    record = {}
    if os.path.exists(record_path):
        with open(record_path) as f:
            record = json.load(f)
    same = record.get("commands") == wanted
    if "state" not in record and "eval_seconds" in record:
        record["state"] = "done"  # written before records had a state
    if same and record.get("state") == "done" and os.path.exists(model) and os.path.exists(summary_path):
        print(f"sweep: [{index}/{total}] {name}: already done, reusing {folder}", file=sys.stderr)
    else:
        train_seconds = record.get("train_seconds", 0.0) if same else 0.0
        if same and record.get("state") == "evaluating" and os.path.exists(model):
            print(f"sweep: [{index}/{total}] {name}: trained before, evaluating only", file=sys.stderr)
        else:
            # A run stopped part way (session end, kill) continues from its last epoch checkpoint.
            resume = same and record.get("state") == "training" and os.path.exists(os.path.join(folder, "checkpoint.pt"))
            write_record(record_path, {"commands": wanted, "state": "training", "train_seconds": train_seconds})
            print(f"sweep: [{index}/{total}] {name}: {'resuming' if resume else 'training'} "
                  f"({os.path.join(folder, 'train.log')})", file=sys.stderr)
            status, seconds = run_logged(train_command + (["--resume"] if resume else []),
                                         os.path.join(folder, "train.log"), append=resume)
            if status != 0:
                return {"name": name, "error": f"cff-train exit {status}: {last_line(os.path.join(folder, 'train.log'))}"}
            train_seconds += seconds
            write_record(record_path, {"commands": wanted, "state": "evaluating", "train_seconds": train_seconds})
        print(f"sweep: [{index}/{total}] {name}: evaluating ({os.path.join(folder, 'eval.log')})", file=sys.stderr)
        status, eval_seconds = run_logged(eval_command, os.path.join(folder, "eval.log"))
        if status != 0:
            return {"name": name, "error": f"cff-eval exit {status}: {last_line(os.path.join(folder, 'eval.log'))}"}
        record = {"commands": wanted, "state": "done", "train_seconds": train_seconds, "eval_seconds": eval_seconds}
        write_record(record_path, record)
    with open(summary_path) as f:
        summary = json.load(f)
    return {"name": name, "about": config.get("about", ""), "train_options": config.get("train", []),
            "train_seconds": record["train_seconds"], "summary": summary}


def run_setting(name, config, args, index, total):
    """Evaluates args.model with one named sampler setting (no training)."""
    folder = os.path.join(args.out, name)
    os.makedirs(folder, exist_ok=True)
    summary_path = os.path.join(folder, "eval", "summary.json")
    record_path = os.path.join(folder, "sweep-run.json")
    eval_command = ([os.path.join(args.build, "tools", "cff-eval"), args.model, "--data", args.data, "--out",
                     os.path.join(folder, "eval"), "--seed", str(args.seed), "--threads", str(args.threads)]
                    + (["--judge", args.judge] if args.judge else []) + shlex.split(args.eval_args)
                    + config.get("eval", []))
    wanted = {"eval": eval_command, "model_bytes": os.path.getsize(args.model)}
    record = {}
    if os.path.exists(record_path):
        with open(record_path) as f:
            record = json.load(f)
    if record.get("commands") == wanted and record.get("state") == "done" and os.path.exists(summary_path):
        print(f"sweep: [{index}/{total}] {name}: already done, reusing {folder}", file=sys.stderr)
    else:
        write_record(record_path, {"commands": wanted, "state": "evaluating"})
        print(f"sweep: [{index}/{total}] {name}: evaluating ({os.path.join(folder, 'eval.log')})", file=sys.stderr)
        status, eval_seconds = run_logged(eval_command, os.path.join(folder, "eval.log"))
        if status != 0:
            return {"name": name, "error": f"cff-eval exit {status}: {last_line(os.path.join(folder, 'eval.log'))}"}
        write_record(record_path, {"commands": wanted, "state": "done", "eval_seconds": eval_seconds})
    with open(summary_path) as f:
        summary = json.load(f)
    return {"name": name, "about": config.get("about", ""), "eval_options": config.get("eval", []),
            "train_seconds": None, "summary": summary}


def row_figures(row):
    """The table's figures of one evaluated configuration."""
    s = row["summary"]
    figures = {}
    if "classification" in s:
        figures["accuracy"] = s["classification"].get("accuracy")
    for item in s.get("ood", {}).get("sets", []):
        figures["auroc " + item["name"]] = item["energy"]["auroc"]
    for run in s.get("generation", {}).get("runs", []):
        label = f"{run['sampler']} {run['steps']}" if run["sampler"] != "centripetal" else f"{run['steps']} steps"
        figures["agreement " + label] = run.get("judge_agreement")
        figures["FID " + label] = run.get("fid")
        figures["diversity " + label] = run.get("diversity_min")
    for run in s.get("generation", {}).get("unconditional", []):
        figures[f"uncond. confident {run['steps']} steps"] = run.get("judge_confident")
    samples = s.get("generation", {}).get("samples")
    for run in s.get("generation", {}).get("runs", []):
        if samples and run["sampler"] == "centripetal":
            figures[f"ms per sample {run['steps']} steps"] = 1000.0 * run["seconds"] / samples
    if row["train_seconds"] is not None:
        figures["train minutes"] = row["train_seconds"] / 60.0
    return figures


def render(value, column):
    if value is None:
        return "n/a"
    if column.startswith(("accuracy", "agreement", "uncond.")):
        return f"{100 * value:.1f}%"
    if column.startswith("auroc"):
        return f"{value:.3f}"
    if column.startswith("ms per sample"):
        return f"{value:.0f}"
    if column.startswith(("FID", "diversity", "train minutes")):
        return f"{value:.2f}" if not column.startswith("train") else f"{value:.1f}"
    return str(value)


def table(rows):
    columns = []
    for row in rows:
        if "error" in row:
            continue
        for column in row["figures"]:
            if column not in columns:
                columns.append(column)
    lines = ["| configuration | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['name']} | failed: {row['error']} |")
        else:
            lines.append(f"| {row['name']} | " + " | ".join(render(row["figures"].get(c), c) for c in columns) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=None,
                        help="configuration names from --config-file, comma-separated [paper-literal,default; "
                             "with --model: every setting]")
    parser.add_argument("--config-file", default=None,
                        help=f"named configurations [{os.path.join(HERE, 'configs.json')}; with --model: "
                             f"{os.path.join(HERE, 'samplers.json')}]")
    parser.add_argument("--model", default=None, help="evaluate this model file with sampler settings instead of training")
    parser.add_argument("--out", default=os.path.join(ROOT, "runs", "sweep"), help="sweep folder [%(default)s]")
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), help="build folder with cff-train and cff-eval [%(default)s]")
    parser.add_argument("--data", default="fashion-mnist", help="dataset for training and evaluation [%(default)s]")
    parser.add_argument("--judge", default=os.path.join(ROOT, "models", "fashion-mnist-judge.cff"),
                        help="separately trained classifier for label agreement and FID ('' = none) [%(default)s]")
    parser.add_argument("--train-args", default=DEFAULT_TRAIN_ARGS, help="cff-train options shared by every run [%(default)s]")
    parser.add_argument("--eval-args", default=DEFAULT_EVAL_ARGS, help="cff-eval options for every run [%(default)s]")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads per run (0 = all cores) [%(default)s]")
    parser.add_argument("--seed", type=int, default=0, help="seed of every run [%(default)s]")
    parser.add_argument("--list", action="store_true", help="list the configurations and exit")
    args = parser.parse_args()

    key = "eval" if args.model else "train"
    if args.config_file is None:
        args.config_file = os.path.join(HERE, "samplers.json" if args.model else "configs.json")
    configs = load_configs(args.config_file)
    if args.list:
        for name, config in configs.items():
            print(f"{name:16s} {' '.join(config.get(key, [])) or '(defaults)':32s} {config.get('about', '')}")
        return 0
    if args.configs is None:
        args.configs = ",".join(configs) if args.model else PAPER_LITERAL + ",default"
    names = [n for n in args.configs.split(",") if n]
    unknown = [n for n in names if n not in configs]
    if unknown:
        fail_usage(f"unknown configuration(s) {', '.join(unknown)}; known: {', '.join(configs)}")
    if args.model and not os.path.isfile(args.model):
        fail_usage(f"--model {args.model}: file not found")
    if not args.model and PAPER_LITERAL not in names:
        names.insert(0, PAPER_LITERAL)  # the recipe every other row is compared with
    for tool in (os.path.join(args.build, "training", "cff-train"), os.path.join(args.build, "tools", "cff-eval")):
        if not os.access(tool, os.X_OK):
            fail_usage(f"{tool} not found: build first (meson setup {args.build} && ninja -C {args.build})")
    if args.judge and not os.path.exists(args.judge):
        fail_usage(f"--judge {args.judge}: file not found")
    os.makedirs(args.out, exist_ok=True)

    rows = []
    for index, name in enumerate(names, 1):
        run = run_setting if args.model else run_config
        row = run(name, configs[name], args, index, len(names))
        if "error" not in row:
            row["figures"] = row_figures(row)
        else:
            print(f"sweep: {name}: {row['error']}", file=sys.stderr)
        rows.append(row)

    text = table(rows)
    shared = (f"Model `{args.model}`, no training" if args.model
              else f"Shared cff-train options: `{args.train_args}` (seed {args.seed})")
    header = (f"# Sweep\n\n{shared}; cff-eval options: "
              f"`{args.eval_args}`; judge `{args.judge or 'none'}`. Accuracy and AUROC (energy score) on the "
              "evaluated test images; agreement = judge agrees with the requested label; diversity = lowest class "
              "ratio of sample spread to real spread; uncond. confident = unconditional samples the judge "
              "classifies with max-softmax >= 0.9.\n\n")
    about = "\n".join(f"- **{r['name']}**: {r.get('about', '')} "
                      f"(`{' '.join(r.get('eval_options' if args.model else 'train_options', [])) or 'defaults'}`)"
                      for r in rows if "error" not in r)
    with open(os.path.join(args.out, "sweep.md.tmp"), "w") as f:
        f.write(header + text + "\n\n" + about + "\n")
    os.replace(os.path.join(args.out, "sweep.md.tmp"), os.path.join(args.out, "sweep.md"))
    with open(os.path.join(args.out, "sweep.json.tmp"), "w") as f:
        json.dump([{k: v for k, v in r.items() if k != "summary"} for r in rows], f, indent=2)
    os.replace(os.path.join(args.out, "sweep.json.tmp"), os.path.join(args.out, "sweep.json"))
    print(text)
    print(f"sweep: table in {os.path.join(args.out, 'sweep.md')}", file=sys.stderr)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
