#!/usr/bin/env python3
"""Regenerates the committed fixtures by running the scripts in tools/testdata/, in dependency order.

    python3 tools/make_testdata.py --convert-script PATH      # every script
    python3 tools/make_testdata.py unet_forward time_features # only these (named without extension)
    python3 tools/make_testdata.py --list                     # the scripts, in the order they run

PATH is diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py (not in the pip package; see
testdata/unet/README.md for the commit used). It is passed as `--convert-script PATH` to the scripts that take it
(unet_naming, unet) and required only when one of them runs. Python scripts run with this interpreter, shell
scripts with bash, all from the repository root; the first failure stops the run with its exit status.

Order: unet_naming writes the name maps time_features reads; unet writes the tiny UNet that time_features and
unet_forward evaluate; safetensors_cases writes the dtypes file bfq_cases (which builds bfq) converts.
A script in tools/testdata/ that is missing from SCRIPTS below is an error, so new scripts get a place in the order.
"""
import argparse
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS_DIR = ROOT / "tools" / "testdata"
# (script, takes --convert-script), in the order they must run.
SCRIPTS = [
    ("unet_naming.py", True),
    ("unet.py", True),
    ("time_features.py", False),
    ("unet_forward.py", False),
    ("safetensors_cases.py", False),
    ("bfq_cases.sh", False),
    ("pytorch_cases.py", False),
    ("hostile_pickles.py", False),
    ("quantizer_cases.py", False),
]


def command(script, convert_script):
    path = SCRIPTS_DIR / script
    runner = ["bash"] if script.endswith(".sh") else [sys.executable]
    extra = ["--convert-script", str(pathlib.Path(convert_script).resolve())] if convert_script else []
    return runner + [str(path)] + extra


def main():
    parser = argparse.ArgumentParser(description="Regenerate fixtures with the scripts in tools/testdata/.")
    parser.add_argument("scripts", nargs="*", help="script names without extension (default: all)")
    parser.add_argument("--convert-script", help="diffusers' convert_diffusers_to_original_stable_diffusion.py")
    parser.add_argument("--list", action="store_true", help="print the scripts in run order and exit")
    args = parser.parse_args()

    known = {script for script, _ in SCRIPTS}
    present = {p.name for p in SCRIPTS_DIR.iterdir() if p.suffix in (".py", ".sh")}
    if present - known:
        parser.error(f"tools/testdata/ scripts missing from SCRIPTS in {pathlib.Path(__file__).name}: "
                     f"{', '.join(sorted(present - known))}")
    if args.list:
        print("\n".join(f"{script}{'  (--convert-script)' if convert else ''}" for script, convert in SCRIPTS))
        return
    stems = {script.rsplit(".", 1)[0]: script for script in known}
    unknown = [name for name in args.scripts if name not in stems]
    if unknown:
        parser.error(f"unknown script(s): {', '.join(unknown)}; known: {', '.join(sorted(stems))}")
    chosen = [(s, c) for s, c in SCRIPTS if not args.scripts or s.rsplit(".", 1)[0] in args.scripts]
    needing = [s for s, c in chosen if c]
    if needing and not args.convert_script:
        parser.error(f"--convert-script is required by {', '.join(needing)}")
    if args.convert_script and not pathlib.Path(args.convert_script).is_file():
        parser.error(f"--convert-script: no such file: {args.convert_script}")

    for script, convert in chosen:
        print(f"== {script}", flush=True)
        status = subprocess.run(command(script, args.convert_script if convert else None), cwd=ROOT).returncode
        if status:
            print(f"{script} failed with exit status {status}", file=sys.stderr)
            sys.exit(status)


if __name__ == "__main__":
    main()
