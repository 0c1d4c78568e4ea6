@testable import BFQCore
#if canImport(Glibc)
import Glibc
#endif

/// The fuzz targets' bodies: each feeds one input to a reader, which either reads it or throws.
/// Shared by the libFuzzer executables (Fuzz/), which ignore the error (only a crash or a sanitizer report fails),
/// and by the regression test that replays testdata/fuzz/<target>/.
public enum FuzzEntry: String, CaseIterable, Sendable {
    case safetensors, pytorch, pickle, bfq, plan, unetConfig = "unet-config"

    /// Runs the reader behind this target on `bytes`; throws its error when the input is refused.
    public func run(_ bytes: UnsafeRawBufferPointer) throws {
        switch self {
        case .pickle: try Self.pickle(bytes)
        case .unetConfig: _ = try UNetConfig(json: JSONParser.parse(bytes), path: "input")
        case .safetensors: try Self.readAll(SafeTensorsReader.read(MappedFile(path: FuzzInputFile.shared.write(bytes))))
        case .pytorch: try Self.readAll(PyTorchReader.read(MappedFile(path: FuzzInputFile.shared.write(bytes))))
        case .bfq: _ = try ContainerVerification(path: FuzzInputFile.shared.write(bytes))
        case .plan: _ = try QuantizationPlan.load(FuzzInputFile.shared.write(bytes))
        }
    }

    /// Reads every tensor's bytes, so the per-tensor checks run too.
    static func readAll(_ checkpoint: Checkpoint) throws {
        for tensor in checkpoint.tensors { _ = try checkpoint.withContiguousBytes(of: tensor) { $0.count } }
    }

    /// Runs pickles back to back from offset 0, as the legacy reader does, with storages accepted.
    static func pickle(_ bytes: UnsafeRawBufferPointer) throws {
        var machine = PickleMachine(path: "input", part: "file", bytes: bytes, reportBase: 0, storages: .legacy)
        var position = 0
        while position < bytes.count { position = try machine.run(from: position, to: bytes.count).next }
    }
}

/// One temporary file in /dev/shm rewritten for every input, for readers that take a path (they mmap it).
final class FuzzInputFile: @unchecked Sendable {
    static let shared = FuzzInputFile()
    let path: String
    private let fd: Int32

    private init() {
        var template = Array("/dev/shm/bfq-fuzz-XXXXXX".utf8CString)
        fd = mkstemp(&template)
        precondition(fd >= 0, "mkstemp failed: errno \(errno)")
        unlink(String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)) // readers reopen it through /proc, so nothing is left behind
        path = "/proc/self/fd/\(fd)"
    }

    /// Replaces the file's content with `bytes` and returns its path.
    func write(_ bytes: UnsafeRawBufferPointer) -> String {
        precondition(ftruncate(fd, 0) == 0)
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(done))
            precondition(n > 0, "pwrite failed: errno \(errno)")
            done += n
        }
        return path
    }
}
