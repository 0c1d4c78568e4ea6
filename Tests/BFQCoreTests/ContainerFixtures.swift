import Foundation
import CBFQShims
@testable import BFQCore

/// Editing .bfq bytes in tests: read and write fields, and re-seal CRCs so a deeper invariant is reached.
enum ContainerFixtures {
    static func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        bytes[offset ..< offset + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func u64(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
        bytes[offset ..< offset + 8].reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    static func set<T: FixedWidthInteger>(_ value: T, in bytes: inout [UInt8], at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(offset ..< offset + $0.count, with: $0) }
    }

    /// Recomputes the table, manifest and header CRCs after an edit.
    static func reseal(_ bytes: inout [UInt8]) {
        let table = Int(u64(bytes, 16)), manifest = Int(u64(bytes, 32)), size = Int(u64(bytes, 40))
        if table <= manifest, manifest <= bytes.count {
            set(bfq_crc32(0, Array(bytes[table ..< manifest]), manifest - table), in: &bytes, at: 56)
        }
        if manifest + size <= bytes.count {
            set(bfq_crc32(0, Array(bytes[manifest ..< manifest + size]), size), in: &bytes, at: 60)
        }
        set(bfq_crc32(0, bytes, 64), in: &bytes, at: 64)
    }

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
