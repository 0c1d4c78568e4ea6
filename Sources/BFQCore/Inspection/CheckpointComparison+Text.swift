/// `diff` output for people: missing names, mismatches, then per-tensor max abs error and SQNR.
extension CheckpointComparison {
    public func text(firstPath: String, secondPath: String) -> String {
        var lines: [String] = []
        let (first, second) = (Formatting.printable(firstPath), Formatting.printable(secondPath))
        for name in onlyInFirst { lines.append("only in \(first): \(Formatting.printable(name))") }
        for name in onlyInSecond { lines.append("only in \(second): \(Formatting.printable(name))") }
        var table = [["name", "dtype", "shape", "max_abs_error", "sqnr_db"]]
        for pair in pairs {
            let dtype = pair.dtypeMatches ? pair.dtypes.0.rawValue : "\(pair.dtypes.0.rawValue)≠\(pair.dtypes.1.rawValue)"
            let shape = { (s: [Int]) in s.map(String.init).joined(separator: "x") }
            guard let difference = pair.difference else {
                table.append([Formatting.printable(pair.name), dtype, "\(shape(pair.shapes.0))≠\(shape(pair.shapes.1))", "-", "-"])
                continue
            }
            table.append([Formatting.printable(pair.name), dtype, shape(pair.shapes.0), Formatting.general(difference.maxAbsError),
                          Formatting.fixed(difference.sqnrDB, digits: 2)])
        }
        if pairs.count > 0 { lines.append(Formatting.table(table)) }
        let differing = pairs.filter { !$0.shapeMatches || !$0.dtypeMatches || $0.difference?.noiseEnergy != 0 }.count
        lines.append("\(pairs.count) tensors in both, \(differing) differ; \(onlyInFirst.count) only in the first, "
            + "\(onlyInSecond.count) only in the second")
        return lines.joined(separator: "\n")
    }
}
