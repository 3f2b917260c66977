/// Building and reading the binary files Affinity writes itself (model artifacts, training checkpoints):
/// little-endian scalars, and Float32/Int32 arrays in the host's byte order, which is little-endian on every
/// platform Swift supports (x86-64, arm64).
public func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
    withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
}

public func appendArray<T>(_ values: [T], to bytes: inout [UInt8]) {
    values.withUnsafeBytes { bytes += $0 }
}

/// Reads such a file front to back; callers check lengths before reading.
public struct ByteCursor {
    public let bytes: [UInt8]
    public var offset: Int

    public init(bytes: [UInt8], offset: Int) {
        self.bytes = bytes
        self.offset = offset
    }

    public mutating func scalar<T: FixedWidthInteger>() -> T {
        let v = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    public mutating func array<T>(_ count: Int) -> [T] {
        let size = count * MemoryLayout<T>.stride
        let out = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { src in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: src[offset..<(offset + size)]))
            }
            initialized = count
        }
        offset += size
        return out
    }
}
