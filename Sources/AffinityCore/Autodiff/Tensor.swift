import AffinityKernels

/// A node of the reverse-mode automatic-differentiation graph: a dense matrix value, its gradient, and
/// the rule that sends that gradient to the node's inputs.
///
/// Operations (in `Ops*.swift`) create new tensors that remember their inputs; `backward()` on a scalar
/// walks the recorded graph in reverse topological order — the tape — and accumulates `∂loss/∂x` into
/// `grad` of every tensor that requires a gradient. Each operation's forward and backward rule sit together.
public final class Tensor {
    public internal(set) var value: Matrix
    /// Dense gradient, allocated on first accumulation.
    public internal(set) var grad: Matrix?
    /// Row-sparse gradient of a parameter read through `gather` (embedding tables), when enabled.
    public internal(set) var sparseGrad: SparseRowGradient?
    /// True for trainable leaves.
    public let isParameter: Bool
    /// Gather into this parameter records row-sparse gradients instead of a dense one.
    public let sparseGradients: Bool
    public let requiresGrad: Bool
    /// Gradient rows from `gather` that arrived before the dense gradient: added into it when `backward()` reaches
    /// this tensor (after every tensor that reads it, before its own rule), so a table read both whole and by rows
    /// is not first zero-filled for the rows and then added to the whole.
    var pendingRows: [(rows: [Int32], gradient: Matrix)] = []
    let inputs: [Tensor]
    let backwardRule: ((Tensor) -> Void)?

    /// A constant (no gradient).
    public init(_ value: Matrix) {
        self.value = value
        self.isParameter = false
        self.sparseGradients = false
        self.requiresGrad = false
        self.inputs = []
        self.backwardRule = nil
    }

    /// A trainable parameter. `sparseGradients: true` suits embedding tables read by `gather`.
    public init(parameter value: Matrix, sparseGradients: Bool = false) {
        self.value = value
        self.isParameter = true
        self.sparseGradients = sparseGradients
        self.requiresGrad = true
        self.inputs = []
        self.backwardRule = nil
        if sparseGradients { sparseGrad = SparseRowGradient(width: value.cols) }
    }

    /// The result of an operation.
    init(_ value: Matrix, inputs: [Tensor], backward: @escaping (Tensor) -> Void) {
        self.value = value
        self.isParameter = false
        self.sparseGradients = false
        self.inputs = inputs
        let needs = inputs.contains { $0.requiresGrad }
        self.requiresGrad = needs
        self.backwardRule = needs ? backward : nil
    }

    public var rows: Int { value.rows }
    public var cols: Int { value.cols }

    /// The value of a 1 × 1 tensor.
    public var scalar: Float {
        precondition(value.rows == 1 && value.cols == 1, "not a scalar")
        return value.storage[0]
    }

    /// Replaces a parameter's value (optimizers, checkpoint restore).
    public func assign(_ newValue: Matrix) {
        precondition(isParameter && newValue.rows == value.rows && newValue.cols == value.cols)
        value = newValue
    }

    /// Mutable access to a parameter's storage (optimizers).
    public func updateValue(_ body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        value.storage.withUnsafeMutableBufferPointer { body($0) }
    }

    /// Clears gradients (parameters keep their values).
    public func zeroGrad() {
        grad = nil
        pendingRows = []
        sparseGrad?.removeAll()
    }

    /// Adds `g` (same shape) into the dense gradient.
    func accumulate(_ g: Matrix) {
        guard requiresGrad else { return }
        if grad == nil { grad = g; return }
        addInPlace(&grad!, g)
    }

    /// Adds gradient rows `values[k·d …]` into rows `rows[k]`: row-sparse for tables created with
    /// `sparseGradients`, scatter-added into the dense gradient otherwise.
    func accumulateRows(_ rows: [Int32], _ values: [Float]) {
        accumulateRows(rows, of: Matrix(rows: rows.count, cols: cols, values: values))
    }

    /// Adds row i of `g` into row `rows[i]` of the gradient (rows may repeat): row-sparse for tables created with
    /// `sparseGradients`; into the dense gradient when it exists; else held until it does (`pendingRows`).
    func accumulateRows(_ rows: [Int32], of g: Matrix) {
        guard requiresGrad else { return }
        if sparseGradients {
            g.storage.withUnsafeBufferPointer { sparseGrad!.append(rows: rows, gradient: $0) }
        } else if grad == nil {
            pendingRows.append((rows, g))
        } else {
            scatterAdd(rows, g)
        }
    }

    /// Adds the held gather rows into the dense gradient, allocating it zeroed if nothing else arrived.
    func flushPendingRows() {
        guard !pendingRows.isEmpty else { return }
        for (rows, g) in pendingRows { scatterAdd(rows, g) }
        pendingRows = []
    }

    private func scatterAdd(_ rows: [Int32], _ g: Matrix) {
        withGradBuffer { Tensor.addRows(g, at: rows, into: $0.baseAddress!) }
    }

    /// Adds row i of `g` into row `rows[i]` of the row-major table at `table` (same width; rows may repeat).
    static func addRows(_ g: Matrix, at rows: [Int32], into table: UnsafeMutablePointer<Float>) {
        let d = g.cols
        g.storage.withUnsafeBufferPointer { gs in
            for (i, r) in rows.enumerated() { affinity_axpy(Int32(d), 1, gs.baseAddress! + i * d, table + Int(r) * d) }
        }
    }

    /// Calls `body` with the dense gradient buffer, allocating it zeroed if needed.
    func withGradBuffer(_ body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        if grad == nil { grad = Matrix(rows: value.rows, cols: value.cols) }
        grad!.storage.withUnsafeMutableBufferPointer { body($0) }
    }

    /// Back-propagates from this scalar: `grad` of every upstream tensor becomes ∂self/∂tensor (added to
    /// whatever it held). Intermediate gradients are released afterwards; parameter gradients are kept.
    public func backward() {
        precondition(value.rows == 1 && value.cols == 1, "backward() needs a scalar loss")
        // Iterative depth-first topological order (graphs can be deep: K layers × many ops).
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (node, expanded) = stack.popLast() {
            if expanded { order.append(node); continue }
            guard node.requiresGrad, visited.insert(ObjectIdentifier(node)).inserted else { continue }
            stack.append((node, true))
            for input in node.inputs where input.requiresGrad { stack.append((input, false)) }
        }
        accumulate(Matrix(rows: 1, cols: 1, repeating: 1))
        for node in order.reversed() {
            node.flushPendingRows()
            guard let rule = node.backwardRule, node.grad != nil else { continue }
            rule(node)
            if !node.isParameter { node.grad = nil }
        }
    }
}

/// Gradient rows for a subset of a parameter's rows: `indices[i]` receives `values[i·d ..< (i+1)·d]`.
/// Rows may repeat; optimizers add the repeats together.
public struct SparseRowGradient {
    public let width: Int
    public private(set) var indices: [Int32] = []
    public private(set) var values: [Float] = []

    init(width: Int) { self.width = width }

    mutating func append(rows: [Int32], gradient: UnsafeBufferPointer<Float>) {
        indices.append(contentsOf: rows)
        values.append(contentsOf: gradient)
    }

    mutating func removeAll() {
        indices.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
    }

    /// The equivalent dense gradient of a `[rows, width]` parameter (tests, small tables).
    public func dense(rows: Int) -> Matrix {
        var m = Matrix(rows: rows, cols: width)
        for (i, r) in indices.enumerated() {
            for c in 0..<width { m[Int(r), c] += values[i * width + c] }
        }
        return m
    }
}

@inline(__always)
func addInPlace(_ a: inout Matrix, _ b: Matrix) { Elementwise.addInPlace(&a, b) }
