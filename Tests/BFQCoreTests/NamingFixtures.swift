import Foundation
import XCTest

/// Expected UNet names made by diffusers itself (tools/testdata/unet_naming.py, tools/testdata/unet.py).
enum NamingFixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("testdata/unet")

    /// A file in testdata/unet, or elsewhere in testdata when `name` starts with "../" (e.g. "../sdxl/...").
    static func url(_ name: String) -> URL { directory.appendingPathComponent(name).standardizedFileURL }

    static func lines(_ name: String) throws -> [String] {
        try String(contentsOf: url(name), encoding: .utf8).split(separator: "\n").map(String.init)
    }

    /// Rows of a two-column TSV file.
    static func pairs(_ name: String) throws -> [(String, String)] {
        try lines(name).map { line in
            let columns = line.split(separator: "\t").map(String.init)
            precondition(columns.count == 2, "bad row in \(name): \(line)")
            return (columns[0], columns[1])
        }
    }

    /// A `[[name, shape], ...]` JSON list.
    static func shapes(_ name: String) throws -> (names: [String], shapes: [[Int]]) {
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url(name))) as? [[Any]])
        return try (rows.map { try XCTUnwrap($0[0] as? String) }, rows.map { try XCTUnwrap($0[1] as? [Int]) })
    }

    /// Names and shapes from a safetensors header, sorted by name (read directly, independent of bfq's reader).
    static func safetensorsHeader(_ name: String) throws -> (names: [String], shapes: [[Int]]) {
        let data = try Data(contentsOf: url(name))
        let length = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: data.subdata(in: 8 ..< 8 + length)) as? [String: Any])
        let entries = try header.filter { $0.key != "__metadata__" }.sorted { $0.key < $1.key }.map { key, value in
            (key, try XCTUnwrap((value as? [String: Any])?["shape"] as? [Int]))
        }
        return (entries.map(\.0), entries.map(\.1))
    }

    /// Names of a full ldm checkpoint outside the UNet.
    static let ldmOthers = [
        "betas", "alphas_cumprod", "model_ema.decay", "model_ema.num_updates",
        "model_ema.diffusion_modelinput_blocks00weight",
        "first_stage_model.encoder.down.0.block.0.norm1.weight",
        "first_stage_model.decoder.up.0.block.0.nin_shortcut.weight",
        "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
    ]
}
