import ArgumentParser
import BFQCore
import Foundation

/// A command's outputs, checked before any work: none is an input file (or one of the files of an input shard index or
/// folder), each folder takes files, no two are the same.
enum OutputChecks {
    /// Targets for `outputs` (nil entries skipped, order kept), each refusing to replace any existing file of `inputs`.
    static func targets(_ outputs: [String?], inputs: [String?], durable: Bool = true) throws -> [String: OutputTarget] {
        // A shard index or a diffusers folder (or its model_index.json) stands for the files it reads too.
        let mapped = try inputs.compactMap { $0 }.filter { FileManager.default.fileExists(atPath: $0) }.flatMap { path -> [MappedFile] in
            if DiffusersFolder.isFolder(path) { return try CheckpointFile.open(path).files }
            let read = path.lowercased().hasSuffix(".json") ? (try? CheckpointFile.open(path))?.files ?? [] : []
            return [try MappedFile(path: path)] + read
        }
        var seen: [String: String] = [:]
        var targets: [String: OutputTarget] = [:]
        for path in outputs.compactMap({ $0 }) {
            let resolved = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
            if let other = seen.updateValue(path, forKey: resolved) {
                throw ValidationError("\(other) and \(path) are the same output file")
            }
            let target = OutputTarget(path: path, inputs: mapped, durable: durable)
            try target.check()
            targets[path] = target
        }
        return targets
    }
}
