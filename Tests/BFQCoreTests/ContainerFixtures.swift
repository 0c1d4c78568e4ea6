import Foundation
import BFQFuzzing
@testable import BFQCore

/// Editing .bfq bytes in tests: read and write fields, and re-seal CRCs so a deeper invariant is reached.
enum ContainerFixtures {
    static func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 { ContainerResealing.field(UInt32.self, in: bytes, at: offset) }

    static func u64(_ bytes: [UInt8], _ offset: Int) -> UInt64 { ContainerResealing.field(UInt64.self, in: bytes, at: offset) }

    static func set<T: FixedWidthInteger>(_ value: T, in bytes: inout [UInt8], at offset: Int) {
        ContainerResealing.set(value, in: &bytes, at: offset)
    }

    /// Recomputes the table, manifest and header CRCs after an edit.
    static func reseal(_ bytes: inout [UInt8]) { ContainerResealing.reseal(&bytes) }

    /// Replaces the manifest with `text`, fixing sizes and CRCs.
    static func replaceManifest(_ bytes: inout [UInt8], with text: String) {
        let manifest = Int(u64(bytes, 32))
        bytes.removeSubrange(manifest...)
        bytes += Array(text.utf8)
        set(UInt64(text.utf8.count), in: &bytes, at: 40)
        set(UInt64(bytes.count), in: &bytes, at: 48)
        reseal(&bytes)
    }

    static func manifestText(_ bytes: [UInt8]) -> String {
        String(decoding: bytes[Int(u64(bytes, 32))...], as: UTF8.self)
    }

    /// Opens `bytes` as a container and reads every section, returning the error.
    static func error(reading bytes: [UInt8]) throws -> ContainerError? {
        let path = try TestFiles.write(bytes, name: "case.bfq")
        do {
            let reader = try ContainerReader(MappedFile(path: path))
            for index in reader.sections.indices { _ = try reader.withSection(index) { $0.count } }
            return nil
        } catch let error as ContainerError {
            return error
        }
    }
}
