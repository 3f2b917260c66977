import Testing
import Foundation
import AffinityCore

/// T-CE and R-CE (`Denoising`) on the pairwise and pointwise losses: gradients against central differences,
/// T-CE's choice of samples against its schedule, and the fused BPR-MF path against the op.
@Suite struct DenoisedLossTests {
    /// Scores whose per-sample losses are at least 0.1 apart (so a 1e-2 step never reorders T-CE's choice).
    static let positives: [Float] = [2.1, -0.4, 0.9, -1.7, 1.5, 0.2, -0.9, 3.0, -2.6, 0.5]
    static let negatives: [Float] = [-0.3, 0.8, -1.2, 0.1, 1.9, -2.2, 0.6, -0.7, 1.1, -1.6]

    func softplus(_ x: Double) -> Double { x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)) }
    func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

    /// The loss and the gradients of both score vectors from the tape.
    func run(_ form: PairLossForm, _ denoising: Denoising, _ p: [Float], _ n: [Float]) -> (Float, [Float], [Float]) {
        let sp = Tensor(parameter: Matrix(rows: p.count, cols: 1, values: p))
        let sn = Tensor(parameter: Matrix(rows: n.count, cols: 1, values: n))
        let loss = Loss.pairLoss(positive: sp, negative: sn, form: form, denoising: denoising)
        loss.backward()
        return (loss.scalar, sp.grad!.storage, sn.grad!.storage)
    }

    /// Central differences of `objective` at (p, n), step 1e-2, in Double.
    func numericGradients(_ p: [Float], _ n: [Float], _ objective: ([Float], [Float]) -> Double) -> ([Double], [Double]) {
        let h: Float = 1e-2
        func along(_ which: Int) -> [Double] {
            (0..<p.count).map { k in
                var (pp, np, pm, nm) = (p, n, p, n)
                if which == 0 { pp[k] += h; pm[k] -= h } else { np[k] += h; nm[k] -= h }
                return (objective(pp, np) - objective(pm, nm)) / Double(2 * h)
            }
        }
        return (along(0), along(1))
    }

    func relativeError(_ analytic: [Float], _ numeric: [Double]) -> Double {
        let diff = zip(analytic, numeric).reduce(0.0) { $0 + pow(Double($1.0) - $1.1, 2) }.squareRoot()
        return diff / max(numeric.reduce(0.0) { $0 + $1 * $1 }.squareRoot(), 1e-9)
    }

    /// Plain and truncated losses are functions of the scores (T-CE's choice is locally constant): their tape
    /// gradients match central differences of the op itself.
    @Test(arguments: [PairLossForm.bpr, .bce], [Denoising.none, .truncated(dropRate: 0.3)])
    func plainAndTruncatedMatchFiniteDifferences(form: PairLossForm, denoising: Denoising) {
        let (p, n) = (Self.positives, Self.negatives)
        let (_, gp, gn) = run(form, denoising, p, n)
        let (np, nn) = numericGradients(p, n) { Double(run(form, denoising, $0, $1).0) }
        #expect(relativeError(gp, np) < 1e-2 && relativeError(gn, nn) < 1e-2, "\(form) \(denoising)")
    }

    /// R-CE's weights carry no gradient: its tape gradient is that of Σ w ℓ / D with w frozen at the current scores
    /// (σ(s⁺ − s⁻)^β per pair; σ(s⁺)^β and σ(−s⁻)^β per sample in the pointwise form).
    @Test(arguments: [PairLossForm.bpr, .bce])
    func reweightedMatchesFiniteDifferencesWithFrozenWeights(form: PairLossForm) {
        let (p, n) = (Self.positives, Self.negatives), beta = 0.5
        let count = Double(p.count)
        let frozen: ([Float], [Float]) -> Double
        switch form {
        case .bpr:
            let w = (0..<p.count).map { pow(sigmoid(Double(p[$0] - n[$0])), beta) }
            frozen = { a, b in (0..<a.count).reduce(0.0) { $0 + w[$1] * softplus(Double(b[$1] - a[$1])) } / count }
        case .bce:
            let wp = p.map { pow(sigmoid(Double($0)), beta) }, wn = n.map { pow(sigmoid(-Double($0)), beta) }
            frozen = { a, b in
                (0..<a.count).reduce(0.0) { $0 + wp[$1] * softplus(-Double(a[$1])) + wn[$1] * softplus(Double(b[$1])) } / (2 * count)
            }
        }
        let (value, gp, gn) = run(form, .reweighted(beta: Float(beta)), p, n)
        #expect(abs(Double(value) - frozen(p, n)) < 1e-5)
        let (np, nn) = numericGradients(p, n, frozen)
        #expect(relativeError(gp, np) < 1e-2 && relativeError(gn, nn) < 1e-2)
        // And it differs from the plain loss's gradient (the weights do something).
        let (_, plain, _) = run(form, .none, p, n)
        #expect(relativeError(gp, plain.map(Double.init)) > 0.05)
    }

    @Test func dropRateFollowsTheSchedule() {
        let rate = { Denoising.dropRate(iteration: $0, maximum: 0.2, gradualIterations: 30_000) }
        #expect(rate(0) == 0)
        #expect(abs(rate(7_500) - 0.05) < 1e-12)
        #expect(abs(rate(15_000) - 0.1) < 1e-12)
        #expect(rate(30_000) == 0.2 && rate(90_000) == 0.2)
        #expect(Denoising.dropRate(iteration: 0, maximum: 0.2, gradualIterations: 0) == 0.2)
        #expect(Denoising.droppedCount(10, rate: 0.3) == 3 && Denoising.droppedCount(10, rate: 0.29) == 2)
    }

    /// At each point of the schedule, T-CE gives zero gradient to exactly the ⌊ε(t) · n⌋ positives (pairs) of
    /// largest loss, and to no other sample; the loss is the mean over the kept samples.
    @Test(arguments: [PairLossForm.bpr, .bce])
    func truncationDropsExactlyTheLargestLossPositivesAtTheScheduledRate(form: PairLossForm) {
        // 20 samples: duplicate the hand-built 10 with shifted scores so every loss is distinct.
        let p = Self.positives + Self.positives.map { $0 + 0.05 }, n = Self.negatives + Self.negatives.map { $0 - 0.03 }
        let losses: [Double] = (0..<p.count).map { form == .bpr ? softplus(Double(n[$0] - p[$0])) : softplus(-Double(p[$0])) }
        let byLoss = losses.indices.sorted { losses[$0] > losses[$1] }
        for (iteration, expectedDropped) in [(0, 0), (7_500, 1), (15_000, 2), (22_500, 3), (30_000, 4), (100_000, 4)] {
            let rate = Denoising.dropRate(iteration: iteration, maximum: 0.2, gradualIterations: 30_000)
            let (value, gp, gn) = run(form, .truncated(dropRate: rate), p, n)
            let zero = Set(gp.indices.filter { gp[$0] == 0 })
            #expect(zero == Set(byLoss.prefix(expectedDropped)), "iteration \(iteration): dropped \(zero.sorted())")
            // Negatives are never dropped in the pointwise form; a pair's negative shares its positive's fate.
            if form == .bce { #expect(gn.allSatisfy { $0 != 0 }) } else { #expect(zip(gp, gn).allSatisfy { $0 == -$1 }) }
            let kept = p.indices.filter { !zero.contains($0) }
            let expected = form == .bpr
                ? kept.reduce(0.0) { $0 + losses[$1] } / Double(kept.count)
                : (kept.reduce(0.0) { $0 + losses[$1] } + n.reduce(0.0) { $0 + softplus(Double($1)) }) / Double(kept.count + n.count)
            #expect(abs(Double(value) - expected) < 1e-5, "iteration \(iteration)")
        }
    }

    /// BPR-MF's fused loss with T-CE or R-CE equals `pairLoss` on the gathered rows' scores, in value and in the
    /// gradients of both tables; without denoising it equals the plain BPR op.
    @Test(arguments: [Denoising.none, .truncated(dropRate: 0.34), .reweighted(beta: 0.25)])
    func fusedFactorizationMatchesTheOp(denoising: Denoising) {
        var rng = SeededGenerator(seed: 41)
        func table(_ r: Int, _ c: Int) -> Matrix { Matrix(rows: r, cols: c, values: (0..<(r * c)).map { _ in 2 * rng.nextFloat() - 1 }) }
        let (u0, i0) = (table(5, 20), table(7, 20))
        let users: [Int32] = [0, 1, 3, 1, 4, 2], pos: [Int32] = [2, 5, 0, 2, 6, 1], neg: [Int32] = [1, 1, 4, 3, 0, 6]
        func run(fused: Bool) -> (Float, Matrix, Matrix) {
            let u = Tensor(parameter: u0), i = Tensor(parameter: i0)
            let loss: Tensor
            if fused {
                loss = Loss.bprFactorization(userTable: u, itemTable: i, users: users, positives: pos, negatives: neg, denoising: denoising)
            } else {
                let eu = Tensor.gather(u, rows: users)
                loss = Loss.pairLoss(positive: Tensor.rowDot(eu, Tensor.gather(i, rows: pos)), negative: Tensor.rowDot(eu, Tensor.gather(i, rows: neg)),
                                     form: .bpr, denoising: denoising)
            }
            loss.backward()
            return (loss.scalar, u.grad!, i.grad!)
        }
        let fused = run(fused: true), op = run(fused: false)
        #expect(abs(fused.0 - op.0) < 1e-6)
        #expect(maxDifference(fused.1, op.1) < 1e-6 && maxDifference(fused.2, op.2) < 1e-6)
    }
}
