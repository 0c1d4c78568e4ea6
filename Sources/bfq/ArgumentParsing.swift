import ArgumentParser

/// Parsers for option values several commands share.
enum ArgumentParsing {
    /// "HxW" (e.g. 64x64) as (height, width).
    static func size(_ text: String, option: String) throws -> (height: Int, width: Int) {
        let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 2, let height = parts[0], let width = parts[1] else {
            throw ValidationError("\(option) must be HxW, e.g. 64x64, not \"\(text)\"")
        }
        return (height, width)
    }

    /// A comma-separated list of integers.
    static func integers(_ text: String, option: String) throws -> [Int] {
        try text.split(separator: ",", omittingEmptySubsequences: false).map {
            guard let value = Int($0.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("\(option) must be integers separated by commas, not \"\(text)\"")
            }
            return value
        }
    }
}
