#!/usr/bin/env python3
"""Regenerates the committed fixtures by running the scripts in tools/testdata/, in dependency order.

    python3 tools/make_testdata.py --convert-script PATH --sdxl-convert-script XLPATH --sd-cli SDCLI   # every script
    python3 tools/make_testdata.py unet_forward time_features # only these (named without extension)
    python3 tools/make_testdata.py --list                     # the scripts, in the order they run

PATH is diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py and XLPATH its
scripts/convert_diffusers_to_original_sdxl.py (neither is in the pip package; see testdata/unet/README.md and
testdata/sdxl/README.md for the commit used). PATH is passed as `--convert-script PATH` to the SD scripts that take
it (unet_naming, unet), XLPATH as `--convert-script XLPATH` to sdxl_naming; each is required only when a script
that takes it runs. SDCLI is stable-diffusion.cpp's sd-cli built from source (testdata/gguf/README.md), passed as
`--sd-cli SDCLI` to gguf_cases. Python scripts run with this interpreter, shell scripts with bash, all from the repository
root; the first failure stops the run with its exit status.

Order: unet_naming writes the name maps time_features reads; unet writes the tiny UNet that time_features and
unet_forward evaluate; sdxl_naming writes the SDXL name maps sdxl_unet reads; safetensors_cases writes the dtypes
file bfq_cases (which builds bfq) converts.
A script in tools/testdata/ that is missing from SCRIPTS below is an error, so new scripts get a place in the order.
"""
import argparse
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS_DIR = ROOT / "tools" / "testdata"
# (script, the option of this tool whose path it gets as --convert-script, or None), in the order they must run.
SD, SDXL, SDCLI = "--convert-script", "--sdxl-convert-script", "--sd-cli"
SCRIPTS = [
    ("unet_naming.py", SD),
    ("unet.py", SD),
    ("time_features.py", None),
    ("unet_forward.py", None),
    ("sdxl_naming.py", SDXL),
    ("sdxl_unet.py", None),
    ("folders.py", None),
    ("diffusers_configs.py", None),
    ("safetensors_cases.py", None),
    ("bfq_cases.sh", None),
    ("pytorch_cases.py", None),
    ("hostile_pickles.py", None),
    ("quantizer_cases.py", None),
    ("oversized_cases.py", None),
    ("gguf_cases.py", SDCLI),
]


def command(script, option, path_given):
    path = SCRIPTS_DIR / script
    runner = ["bash"] if script.endswith(".sh") else [sys.executable]
    flag = "--sd-cli" if option == SDCLI else "--convert-script"
    extra = [flag, str(pathlib.Path(path_given).resolve())] if path_given else []
    return runner + [str(path)] + extra


def main():
    parser = argparse.ArgumentParser(description="Regenerate fixtures with the scripts in tools/testdata/.")
    parser.add_argument("scripts", nargs="*", help="script names without extension (default: all)")
    parser.add_argument(SD, help="diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py")
    parser.add_argument(SDXL, help="diffusers' scripts/convert_diffusers_to_original_sdxl.py")
    parser.add_argument(SDCLI, help="stable-diffusion.cpp's sd-cli, built from source")
    parser.add_argument("--list", action="store_true", help="print the scripts in run order and exit")
    args = parser.parse_args()

    known = {script for script, _ in SCRIPTS}
    present = {p.name for p in SCRIPTS_DIR.iterdir() if p.suffix in (".py", ".sh")}
    if present - known:
        parser.error(f"tools/testdata/ scripts missing from SCRIPTS in {pathlib.Path(__file__).name}: "
                     f"{', '.join(sorted(present - known))}")
    if args.list:
        note = {SD: f"  ({SD})", SDXL: f"  ({SDXL}, passed as --convert-script)", SDCLI: f"  ({SDCLI})", None: ""}
        print("\n".join(script + note[option] for script, option in SCRIPTS))
        return
    stems = {script.rsplit(".", 1)[0]: script for script in known}
    unknown = [name for name in args.scripts if name not in stems]
    if unknown:
        parser.error(f"unknown script(s): {', '.join(unknown)}; known: {', '.join(sorted(stems))}")
    chosen = [(s, o) for s, o in SCRIPTS if not args.scripts or s.rsplit(".", 1)[0] in args.scripts]
    paths = {SD: args.convert_script, SDXL: args.sdxl_convert_script, SDCLI: args.sd_cli}
    for option, path in paths.items():
        needing = [s for s, o in chosen if o == option]
        if needing and not path:
            parser.error(f"{option} is required by {', '.join(needing)}")
        if path and not pathlib.Path(path).is_file():
            parser.error(f"{option}: no such file: {path}")

    for script, option in chosen:
        print(f"== {script}", flush=True)
        status = subprocess.run(command(script, option, paths[option] if option else None), cwd=ROOT).returncode
        if status:
            print(f"{script} failed with exit status {status}", file=sys.stderr)
            sys.exit(status)


if __name__ == "__main__":
    main()
