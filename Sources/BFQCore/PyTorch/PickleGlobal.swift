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
        /// Not modelled: whatever it builds is an opaque placeholder.
        case unknown
    }

    let module: String
    let name: String
    let kind: Kind
    var qualifiedName: String { "\(module).\(name)" }

    /// Classifies `module.name`; returns the reason when the global is forbidden.
    static func classify(module: String, name: String) -> Result<Kind, ForbiddenGlobal> {
        if let reason = forbiddenReason(module: module, name: name) { return .failure(ForbiddenGlobal(reason: reason)) }
        return .success(known["\(module).\(name)"] ?? .unknown)
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

    static func torchDType(_ name: String, shown: String) -> TorchDType? {
        guard let (dtype, size) = dtypes[name] else { return nil }
        return TorchDType(name: shown, dtype: dtype, elementSize: size)
    }

    private static let known: [String: Kind] = {
        var table: [String: Kind] = [
            "collections.OrderedDict": .orderedDict,
            "builtins.dict": .builtinDict, "builtins.list": .builtinList, "builtins.tuple": .builtinTuple,
            "builtins.set": .builtinSet, "builtins.frozenset": .builtinSet, "builtins.bytearray": .builtinBytearray,
            "__builtin__.set": .builtinSet, "__builtin__.frozenset": .builtinSet,
            "torch._utils._rebuild_tensor_v2": .rebuildTensorV2,
            "torch._utils._rebuild_tensor_v3": .rebuildTensorV3,
            "torch._utils._rebuild_parameter": .rebuildParameter,
            "torch._utils._rebuild_parameter_with_state": .rebuildParameterWithState,
            "torch._tensor._rebuild_from_type_v2": .rebuildFromTypeV2,
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

    private static let execute = "can execute code"
    private static let process = "can run commands or control processes"
    private static let network = "can open network connections"
    private static let files = "can read or write files"
    private static let imports = "can import or inspect arbitrary modules"

    /// Top-level modules refused whatever the name (submodules included).
    private static let forbiddenModules: [String: String] = {
        var table: [String: String] = [:]
        for m in ["os", "posix", "nt", "subprocess", "pty", "commands", "_posixsubprocess", "multiprocessing", "pexpect",
                  "pipes", "platform", "uuid", "_osx_support", "_aix_support", "signal", "_signal", "threading",
                  "_thread", "atexit"] { table[m] = process }
        for m in ["code", "codeop", "runpy", "marshal", "types", "compile", "exec", "eval", "doctest", "_interpreters",
                  "_xxsubinterpreters", "cProfile", "profile", "pdb", "bdb", "timeit", "trace", "idlelib", "lib2to3",
                  "compileall", "py_compile"] { table[m] = execute }
        for m in ["sys", "importlib", "_frozen_importlib", "_frozen_importlib_external", "_imp", "imp", "pkgutil",
                  "zipimport", "gc", "site", "unittest", "inspect", "test", "pydoc"] { table[m] = imports }
        for m in ["operator", "_operator", "functools"] { table[m] = "can call arbitrary functions" }
        for m in ["socket", "ssl", "httplib", "http", "urllib", "urllib2", "requests", "aiohttp", "asyncio",
                  "webbrowser", "smtplib", "imaplib", "ftplib", "poplib", "telnetlib", "nntplib", "socketserver",
                  "xmlrpc", "select", "selectors"] { table[m] = network }
        for m in ["ctypes", "_ctypes", "mmap"] { table[m] = "can call native code or touch raw memory" }
        for m in ["pickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve"] { table[m] = "can load another pickle" }
        for m in ["shutil", "tempfile", "filecmp", "distutils", "fileinput", "glob", "linecache", "difflib", "sqlite3",
                  "_sqlite3", "tarfile", "zipfile", "logging", "syslog"] { table[m] = files }
        for m in ["venv", "ensurepip", "pip"] { table[m] = "can install packages" }
        return table
    }()

    /// Dotted module prefixes refused whatever the name.
    private static let forbiddenPrefixes: [(String, String)] = [
        ("torch.hub", network), ("torch._dynamo", execute), ("torch._inductor", execute), ("torch.jit", execute),
        ("torch.compile", execute), ("numpy.f2py", execute), ("numpy.distutils", execute), ("numpy.testing", execute),
        ("torch.utils.collect_env", process), ("torch.utils.bottleneck", execute),
        ("torch.utils.data.datapipes.utils.decoder", "can load another pickle"),
        ("torch.utils._config_module", "can load another pickle"),
        ("torch.fx.experimental.symbolic_shapes", execute), ("torch.distributed", network),
    ]

    /// Single names refused in otherwise harmless modules.
    private static let forbiddenNames: [String: String] = [
        "torch.load": "can load another pickle", "torch.serialization.load": "can load another pickle",
        "torch.storage._load_from_bytes": "can load another pickle", "torch.compile": execute,
        "io.open": files, "io.FileIO": files, "_io.open": files, "_io.FileIO": files,
    ]

    /// The data types `builtins` may provide; every other builtin (eval, exec, getattr, open, ...) is refused.
    private static let harmlessBuiltins: Set<String> = [
        "set", "frozenset", "bytearray", "bytes", "dict", "list", "tuple", "int", "float", "complex", "str", "bool",
        "slice", "range", "object",
    ]
    private static let builtinReasons: [String: String] = [
        "eval": execute, "exec": execute, "compile": execute, "execfile": execute, "apply": "can call arbitrary functions",
        "breakpoint": "starts a debugger", "input": "reads the terminal", "open": files, "file": files,
        "getattr": "can reach any attribute", "setattr": "can change any attribute", "delattr": "can change any attribute",
        "__import__": imports, "globals": imports, "locals": imports, "vars": imports,
    ]

    static func forbiddenReason(module: String, name: String) -> String? {
        // Dunder attribute chains (e.g. `f.__globals__`) can reach any object.
        if name.split(separator: ".").contains(where: { $0.hasPrefix("__") && $0.hasSuffix("__") }) {
            return "reaches a dunder attribute, which can lead to any object"
        }
        let top = module.split(separator: ".", maxSplits: 1).first.map(String.init) ?? module
        if top == "builtins" || top == "__builtin__" || top == "__builtins__" {
            if module == top, harmlessBuiltins.contains(name) { return nil }
            return builtinReasons[name] ?? "only builtin data types are allowed"
        }
        if let reason = forbiddenModules[top] { return reason }
        for (prefix, reason) in forbiddenPrefixes where module == prefix || module.hasPrefix(prefix + ".") {
            return reason
        }
        return forbiddenNames["\(module).\(name)"]
    }
}
