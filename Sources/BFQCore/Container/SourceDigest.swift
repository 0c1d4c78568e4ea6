import Crypto
import Dispatch

/// SHA-256 of a whole file, as the manifest's `source.sha256` records it (64 lowercase hex digits). Reads the
/// mapping in chunks and releases each chunk's pages, so hashing a multi-gigabyte checkpoint keeps memory flat.
enum SourceDigest {
    static let chunk = 64 << 20

    static func sha256(of file: MappedFile) -> String {
        var hasher = SHA256()
        var start = 0
        while start < file.count {
            let end = min(file.count, start + chunk)
            file.willRead(start ..< end)
            hasher.update(bufferPointer: file.bytes(in: start ..< end))
            file.release(start ..< end)
            start = end
        }
        return hasher.finalize().map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined()
    }

    /// The manifest's record of `file`: its name (last path component), size and SHA-256.
    static func source(_ file: MappedFile) -> ContainerManifest.SourceFile {
        let name = file.path.split(separator: "/").last.map(String.init) ?? file.path
        return ContainerManifest.SourceFile(name: name, size: file.count, sha256: sha256(of: file))
    }
}

/// `SourceDigest.source` of a file computed on a background thread; `result()` waits for it.
final class SourceDigestTask: @unchecked Sendable {
    private let group = DispatchGroup()
    private var value: ContainerManifest.SourceFile?

    init(_ file: MappedFile?) {
        guard let file else { return }
        group.enter()
        DispatchQueue.global().async {
            self.value = SourceDigest.source(file)
            self.group.leave()
        }
    }

    func result() -> ContainerManifest.SourceFile? {
        group.wait()
        return value
    }
}
