/// Where a `TensorByteSource` writes: a file being written (`AtomicFileWriter`) or memory (`MemorySink`).
public protocol ByteSink: AnyObject {
    /// Appends bytes.
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Lets `fill` write up to `capacity` (at most `bufferCapacity`) bytes in place; `fill` returns how many it wrote.
    func withOutputBuffer(capacity: Int, _ fill: (UnsafeMutableRawBufferPointer) throws -> Int) throws
    /// Largest `capacity` `withOutputBuffer` accepts.
    var bufferCapacity: Int { get }
}

extension ByteSink {
    /// Appends the bytes of an array.
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }
}

extension AtomicFileWriter: ByteSink {}

/// Collects bytes in memory, for writers that need a whole tensor at once (the .bfq container compresses sections).
public final class MemorySink: ByteSink {
    public private(set) var bytes: [UInt8] = []
    public let bufferCapacity = 8 << 20

    public init(reserving capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws { self.bytes.append(contentsOf: bytes) }

    public func withOutputBuffer(capacity: Int, _ fill: (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        precondition(capacity <= bufferCapacity)
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: capacity))
        let written = try bytes.withUnsafeMutableBytes { try fill(UnsafeMutableRawBufferPointer(rebasing: $0[start...])) }
        precondition(written >= 0 && written <= capacity)
        bytes.removeLast(capacity - written)
    }
}
