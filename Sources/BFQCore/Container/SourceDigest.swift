import Crypto
import Foundation
import Dispatch

/// SHA-256 of a checkpoint's bytes, as the manifest's `source.sha256` records it (64 lowercase hex digits): of its
/// file, or of its files' bytes one after another (a shard index's shards, a diffusers folder's weight files). Reads
/// the mappings in chunks and releases each chunk's pages, so hashing a multi-gigabyte checkpoint keeps memory flat.
enum SourceDigest {
    static let chunk = 64 << 20

    static func sha256(of file: MappedFile) -> String { sha256(of: [file]) }

    static func sha256(of files: [MappedFile]) -> String {
        var hasher = SHA256()
        for file in files {
            var start = 0
            while start < file.count {
                let end = min(file.count, start + chunk)
                file.willRead(start ..< end)
                hasher.update(bufferPointer: file.bytes(in: start ..< end))
                file.release(start ..< end)
                start = end
            }
        }
        return hasher.finalize().map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined()
    }

    /// The manifest's record of the checkpoint opened from `path` whose bytes are `files`: the last component of
    /// `path` (the file, shard index or folder), the files' total size and `sha256(of:)`.
    static func source(_ files: [MappedFile], path: String) -> ContainerManifest.SourceFile {
        let name = URL(fileURLWithPath: path).standardizedFileURL.lastPathComponent
        return ContainerManifest.SourceFile(name: name, size: files.reduce(0) { $0 + $1.count }, sha256: sha256(of: files))
    }
}

/// `SourceDigest.source` of a checkpoint computed on a background thread; `result()` waits for it.
final class SourceDigestTask: @unchecked Sendable {
    private let group = DispatchGroup()
    private var value: ContainerManifest.SourceFile?

    /// Starts hashing `files`, the checkpoint opened from `path`; nothing when `files` is empty.
    init(_ files: [MappedFile], path: String) {
        guard !files.isEmpty else { return }
        group.enter()
        DispatchQueue.global().async {
            self.value = SourceDigest.source(files, path: path)
            self.group.leave()
        }
    }

    func result() -> ContainerManifest.SourceFile? {
        group.wait()
        return value
    }
}
