/// A global (module + qualified name) a pickle refers to, classified once.
///
/// Nothing is ever imported or called: known torch globals are modelled, dangerous ones refuse the file,
/// and everything else becomes an opaque placeholder with a warning.
struct PickleGlobal {
    enum Kind: Equatable {
        case orderedDict, builtinDict, builtinList, builtinTuple, builtinSet, builtinBytearray
        case rebuildTensorV2, rebuildTensorV3, rebuildParameter, rebuildParameterWithState, rebuildFromTypeV2
        case storageClass(TorchDType), untypedStorage, dtype(TorchDType)
        case torchSize, torchDevice, codecsEncode, tensorClass
        /// A torch rebuild function bfq does not model (quantized, sparse, meta, nested tensors, ...).
        case unsupportedTensor
        /// Not modelled: whatever it builds is an opaque placeholder.
        case unknown
    }

    let module: String
    let name: String
    let kind: Kind
    var qualifiedName: String { "\(module).\(name)" }

    /// Classifies `module.name` as Python 3 resolves it (Python 2 names mapped, see `python3Name`); returns the reason
    /// when the global is forbidden.
    static func classify(module: String, name: String) -> Result<Kind, ForbiddenGlobal> {
        let mapped = python3Name(module: module, name: name)
        for (m, n) in [(module, name), mapped] {
            guard let (resolved, reason) = forbidden(module: m, name: n) else { continue }
            let shown = resolved == "\(module).\(name)" ? reason : "resolves to '\(resolved)', which \(reason)"
            return .failure(ForbiddenGlobal(reason: shown))
        }
        if let kind = known["\(mapped.module).\(mapped.name)"] { return .success(kind) }
        if ["torch._utils", "torch._tensor"].contains(mapped.module), mapped.name.hasPrefix("_rebuild_") {
            return .success(.unsupportedTensor)
        }
        return .success(.unknown)
    }

    struct ForbiddenGlobal: Error { let reason: String }

    // MARK: - Known globals

    /// Element types by torch dtype name, with sizes (also for types bfq cannot convert).
    static let dtypes: [String: (DType?, Int)] = [
        "float64": (.f64, 8), "double": (.f64, 8), "float32": (.f32, 4), "float": (.f32, 4),
        "float16": (.f16, 2), "half": (.f16, 2), "bfloat16": (.bf16, 2),
        "int64": (.i64, 8), "long": (.i64, 8), "int32": (.i32, 4), "int": (.i32, 4),
        "int16": (.i16, 2), "short": (.i16, 2), "int8": (.i8, 1), "uint8": (.u8, 1), "bool": (.bool, 1),
        "float8_e4m3fn": (.f8e4m3, 1), "float8_e5m2": (.f8e5m2, 1),
        "float8_e4m3fnuz": (nil, 1), "float8_e5m2fnuz": (nil, 1), "float8_e8m0fnu": (nil, 1),
        "uint16": (nil, 2), "uint32": (nil, 4), "uint64": (nil, 8),
        "complex32": (nil, 4), "complex64": (nil, 8), "complex128": (nil, 16), "cfloat": (nil, 8), "cdouble": (nil, 16),
        "qint8": (nil, 1), "quint8": (nil, 1), "qint32": (nil, 4), "quint4x2": (nil, 1), "quint2x4": (nil, 1),
    ]

    static let storageClasses: [String: String] = [
        "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
        "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
        "ByteStorage": "uint8", "BoolStorage": "bool", "ComplexFloatStorage": "complex64",
        "ComplexDoubleStorage": "complex128", "QInt8Storage": "qint8", "QUInt8Storage": "quint8",
        "QInt32Storage": "qint32", "QUInt4x2Storage": "quint4x2", "QUInt2x4Storage": "quint2x4",
    ]

    /// What a torch rebuild function bfq does not model builds, for messages.
    var unsupportedTensorKind: String {
        let kinds = [
            "_rebuild_qtensor": "quantized tensors", "_rebuild_sparse_tensor": "sparse tensors",
            "_rebuild_sparse_csr_tensor": "sparse CSR tensors", "_rebuild_meta_tensor_no_storage": "meta tensors",
            "_rebuild_nested_tensor": "nested tensors", "_rebuild_wrapper_subclass": "tensor subclasses",
            "_rebuild_device_tensor_from_numpy": "device tensors", "_rebuild_device_tensor_from_cpu_tensor": "device tensors",
            "_rebuild_xla_tensor": "XLA tensors", "_rebuild_mps_tensor": "MPS tensors", "_rebuild_tensor": "version 1 tensors",
        ]
        return "\(kinds[name] ?? "tensors") (\(qualifiedName))"
    }

    static func torchDType(_ name: String, shown: String) -> TorchDType? {
        guard let (dtype, size) = dtypes[name] else { return nil }
        return TorchDType(name: shown, dtype: dtype, elementSize: size)
    }

    private static let known: [String: Kind] = {
        var table: [String: Kind] = [
            "collections.OrderedDict": .orderedDict,
            "builtins.dict": .builtinDict, "builtins.list": .builtinList, "builtins.tuple": .builtinTuple,
            "builtins.set": .builtinSet, "builtins.frozenset": .builtinSet, "builtins.bytearray": .builtinBytearray,
            "torch._utils._rebuild_tensor_v2": .rebuildTensorV2,
            "torch._utils._rebuild_tensor_v3": .rebuildTensorV3,
            "torch._utils._rebuild_parameter": .rebuildParameter,
            "torch._utils._rebuild_parameter_with_state": .rebuildParameterWithState,
            "torch._tensor._rebuild_from_type_v2": .rebuildFromTypeV2, "torch._tensor._rebuild_from_type": .rebuildFromTypeV2,
            "torch.storage.UntypedStorage": .untypedStorage, "torch.UntypedStorage": .untypedStorage,
            "torch.Size": .torchSize, "torch.device": .torchDevice, "_codecs.encode": .codecsEncode,
            "torch.Tensor": .tensorClass, "torch._tensor.Tensor": .tensorClass,
            "torch.nn.parameter.Parameter": .tensorClass, "torch.nn.Parameter": .tensorClass,
        ]
        for (storage, dtypeName) in storageClasses {
            table["torch.\(storage)"] = .storageClass(torchDType(dtypeName, shown: "torch.\(storage)")!)
        }
        for name in dtypes.keys { table["torch.\(name)"] = .dtype(torchDType(name, shown: "torch.\(name)")!) }
        return table
    }()

    // MARK: - Forbidden globals
    // Modules follow the lists of fickling (`UNSAFE_IMPORTS`, `UnsafeImportsML`) and picklescan (`_unsafe_globals`).
    //
    // Python resolves the dotted name by attribute access from the module, so `torch.serialization.pickle.loads` is
    // `pickle.loads` and `posixpath.os.system` is `os.system`: every suffix of the full dotted path is checked.

    private static let execute = "can execute code"
    private static let process = "can run commands or control processes"
    private static let network = "can open network connections"
    private static let files = "can read or write files"
    private static let imports = "can import or inspect arbitrary modules"
    private static let loads = "can load another pickle"
    private static let native = "can call native code or touch raw memory"

    /// Dotted paths refused with everything under them; one-component entries are whole top-level modules.
    private static let forbiddenPaths: [String: String] = {
        var table: [String: String] = [:]
        for m in ["os", "posix", "nt", "subprocess", "pty", "commands", "_posixsubprocess", "multiprocessing",
                  "_multiprocessing", "pexpect", "pipes", "platform", "uuid", "_osx_support", "_aix_support", "signal",
                  "_signal", "threading", "_thread", "atexit", "winreg", "_winreg", "torch.utils.collect_env"] { table[m] = process }
        for m in ["code", "codeop", "runpy", "marshal", "types", "compile", "exec", "eval", "doctest", "_interpreters",
                  "_xxsubinterpreters", "cProfile", "profile", "pdb", "bdb", "timeit", "trace", "idlelib", "lib2to3",
                  "compileall", "py_compile", "torch._dynamo", "torch._inductor", "torch.jit", "torch.compile", "torch.fx",
                  "torch.testing", "torch.utils.bottleneck", "torch.utils.cpp_extension", "torch._C._jit",
                  "torch._C.import_ir_module", "torch._C._import_ir_module_from_package", "torch._C._load_for_lite_interpreter",
                  "torch._C.CompilationUnit", "numpy.f2py", "numpy.distutils", "numpy.testing"] { table[m] = execute }
        for m in ["sys", "importlib", "_frozen_importlib", "_frozen_importlib_external", "_imp", "imp", "pkgutil",
                  "zipimport", "gc", "site", "unittest", "inspect", "test", "pydoc"] { table[m] = imports }
        for m in ["operator", "_operator", "functools", "_functools"] { table[m] = "can call arbitrary functions" }
        for m in ["socket", "_socket", "ssl", "httplib", "http", "urllib", "urllib2", "requests", "aiohttp", "asyncio",
                  "webbrowser", "smtplib", "imaplib", "ftplib", "poplib", "telnetlib", "nntplib", "socketserver", "xmlrpc",
                  "select", "selectors", "torch.hub", "torch.distributed", "torch._C._distributed"] { table[m] = network }
        for m in ["ctypes", "_ctypes", "mmap", "numpy.ctypeslib"] { table[m] = native }
        for m in ["pickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "torch.load", "torch.serialization.load",
                  "torch.serialization._load", "torch.serialization._legacy_load", "torch.storage._load_from_bytes",
                  "torch.package", "torch.utils.data.datapipes.utils.decoder", "torch.utils._config_module", "numpy.load",
                  "numpy.loads", "numpy.lib.npyio", "numpy.lib._npyio_impl", "numpy.lib.format", "yaml.load",
                  "yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "yaml.unsafe_load_all"] { table[m] = loads }
        for m in ["shutil", "tempfile", "filecmp", "distutils", "fileinput", "glob", "linecache", "difflib", "sqlite3",
                  "_sqlite3", "tarfile", "zipfile", "logging", "syslog", "dbm", "_dbm", "_gdbm", "io.open", "io.FileIO",
                  "_io.open", "_io.FileIO", "torch.from_file", "numpy.fromfile", "numpy.memmap"] { table[m] = files }
        for m in ["codecs.open", "gzip.open", "gzip.GzipFile", "bz2.open", "bz2.BZ2File", "lzma.open", "lzma.LZMAFile",
                  "numpy.save", "numpy.savez", "numpy.savez_compressed", "numpy.savetxt", "numpy.ndarray.tofile",
                  "torch.save", "torch.serialization.save", "torch.serialization._save", "torch.serialization._legacy_save"] {
            table[m] = files
        }
        // Path objects are plain data in Lightning's hyperparameters; their methods touch the file system.
        for module in ["pathlib", "pathlib._local"] {
            for path in ["Path", "PosixPath", "WindowsPath"] {
                for method in ["open", "touch", "write_text", "write_bytes", "read_text", "read_bytes", "unlink", "rmdir",
                               "mkdir", "rename", "replace", "symlink_to", "hardlink_to", "link_to", "chmod", "lchmod",
                               "iterdir", "glob", "rglob", "walk", "copy", "move"] { table["\(module).\(path).\(method)"] = files }
            }
        }
        for storage in Array(storageClasses.keys) + ["UntypedStorage", "TypedStorage", "storage.UntypedStorage", "storage.TypedStorage"] {
            table["torch.\(storage).from_file"] = files
        }
        for m in ["venv", "ensurepip", "pip"] { table[m] = "can install packages" }
        return table
    }()
    private static let longestForbiddenPath = forbiddenPaths.keys.map { $0.split(separator: ".").count }.max()!

    private static let builtinModules: Set<Substring> = ["builtins", "__builtin__", "__builtins__"]
    /// The data types `builtins` may provide; every other builtin (eval, exec, getattr, open, ...) is refused.
    private static let harmlessBuiltins: Set<Substring> = [
        "set", "frozenset", "bytearray", "bytes", "dict", "list", "tuple", "int", "float", "complex", "str", "bool",
        "slice", "range", "object",
    ]
    private static let builtinReasons: [Substring: String] = [
        "eval": execute, "exec": execute, "compile": execute, "execfile": execute, "apply": "can call arbitrary functions",
        "breakpoint": "starts a debugger", "input": "reads the terminal", "open": files, "file": files,
        "getattr": "can reach any attribute", "setattr": "can change any attribute", "delattr": "can change any attribute",
        "__import__": imports, "globals": imports, "locals": imports, "vars": imports,
    ]

    /// The forbidden object `module.name` reaches (the matching suffix of its dotted path) and why, or nil.
    static func forbidden(module: String, name: String) -> (resolved: String, reason: String)? {
        let nameParts = name.split(separator: ".", omittingEmptySubsequences: false)
        // Dunder attribute chains (e.g. `f.__globals__`) can reach any object.
        if nameParts.contains(where: { $0.hasPrefix("__") && $0.hasSuffix("__") }) {
            return ("\(module).\(name)", "reaches a dunder attribute, which can lead to any object")
        }
        let parts = module.split(separator: ".", omittingEmptySubsequences: false) + nameParts
        for start in parts.indices {
            func found(_ reason: String) -> (String, String) { (parts[start...].joined(separator: "."), reason) }
            if builtinModules.contains(parts[start]) {
                if start + 2 == parts.count, harmlessBuiltins.contains(parts[start + 1]) { continue }
                return found(start + 1 < parts.count ? builtinReasons[parts[start + 1]] ?? "is not a builtin data type" : imports)
            }
            var path = ""
            for index in start ..< min(parts.count, start + longestForbiddenPath) {
                path += (index == start ? "" : ".") + parts[index]
                if let reason = forbiddenPaths[path] { return found(reason) }
            }
        }
        return nil
    }
}
