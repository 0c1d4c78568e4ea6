#if canImport(Glibc)
import Glibc
#endif

/// How the UNet calls its C kernels (CBFQShims/BFQUNet.h).
enum ElementwiseKernels {
    /// AVX2 where the CPU has it, unless `BFQ_SCALAR` is set (the same bits either way).
    static let vectorized: Int32 = getenv("BFQ_SCALAR") == nil ? 1 : 0
}
