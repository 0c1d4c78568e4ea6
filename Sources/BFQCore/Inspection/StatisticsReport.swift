/// `stats` output: per-tensor statistics of a checkpoint as text, CSV or JSON.
public struct StatisticsReport: Sendable {
    public var path: String
    public var rows: [(tensor: TensorEntry, statistics: TensorStatistics)]

    /// Computes statistics of every tensor, releasing each tensor's pages once done so memory stays bounded.
    public init(_ checkpoint: Checkpoint) throws {
        path = checkpoint.path
        rows = try checkpoint.tensors.map { tensor in
            let statistics = try checkpoint.withContiguousBytes(of: tensor) { TensorStatistics(bytes: $0, dtype: tensor.dtype) }
            checkpoint.release(tensor)
            return (tensor, statistics)
        }
    }

    /// Field names, in output order.
    public static let fields = ["name", "dtype", "shape", "count", "min", "max", "mean", "std", "absmax", "zero_fraction",
                                "nan_count", "inf_count", "skewness", "kurtosis"]

    private static func values(_ s: TensorStatistics) -> [Double] {
        [s.min, s.max, s.mean, s.std, s.absmax, s.zeroFraction]
    }

    public var json: JSONValue {
        .object([
            JSONMember("file", .string(path)),
            JSONMember("tensors", .array(rows.map { tensor, s in
                .object([
                    JSONMember("name", .string(tensor.name)),
                    JSONMember("dtype", .string(tensor.dtype.rawValue)),
                    JSONMember("shape", .array(tensor.shape.map { .int(Int64($0)) })),
                    JSONMember("count", .int(Int64(s.count))),
                    JSONMember("min", .double(s.min)),
                    JSONMember("max", .double(s.max)),
                    JSONMember("mean", .double(s.mean)),
                    JSONMember("std", .double(s.std)),
                    JSONMember("absmax", .double(s.absmax)),
                    JSONMember("zero_fraction", .double(s.zeroFraction)),
                    JSONMember("nan_count", .int(Int64(s.nanCount))),
                    JSONMember("inf_count", .int(Int64(s.infCount))),
                    JSONMember("skewness", .double(s.skewness)),
                    JSONMember("kurtosis", .double(s.kurtosis)),
                ])
            })),
        ])
    }

    /// CSV with a header row; numbers in the shortest form that reads back to the same double, shape as `AxBxC`.
    public var csv: String {
        var lines = [Self.fields.joined(separator: ",")]
        for (tensor, s) in rows {
            var cells = [Self.csvQuoted(tensor.name), tensor.dtype.rawValue, tensor.shape.map(String.init).joined(separator: "x"),
                         String(s.count)]
            cells += Self.values(s).map { "\($0)" }
            cells += [String(s.nanCount), String(s.infCount), "\(s.skewness)", "\(s.kurtosis)"]
            lines.append(cells.joined(separator: ","))
        }
        return lines.joined(separator: "\n")
    }

    /// An aligned table for people, 6 significant digits.
    public var text: String {
        var table = [Self.fields]
        for (tensor, s) in rows {
            var cells = [Formatting.printable(tensor.name), tensor.dtype.rawValue, tensor.shape.map(String.init).joined(separator: "x"), String(s.count)]
            cells += Self.values(s).map { Formatting.general($0) }
            cells += [String(s.nanCount), String(s.infCount), Formatting.general(s.skewness), Formatting.general(s.kurtosis)]
            table.append(cells)
        }
        return Formatting.table(table)
    }

    private static func csvQuoted(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return text }
        return "\"" + String(text.flatMap { $0 == "\"" ? ["\"", "\""] : [$0] }) + "\""
    }
}
