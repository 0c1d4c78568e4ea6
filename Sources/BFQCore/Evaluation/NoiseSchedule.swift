/// SD's training noise schedule (1000 steps, "scaled_linear" betas from 0.00085 to 0.012, as in SD-v1.5's and
/// SD-2's scheduler configs): abar_t = prod over s <= t of (1 - beta_s), beta_s = (sqrt(b0) + s (sqrt(b1) - sqrt(b0)) / 999)^2.
public enum NoiseSchedule {
    /// abar_t for t in 0...999, computed in f64.
    public static let alphaBars: [Double] = {
        let (start, end) = (0.00085.squareRoot(), 0.012.squareRoot())
        var product = 1.0
        return (0 ..< 1000).map { step in
            let root = start + Double(step) * (end - start) / 999
            product *= 1 - root * root
            return product
        }
    }()
}
