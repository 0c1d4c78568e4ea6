import Foundation
import XCTest
@testable import BFQCore

/// Runs the built `bfq` as a user would and checks stdout, stderr, exit status and the files left behind.
final class CommandTests: XCTestCase {
    private let ldmCheckpoint = BFQProcess.path("unet/tiny_unet.ldm.ckpt")
    private let diffusersSafetensors = BFQProcess.path("unet/tiny_unet.diffusers.safetensors")

    func testInspectJSONDescribesEveryTensor() throws {
        let run = try BFQProcess.run(["inspect", ldmCheckpoint, "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let json = try JSONParser.parse(run.stdout)
        XCTAssertEqual(json["format"], "pytorch-zip")
        XCTAssertEqual(json["naming"], "ldm")
        XCTAssertEqual(json["metadata"], .object([JSONMember("global_step", "1000")]))
        XCTAssertEqual(json["model"]?.stringValue?.hasPrefix("SD 1.x-structured UNet"), true)
        let tensors = try XCTUnwrap(json["tensors"]?.arrayValue)
        XCTAssertEqual(tensors.count, 686)
        // The same tensors as the safetensors copy written by the safetensors library, as that library reads them.
        let reference = try CheckpointFile.open(BFQProcess.path("unet/tiny_unet.ldm.safetensors"))
        let byName = Dictionary(uniqueKeysWithValues: reference.tensors.map { ($0.name, $0) })
        var parameters = 0
        for tensor in tensors {
            let name = try XCTUnwrap(tensor["name"]?.stringValue)
            let expected = try XCTUnwrap(byName[name], name)
            XCTAssertEqual(tensor["dtype"]?.stringValue, expected.dtype.rawValue)
            XCTAssertEqual(tensor["shape"]?.arrayValue?.compactMap(\.intValue).map(Int.init), expected.shape)
            XCTAssertEqual(tensor["bytes"]?.intValue, Int64(expected.byteCount))
            parameters += expected.elementCount
        }
        XCTAssertEqual(json["parameters"]?.intValue, Int64(parameters))
        XCTAssertEqual(parameters, 556_572)
    }

    func testInspectTextRecognisesSD15Shapes() throws {
        let run = try BFQProcess.run(["inspect", diffusersSafetensors])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("format      safetensors"), run.stdout)
        XCTAssertTrue(run.stdout.contains("tensors     686"), run.stdout)
        XCTAssertTrue(run.stdout.contains("naming      diffusers"), run.stdout)
        XCTAssertTrue(run.stdout.contains("parameters  556,572 (0.6M)"), run.stdout)
    }

    func testConvertThenDiffAcrossNamingsAndFormats() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let output = directory + "/unet.safetensors"
        let convert = try BFQProcess.run(["convert", ldmCheckpoint, output, "--only", "model.diffusion_model.",
                                          "--names", "diffusers", "--dtype", "f32"])
        XCTAssertEqual(convert.status, 0, convert.stderr)
        XCTAssertEqual(convert.stdout, "kept 686 tensors\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["unet.safetensors"])
        // f16 → f32 is exact, so diff against diffusers' own f16 file finds no value difference, only dtypes.
        let diff = try BFQProcess.run(["diff", diffusersSafetensors, output])
        XCTAssertEqual(diff.status, 1, diff.stdout + diff.stderr)
        XCTAssertTrue(diff.stdout.contains("686 tensors in both, 686 differ; 0 only in the first, 0 only in the second"), diff.stdout)
        XCTAssertTrue(diff.stdout.contains("F16≠F32"))
        XCTAssertFalse(diff.stdout.split(separator: "\n").contains { $0.hasPrefix("only in ") })
        // The ldm checkpoint against diffusers' file: names matched across schemes, values identical.
        let same = try BFQProcess.run(["diff", ldmCheckpoint, diffusersSafetensors])
        XCTAssertEqual(same.status, 0, same.stdout + same.stderr)
        XCTAssertTrue(same.stdout.hasSuffix("686 tensors in both, 0 differ; 0 only in the first, 0 only in the second\n"), same.stdout)
        XCTAssertTrue(same.stdout.contains("inf"), "identical tensors have infinite SQNR")
    }

    func testDiffReportsSQNRAndMissingNames() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let bf16 = directory + "/bf16.safetensors"
        XCTAssertEqual(try BFQProcess.run(["convert", BFQProcess.path("safetensors/dtypes.safetensors"), bf16, "--dtype", "bf16",
                                           "--only", "f"]).status, 0)
        let run = try BFQProcess.run(["diff", BFQProcess.path("safetensors/dtypes.safetensors"), bf16])
        XCTAssertEqual(run.status, 1)
        XCTAssertTrue(run.stdout.contains("only in \(BFQProcess.path("safetensors/dtypes.safetensors")): i64.range"), run.stdout)
        // bf16 keeps 8 significant bits: SQNR of a normal tensor is near 6.02·8 + 1.76 ≈ 50 dB.
        let line = try XCTUnwrap(run.stdout.split(separator: "\n").first { $0.hasPrefix("f64.normal ") })
        let sqnr = try XCTUnwrap(Double(line.split(separator: " ").last!))
        XCTAssertGreaterThan(sqnr, 45)
        XCTAssertLessThan(sqnr, 55)
    }

    func testStatsCSVAndJSON() throws {
        let csv = try BFQProcess.run(["stats", BFQProcess.path("safetensors/dtypes.safetensors"), "--csv"])
        XCTAssertEqual(csv.status, 0, csv.stderr)
        let lines = csv.stdout.split(separator: "\n")
        XCTAssertEqual(lines.first, "name,dtype,shape,count,min,max,mean,std,absmax,zero_fraction,nan_count,inf_count,skewness,kurtosis")
        // Values as numpy and scipy.stats give them (testdata/safetensors/dtypes.stats.json).
        XCTAssertTrue(lines.contains("i64.range,I64,3x4,12,-5.0,6.0,0.5,3.452052529534663,6.0,0.08333333333333333,0,0,0.0,-1.2167832167832167"),
                      csv.stdout)
        let json = try JSONParser.parse(try BFQProcess.run(["stats", BFQProcess.path("safetensors/dtypes.safetensors"), "--json"]).stdout)
        let special = try XCTUnwrap(json["tensors"]?.arrayValue?.first { $0["name"] == "f32.special" })
        XCTAssertEqual(special["nan_count"], 1)
        XCTAssertEqual(special["inf_count"], 2)
    }

    func testBadInputIsOneLineExitTwoAndNoOutput() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let garbage = directory + "/garbage.ckpt"
        try Data("this is not a checkpoint at all".utf8).write(to: URL(fileURLWithPath: garbage))
        let output = directory + "/out.safetensors"
        for arguments in [["convert", garbage, output], ["inspect", garbage], ["stats", garbage],
                          ["convert", directory + "/missing.ckpt", output]] {
            let run = try BFQProcess.run(arguments)
            XCTAssertEqual(run.status, 2, "\(arguments)")
            XCTAssertEqual(run.stdout, "")
            XCTAssertEqual(run.stderr.filter { $0 == "\n" }.count, 1, run.stderr)
            XCTAssertTrue(run.stderr.hasPrefix("bfq: error: \(arguments[1]): "), run.stderr)
        }
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: directory)), ["garbage.ckpt"])
    }

    func testTruncatedCheckpointLeavesNoOutput() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let truncated = directory + "/truncated.safetensors"
        let whole = try Data(contentsOf: URL(fileURLWithPath: diffusersSafetensors))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: truncated))
        let run = try BFQProcess.run(["convert", truncated, directory + "/out.ckpt"])
        XCTAssertEqual(run.status, 2)
        XCTAssertTrue(run.stderr.contains("data buffer holds"), run.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["truncated.safetensors"])
    }

    func testNeverOverwritesTheInput() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let input = directory + "/model.safetensors"
        try FileManager.default.copyItem(atPath: diffusersSafetensors, toPath: input)
        let before = try Data(contentsOf: URL(fileURLWithPath: input))
        let run = try BFQProcess.run(["convert", input, input, "--dtype", "f32"])
        XCTAssertEqual(run.status, 2)
        XCTAssertTrue(run.stderr.contains("refusing to overwrite"), run.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: input)), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["model.safetensors"])
    }

    func testUsageErrorsExitWithUsageStatus() throws {
        let run = try BFQProcess.run(["convert", diffusersSafetensors, "/tmp/x.safetensors", "--dtype", "f8"])
        XCTAssertEqual(run.status, 64)
        XCTAssertTrue(run.stderr.contains("f8"), run.stderr)
        let unknownOutput = try BFQProcess.run(["convert", diffusersSafetensors, "/tmp/x.onnx"])
        XCTAssertEqual(unknownOutput.status, 2)
        XCTAssertTrue(unknownOutput.stderr.contains(".safetensors, .ckpt, .pt, .pth, .bin, .bfq or .gguf"), unknownOutput.stderr)
    }

    func testSameInputSameBytesWhateverTheThreadCount() throws {
        var outputs: [Data] = []
        for threads in ["1", "2", "3"] {
            // Same file name each time: a .ckpt's root folder is named after it.
            let path = try BFQProcess.temporaryDirectory() + "/out.ckpt"
            let run = try BFQProcess.run(["convert", ldmCheckpoint, path, "--dtype", "bf16", "--names", "diffusers"],
                                         environment: ["BFQ_THREADS": threads])
            XCTAssertEqual(run.status, 0, run.stderr)
            outputs.append(try Data(contentsOf: URL(fileURLWithPath: path)))
        }
        XCTAssertEqual(outputs[0], outputs[1])
        XCTAssertEqual(outputs[0], outputs[2])
    }
}

/// Hostile names and odd inputs as a user meets them on the command line.
final class HostileInputCommandTests: XCTestCase {
    func testControlCharactersInNamesAreEscapedInTextAndErrors() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let path = directory + "/names.safetensors"
        let name = #"\u001b]0;PWNED\u0007\r\nfake"#
        let header = #"{"\#(name)":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"\#(name)":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian, Array.init) + Array(header.utf8)
        bytes += [UInt8](repeating: 0, count: 8)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let run = try BFQProcess.run(["inspect", path])
        XCTAssertEqual(run.status, 2)
        XCTAssertEqual(run.stderr.filter { $0 == "\n" || $0 == "\r\n" }.count, 1, run.stderr)
        XCTAssertFalse(run.stderr.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x0D })
        XCTAssertTrue(run.stderr.contains(#"\x1B]0;PWNED\x07\x0D\x0Afake"#), run.stderr)
    }

    func testFIFOIsRefusedWithoutWaiting() throws {
        let path = try BFQProcess.temporaryDirectory() + "/fifo"
        XCTAssertEqual(mkfifo(path, 0o600), 0)
        let run = try BFQProcess.run(["inspect", path])
        XCTAssertEqual(run.status, 2)
        XCTAssertEqual(run.stderr, "bfq: error: \(path): not a regular file\n")
    }

    func testDamagedSafetensorsGetsTheSafetensorsRule() throws {
        let path = try BFQProcess.temporaryDirectory() + "/short.safetensors"
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        let run = try BFQProcess.run(["inspect", path])
        XCTAssertEqual(run.status, 2)
        XCTAssertTrue(run.stderr.contains("too small for a safetensors file"), run.stderr)
    }
}

/// The .bfq container through the command line.
final class ContainerCommandTests: XCTestCase {
    func testConvertToBFQVerifyAgainstSourceAndBack() throws {
        let directory = try BFQProcess.temporaryDirectory()
        let source = BFQProcess.path("unet/tiny_unet.ldm.ckpt")
        let container = directory + "/unet.bfq"
        XCTAssertEqual(try BFQProcess.run(["convert", source, container, "--only", "model.diffusion_model."]).status, 0)
        let verify = try BFQProcess.run(["verify", container, "--against", BFQProcess.path("unet/tiny_unet.diffusers.safetensors")])
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
        XCTAssertTrue(verify.stdout.contains("686 tensors in both, 0 differ"), verify.stdout)
        let json = try JSONParser.parse(try BFQProcess.run(["inspect", container, "--json"]).stdout)
        XCTAssertEqual(json["format"], "bfq")
        XCTAssertEqual(json["summary"]?["average_bits"], .double(16))
        XCTAssertEqual(json["tensors"]?.arrayValue?.first?["encoding"], "raw")
        let back = directory + "/back.safetensors"
        XCTAssertEqual(try BFQProcess.run(["convert", container, back]).status, 0)
        XCTAssertEqual(try BFQProcess.run(["diff", BFQProcess.path("unet/tiny_unet.ldm.safetensors"), back]).status, 0)
    }

    /// inspect names each quantized tensor's packing (null for raw tensors) and counts them.
    func testInspectShowsPacking() throws {
        let fixture = BFQProcess.path("bfq/packing.bfq")
        let json = try JSONParser.parse(try BFQProcess.run(["inspect", fixture, "--json"]).stdout)
        let packings = json["tensors"]?.arrayValue?.map { $0["packing"]?.stringValue ?? "-" }
        XCTAssertEqual(packings, Array(repeating: "bytes", count: 9) + ["radix", "bytes"])
        let text = try BFQProcess.run(["inspect", fixture, "--tensors"])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("\npacking     radix ×1, bytes ×10\n"), text.stdout)
        XCTAssertTrue(text.stdout.contains("\nradix.b2  F32  [2, 10]  grid  2.322 bits  5 levels radix  12 bytes stored"), text.stdout)
        let raw = try JSONParser.parse(try BFQProcess.run(["inspect", BFQProcess.path("bfq/dtypes.bfq"), "--json"]).stdout)
        XCTAssertEqual(raw["tensors"]?.arrayValue?.first?["packing"], .null)
    }

    func testVerifyRefusesDamageAndMismatchedSources() throws {
        let damaged = try BFQProcess.run(["verify", BFQProcess.path("bfq/encodings.corrupt-manifest.bfq")])
        XCTAssertEqual(damaged.status, 2)
        XCTAssertTrue(damaged.stderr.contains("manifest CRC-32"), damaged.stderr)
        let other = try BFQProcess.run(["verify", BFQProcess.path("bfq/dtypes.bfq"), "--against", BFQProcess.path("unet/tiny_unet.ldm.safetensors")])
        XCTAssertEqual(other.status, 1, other.stdout)
    }

    func testSameBytesWhateverTheThreadCount() throws {
        var outputs: [Data] = []
        for threads in ["1", "2", "3"] {
            let path = try BFQProcess.temporaryDirectory() + "/out.bfq"
            let run = try BFQProcess.run(["convert", BFQProcess.path("unet/tiny_unet.ldm.ckpt"), path, "--dtype", "bf16"],
                                         environment: ["BFQ_THREADS": threads])
            XCTAssertEqual(run.status, 0, run.stderr)
            outputs.append(try Data(contentsOf: URL(fileURLWithPath: path)))
        }
        XCTAssertEqual(outputs[0], outputs[1])
        XCTAssertEqual(outputs[0], outputs[2])
    }
}
