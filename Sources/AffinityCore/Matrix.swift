/// A dense Float32 matrix in row-major order, stored contiguously: element (r, c) is at `r * cols + c`.
public struct Matrix: Sendable, Equatable {
    public let rows: Int
    public let cols: Int
    public var storage: [Float]

    /// A `rows × cols` matrix filled with `value`, by all workers when large (`Elementwise.run`): a gradient
    /// table zero-filled on one thread was ~4% of a LightGCN epoch, with the other core idle.
    public init(rows: Int, cols: Int, repeating value: Float = 0) {
        precondition(rows >= 0 && cols >= 0, "negative matrix shape")
        self.rows = rows
        self.cols = cols
        let count = rows * cols
        self.storage = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let base = buffer.baseAddress, count > 0 {
                let start = UnsafeSendable(base)
                Elementwise.run(count) { chunk in (start.value + chunk.lowerBound).initialize(repeating: value, count: chunk.count) }
            }
            initialized = count
        }
    }

    /// A `rows × cols` matrix whose values are left unset, for outputs that a kernel writes in full:
    /// zero-filling a large output first is a wasted, single-threaded pass over it.
    public init(uninitializedRows rows: Int, cols: Int) {
        precondition(rows >= 0 && cols >= 0, "negative matrix shape")
        self.rows = rows
        self.cols = cols
        self.storage = [Float](unsafeUninitializedCapacity: rows * cols) { _, count in count = rows * cols }
    }

    /// Wraps existing row-major values; `values.count` must be `rows * cols`.
    public init(rows: Int, cols: Int, values: [Float]) {
        precondition(values.count == rows * cols, "matrix shape \(rows)×\(cols) does not match \(values.count) values")
        self.rows = rows
        self.cols = cols
        self.storage = values
    }

    public subscript(row: Int, col: Int) -> Float {
        get { storage[row * cols + col] }
        set { storage[row * cols + col] = newValue }
    }

    /// A copy of one row.
    public func row(_ r: Int) -> ArraySlice<Float> {
        storage[(r * cols)..<((r + 1) * cols)]
    }
}
