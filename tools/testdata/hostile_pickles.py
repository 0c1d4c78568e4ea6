#!/usr/bin/env python3
"""Writes testdata/hostile/: PyTorch checkpoints whose pickles run code, and proves that each one does.

Every file is written by real torch.save (zip, and legacy with _use_new_zipfile_serialization=False) through a pure
Python pickler that writes the payload's opcodes where a `Payload` object sits. A payload creates a marker file
(a relative name, unique per fixture) when Python unpickles it: os.system("touch M"), eval/exec of
"open('M', 'w').close()", getattr(getattr(torch.serialization, 'os'), 'system')("touch M"), or __import__('os')
followed by getattr(os, 'system')("touch M"). The globals are named by GLOBAL, STACK_GLOBAL or INST and called by
REDUCE, INST, OBJ, NEWOBJ or NEWOBJ_EX; a payload sits alone in a dict, or 24 levels down in a state_dict between
real tensors (see `deep`). Python 2 spellings (__builtin__, commands) and dotted attribute chains (protocol 4) are
included, and pathlib.Path.touch (a method of a class bfq reads as data elsewhere).

The proof: one subprocess runs torch.load(path, weights_only=False) on every file, each in its own fresh current
directory, and this script fails unless exactly the fixture's marker appeared there (and the load succeeded).
Two control files have the deep structure with a harmless string where the payload would be; nothing may appear.

manifest.json lists per hostile file: `forbidden`, the global (module.name as written) bfq must refuse it for; `part` and `offset`, where bfq reports it (data.pkl offset for zip
files, absolute file offset for legacy ones: the GLOBAL, STACK_GLOBAL or INST opcode that names it); `marker`; and
how it was made. Per control file: `tensors` (names in pickle order) and `metadata` (the harmless string, at the
payload's path).
Run from the repository root: python3 tools/testdata/hostile_pickles.py
"""
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import types
import zipfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_cases import flatten  # noqa: E402  (the reader's naming rules)

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata", "hostile"))
DEPTH = 24


# MARK: - Payload programs: globals, calls, memo slots

class G:
    """A global, module and (possibly dotted) name as the pickle writes them."""
    def __init__(self, module, name):
        self.module, self.name = module, name

    @property
    def qualified(self):
        return f"{self.module}.{self.name}"


class Call:
    def __init__(self, f, *args):
        self.f, self.args = f, args


class Memo:
    """Evaluates `expr` and keeps it in a memo slot (nothing is left on the stack); `Get(memo)` reads it back."""
    def __init__(self, expr):
        self.expr, self.slot = expr, None


class Get:
    def __init__(self, memo):
        self.memo = memo


class Program:
    def __init__(self, target, expr, first=()):
        self.target, self.expr, self.first = target, expr, list(first)


def program(kind, marker, builtins="builtins"):
    """The payload creating `marker`; `target` is the global it names first, the one bfq must refuse."""
    touch = f"touch {marker}"
    code = f"open({marker!r}, 'w').close()"
    if kind in ("eval", "exec"):
        g = G(builtins, kind)
        return Program(g, Call(g, code))
    if kind == "os_system":
        g = G("os", "system")
        return Program(g, Call(g, touch))
    if kind == "commands_getoutput":  # Python 2's commands module; Python 3 maps it to subprocess
        g = G("commands", "getoutput")
        return Program(g, Call(g, touch))
    if kind == "getattr":
        g = G(builtins, "getattr")
        return Program(g, Call(Call(g, Call(g, G("torch", "serialization"), "os"), "system"), touch))
    if kind == "import":
        g = G(builtins, "__import__")
        os_module = Memo(Call(g, "os"))
        return Program(g, Call(Call(G(builtins, "getattr"), Get(os_module), "system"), touch), first=[os_module])
    if kind == "chain_getattr":  # codecs imports builtins: codecs.builtins.getattr is getattr
        g = G("codecs", "builtins.getattr")
        return Program(g, Call(Call(g, Call(g, G("torch", "serialization"), "os"), "system"), touch))
    if kind == "chain_eval":
        g = G("codecs", "builtins.eval")
        return Program(g, Call(g, code))
    if kind == "chain_os_system":  # torch.serialization imports os
        g = G("torch", "serialization.os.system")
        return Program(g, Call(g, touch))
    if kind == "pathlib_touch":  # pathlib.Path.touch(pathlib.Path(marker))
        g = G("pathlib", "Path.touch")
        return Program(g, Call(g, Call(G("pathlib", "Path"), marker)))
    raise ValueError(kind)


class Style:
    """How globals are named (GLOBAL or STACK_GLOBAL; INST names its own) and how the payload calls them.

    REDUCE and OBJ make every call; INST calls what a global names and REDUCE calls computed callables (INST cannot);
    NEWOBJ and NEWOBJ_EX build map.__new__(map, f, [arg]...) for the payload's last call and list() runs it (NEWOBJ
    only constructs types); their f is memoized first so that the target is still named before builtins.map.
    """
    def __init__(self, name, protocol, naming, calling):
        self.name, self.protocol, self.naming, self.calling = name, protocol, naming, calling


STYLES = {s.name: s for s in [
    Style("global_p0", 0, "GLOBAL", "REDUCE"),
    Style("global", 2, "GLOBAL", "REDUCE"),
    Style("stack_global", 4, "STACK_GLOBAL", "REDUCE"),
    Style("inst", 0, "GLOBAL", "INST"),
    Style("obj", 1, "GLOBAL", "OBJ"),
    Style("newobj", 2, "GLOBAL", "NEWOBJ"),
    Style("newobj_ex", 4, "STACK_GLOBAL", "NEWOBJ_EX"),
]}


class Emitter:
    """Writes a program's opcodes: text operands in a protocol 0 pickle, binary ones otherwise."""
    def __init__(self, style, protocol, memo_base):
        self.style, self.text, self.memo_base, self.next_slot = style, protocol == 0, memo_base, memo_base
        self.out = bytearray()
        self.target_offset = None
        self.target = None

    def emit(self, prog):
        self.target = prog.target
        for memo in prog.first:
            self.memoize(memo)
        self.expr(prog.expr, last=True)
        return bytes(self.out)

    @property
    def slots_used(self):
        return self.next_slot - self.memo_base

    def string(self, s):
        raw = s.encode()
        assert b"\n" not in raw and b"\\" not in raw
        self.out += b"V" + raw + b"\n" if self.text else b"X" + struct.pack("<I", len(raw)) + raw

    def put(self, slot):
        if self.text:
            self.out += b"p%d\n" % slot
        else:
            self.out += b"q" + bytes([slot]) if slot < 256 else b"r" + struct.pack("<I", slot)

    def get(self, slot):
        if self.text:
            self.out += b"g%d\n" % slot
        else:
            self.out += b"h" + bytes([slot]) if slot < 256 else b"j" + struct.pack("<I", slot)

    def memoize(self, memo):
        self.expr(memo.expr)
        memo.slot = self.next_slot
        self.next_slot += 1
        self.put(memo.slot)
        self.out += b"0"  # POP

    def named(self, g):
        """Called just before the opcode that resolves `g`: records where the target is first resolved."""
        if g.qualified == self.target.qualified and self.target_offset is None:
            self.target_offset = len(self.out)

    def glob(self, g):
        if self.style.naming == "STACK_GLOBAL":
            self.string(g.module)
            self.string(g.name)
            self.named(g)
            self.out += b"\x93"
        else:
            self.named(g)
            self.out += b"c" + g.module.encode() + b"\n" + g.name.encode() + b"\n"

    def expr(self, e, last=False):
        if isinstance(e, str):
            self.string(e)
        elif isinstance(e, G):
            self.glob(e)
        elif isinstance(e, Get):
            self.get(e.memo.slot)
        elif isinstance(e, Call):
            self.call(e, last)
        else:
            raise TypeError(e)

    def call(self, c, last):
        calling = self.style.calling
        if calling in ("NEWOBJ", "NEWOBJ_EX") and last:
            f = Memo(c.f)
            self.memoize(f)
            self.glob(G("builtins", "list"))
            self.glob(G("builtins", "map"))
            self.out += b"("
            self.get(f.slot)
            for a in c.args:
                self.out += b"("
                self.expr(a)
                self.out += b"l"  # LIST
            self.out += b"t"  # TUPLE
            self.out += b"}\x92" if calling == "NEWOBJ_EX" else b"\x81"  # EMPTY_DICT NEWOBJ_EX, or NEWOBJ
            self.out += b"\x85R"  # TUPLE1 REDUCE: list(map object)
        elif calling == "INST" and isinstance(c.f, G):
            self.out += b"("
            for a in c.args:
                self.expr(a)
            self.named(c.f)
            self.out += b"i" + c.f.module.encode() + b"\n" + c.f.name.encode() + b"\n"
        elif calling == "OBJ":
            self.out += b"("
            self.expr(c.f)
            for a in c.args:
                self.expr(a)
            self.out += b"o"
        else:
            self.expr(c.f)
            self.out += b"("
            for a in c.args:
                self.expr(a)
            self.out += b"tR"  # TUPLE REDUCE


# MARK: - Writing the payload inside torch.save

class Payload:
    """Stands where the payload goes; the pickler writes the program's opcodes in its place."""
    def __init__(self, prog, style):
        self.prog, self.style = prog, style
        self.bytes = self.target_offset = None
        self.taken = []  # stand-ins for the memo slots the payload used, kept alive so their ids stay unique


class HostilePickler(pickle._Pickler):
    """The pure Python pickler, writing a `Payload` as raw opcodes. The memo slots the payload uses are taken from
    the pickler's own count, so the indices the pickler writes afterwards (PUT, or MEMOIZE's implicit ones) agree."""
    dispatch = dict(pickle._Pickler.dispatch)

    def save_payload(self, payload):
        emitter = Emitter(payload.style, self.proto, len(self.memo))
        payload.bytes = emitter.emit(payload.prog)
        payload.target_offset = emitter.target_offset
        for _ in range(emitter.slots_used):
            holder = object()
            payload.taken.append(holder)
            self.memo[id(holder)] = len(self.memo), holder
        self.write(payload.bytes)

    dispatch[Payload] = save_payload


hostile_pickle = types.ModuleType("hostile_pickle")
hostile_pickle.Pickler = HostilePickler
hostile_pickle.dump = lambda obj, file, protocol=None: HostilePickler(file, protocol).dump(obj)


def deep(leaf):
    """A state_dict of real tensors with `leaf` DEPTH levels below "model.deep", alternately in a list after a tensor
    ([tensor, child]) and in a dict before one ({"inner": child, "after": tensor}): the pickle holds half the level
    tensors before the leaf and half after it."""
    ladder = torch.arange(2 * DEPTH, dtype=torch.float32)  # every level's tensor is a view of this one storage
    node = leaf
    for level in range(DEPTH, 0, -1):
        view = ladder[2 * level - 2: 2 * level]
        node = [view, node] if level % 2 else {"inner": node, "after": view}
    return {"model.conv.weight": torch.linspace(-1, 1, 8).reshape(4, 2, 1, 1).half(), "model.deep": node,
            "model.conv.bias": torch.tensor([0.5, -0.25, 0.125, 2.0])}


def save(name, obj, protocol, legacy):
    path = os.path.join(OUT, name + ".ckpt")
    torch.save(obj, path, pickle_module=hostile_pickle, pickle_protocol=protocol,
               _use_new_zipfile_serialization=not legacy)
    return path


def pickle_bytes(path, name, legacy):
    """The bytes bfq's offsets count in: the whole file (legacy) or the zip's data.pkl record."""
    if legacy:
        with open(path, "rb") as f:
            return f.read()
    with zipfile.ZipFile(path) as z:
        return z.read(f"{name}/data.pkl")


# MARK: - The set

KINDS = ["os_system", "eval", "exec", "getattr", "import"]
BARE = [(kind, style) for style in ["global", "stack_global", "inst", "obj", "newobj", "newobj_ex"] for kind in KINDS]
BARE += [("os_system", "global_p0"), ("py2_eval", "global"), ("py2_getattr", "global"), ("py2_import", "global"),
         ("py2_eval", "inst"), ("py2_getattr", "inst"), ("commands_getoutput", "global"),
         ("chain_getattr", "stack_global"), ("chain_eval", "stack_global"), ("chain_os_system", "stack_global"),
         ("pathlib_touch", "stack_global")]
DEEP = [(kind, "global") for kind in KINDS]
DEEP += [("eval", "stack_global"), ("exec", "inst"), ("getattr", "obj"), ("import", "newobj"),
         ("os_system", "newobj_ex"), ("pathlib_touch", "stack_global")]


def hostile(kind, style, deep_structure, legacy):
    name = ("deep_" if deep_structure else "") + f"{kind}_{style.name}" + ("_legacy" if legacy else "")
    marker = f"bfq-marker-{name}"
    py2 = kind.startswith("py2_")
    payload = Payload(program(kind.removeprefix("py2_"), marker, "__builtin__" if py2 else "builtins"), style)
    # Tensors need a binary protocol (torch's persistent ids are tuples); INST then sits in a protocol 2 pickle.
    protocol = 2 if deep_structure and style.protocol == 0 else style.protocol
    path = save(name, deep(payload) if deep_structure else {"payload": payload}, protocol, legacy)
    data = pickle_bytes(path, name, legacy)
    assert data.count(payload.bytes) == 1 and payload.target_offset is not None, name
    return {"file": name + ".ckpt", "container": "legacy" if legacy else "zip", "protocol": protocol,
            "payload": kind, "naming": "INST" if style.calling == "INST" else style.naming, "calling": style.calling,
            "deep": deep_structure, "forbidden": payload.prog.target.qualified,
            "part": "file" if legacy else "data.pkl",
            "offset": data.find(payload.bytes) + payload.target_offset, "marker": marker}


def control(legacy):
    name = "deep_control" + ("_legacy" if legacy else "")
    obj = deep("harmless")
    torch.save(obj, os.path.join(OUT, name + ".ckpt"), _use_new_zipfile_serialization=not legacy)
    tensors, metadata = {}, {}
    flatten(obj, "", tensors, metadata)
    return {"file": name + ".ckpt", "container": "legacy" if legacy else "zip", "control": True, "deep": True,
            "tensors": list(tensors), "metadata": metadata}


# MARK: - The proof

WORKER = r"""
import json, os, sys, warnings
import torch
sys.path.insert(0, sys.argv[1])
from hostile_pickles import tensor_values
warnings.simplefilter("ignore")
results = {}
for path, directory in json.loads(sys.stdin.read()):
    os.chdir(directory)
    try:
        tensors, error = tensor_values(torch.load(path, weights_only=False)), None
    except Exception as e:
        tensors, error = None, f"{type(e).__name__}: {e}"
    results[path] = {"created": sorted(os.listdir(directory)), "error": error, "tensors": tensors}
print(json.dumps(results))
"""


def tensor_values(obj):
    """The tensors of a loaded checkpoint as {name: values}, named by the reader's rules."""
    tensors = {}
    flatten(obj, "", tensors, {})
    return {name: t.float().reshape(-1).tolist() for name, t in tensors.items()}


def prove(manifest):
    """torch.load(weights_only=False) of each file in its own empty current directory must create exactly its marker
    (nothing for the controls), succeed, and give the tensors the file was saved with."""
    scratch = tempfile.mkdtemp(prefix="bfq-hostile-proof-")
    try:
        jobs = []
        for index, row in enumerate(manifest):
            directory = os.path.join(scratch, str(index))
            os.mkdir(directory)
            jobs.append((os.path.join(OUT, row["file"]), directory))
        run = subprocess.run([sys.executable, "-c", WORKER, os.path.dirname(os.path.abspath(__file__))],
                             input=json.dumps(jobs), capture_output=True, text=True, cwd=scratch, check=True)
        results = json.loads(run.stdout)
        failures = []
        for row, (path, _) in zip(manifest, jobs):
            result = results[path]
            expected = [] if row.get("control") else [row["marker"]]
            if result["created"] != expected or result["error"]:
                failures.append(f"{row['file']}: created {result['created']}, expected {expected}; "
                                f"error {result['error']}")
            elif result["tensors"] != tensor_values(deep(None) if row["deep"] else {}):
                failures.append(f"{row['file']}: tensors differ from those saved")
        strays = sorted(f for f in os.listdir(scratch) + os.listdir(OUT) + os.listdir(".")
                        if f.startswith("bfq-marker-"))
        if strays:
            failures.append(f"markers outside their directories: {strays}")
        if failures:
            sys.exit("payloads that did not behave under torch.load:\n  " + "\n  ".join(failures))
    finally:
        shutil.rmtree(scratch)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith((".ckpt", ".json")):
            os.remove(os.path.join(OUT, f))
    manifest = []
    for legacy in (False, True):
        for kind, style in BARE:
            manifest.append(hostile(kind, STYLES[style], False, legacy))
        for kind, style in DEEP:
            manifest.append(hostile(kind, STYLES[style], True, legacy))
        manifest.append(control(legacy))
    prove(manifest)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(row) for row in manifest) + "\n]\n")
    sizes = [os.path.getsize(os.path.join(OUT, row["file"])) for row in manifest]
    assert max(sizes) <= 8192, max(sizes)
    print(f"wrote {len(manifest)} files ({sum(1 for r in manifest if 'marker' in r)} hostile, each proved to run "
          f"code under torch.load), {sum(sizes)} bytes (largest {max(sizes)}), to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
