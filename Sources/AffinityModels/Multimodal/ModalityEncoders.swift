import AffinityCore
import AffinityData
import Foundation

/// A fully connected layer `x·W + b`, initialised as PyTorch's `nn.Linear` (W and b uniform in
/// ±1/√inputs), or with a Xavier-normal W (BM3 re-initialises its layers so).
struct LinearLayer {
    let weight: Tensor   // [inputs, outputs]
    let bias: Tensor     // [1, outputs]

    init(inputs: Int, outputs: Int, rng: inout SeededGenerator, xavierNormalWeight: Bool = false) {
        let bound = 1 / Float(inputs).squareRoot()
        var w = Matrix(rows: inputs, cols: outputs)
        if xavierNormalWeight {
            w = xavierNormal(rows: inputs, cols: outputs, rng: &rng)
        } else {
            for i in 0..<w.storage.count { w.storage[i] = (2 * rng.nextFloat() - 1) * bound }
        }
        var b = Matrix(rows: 1, cols: outputs)
        for i in 0..<outputs { b.storage[i] = (2 * rng.nextFloat() - 1) * bound }
        weight = Tensor(parameter: w)
        bias = Tensor(parameter: b)
    }

    func callAsFunction(_ x: Tensor) -> Tensor { Tensor.matmul(x, weight) + bias }

    var parameters: [Tensor] { [weight, bias] }
}

/// Item semantic graphs are frozen and depend only on (features, k, weighting): built once per process
/// and shared by every model trained in it (`affinity train --model freedom,sige …` builds each once).
enum ItemGraphCache {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var graphs: [String: SparseMatrix] = [:]

    static func cosineKNN(_ modality: Modality, k: Int, weight: ItemGraphs.EdgeWeight) -> SparseMatrix {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for x in modality.features.storage { h = (h ^ UInt64(x.bitPattern)) &* 0x100_0000_01B3 }
        let key = "\(modality.features.rows)x\(modality.features.cols)/\(h)/k\(k)/\(weight == .binary ? "b" : "s")"
        lock.lock()
        if let g = graphs[key] { lock.unlock(); return g }
        lock.unlock()
        let g = ItemGraphs.cosineKNN(modality.features, k: k, weight: weight)
        lock.lock(); graphs[key] = g; lock.unlock()
        return g
    }
}

/// Per-modality mixing weights: `modality_weights` as a comma-separated list in modality order, or by
/// default equal weights — except MMRec's {image, text} pair, where image gets `mm_image_weight` 0.1.
func modalityWeights(_ modalities: [Modality], given: String) throws -> [Float] {
    if given.isEmpty {
        let names = Set(modalities.map(\.name))
        if modalities.count == 2 && names == ["image", "text"] { return modalities.map { $0.name == "image" ? 0.1 : 0.9 } }
        return [Float](repeating: 1 / Float(modalities.count), count: modalities.count)
    }
    let parts = given.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
    guard parts.count == modalities.count, parts.allSatisfy({ $0 != nil && $0! >= 0 }) else {
        throw HyperparameterError.outOfRange("modality_weights", "give \(modalities.count) non-negative weights, one per modality (\(modalities.map(\.name).joined(separator: ", ")))")
    }
    let w = parts.map { $0! }, total = w.reduce(0, +)
    guard total > 0 else { throw HyperparameterError.outOfRange("modality_weights", "weights sum to 0") }
    return w.map { $0 / total }
}

/// FREEDOM's degree-sensitive edge pruning (Zhou & Shen, MM 2023, §3.2): keep `keep · |E|` edges of the
/// user–item graph, sampled without replacement with probability ∝ 1/√(d_u d_i), so edges between
/// high-degree nodes are dropped first. Weighted sampling without replacement by Efraimidis–Spirakis keys
/// (u^{1/w}, the largest keys win), which draws the same distribution as `torch.multinomial` without
/// replacement.
public enum DegreeSensitivePruning {
    public static func sample(_ r: SparseMatrix, keep: Double, rng: inout SeededGenerator) -> SparseMatrix {
        let itemDegree = r.columnCounts()
        let target = Int(Double(r.nonZeros) * keep)
        var keys = [(key: Float, edge: Int)]()
        keys.reserveCapacity(r.nonZeros)
        var rowOf = [Int32](repeating: 0, count: r.nonZeros)
        for u in 0..<r.rows {
            let du = Float(r.count(ofRow: u))
            for p in r.rowStart[u]..<r.rowStart[u + 1] {
                rowOf[p] = Int32(u)
                let w = 1 / (du * Float(itemDegree[Int(r.colIndex[p])])).squareRoot()
                // log(u)/w is monotone in u^{1/w}; u in (0, 1].
                let uniform = max(rng.nextFloat(), 1e-30)
                keys.append((Foundation.log(uniform) / w, p))
            }
        }
        keys.sort { $0.key > $1.key || ($0.key == $1.key && $0.edge < $1.edge) }
        let kept = keys.prefix(target).map(\.edge).sorted()
        return SparseMatrix(rows: r.rows, cols: r.cols, rowIndices: kept.map { rowOf[$0] }, colIndices: kept.map { r.colIndex[$0] })
    }
}

/// Items with no training interactions (cold items), whose ID embeddings never learned anything.
func coldItems(_ data: TrainingData) -> [Bool] {
    (0..<data.itemCount).map { data.itemUsers.count(ofRow: $0) == 0 }
}

/// Zeroes the rows of `m` flagged in `rows`.
func zeroRows(_ m: inout Matrix, _ rows: [Bool]) {
    for (r, flag) in rows.enumerated() where flag { for c in 0..<m.cols { m.storage[r * m.cols + c] = 0 } }
}
