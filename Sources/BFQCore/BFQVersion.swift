/// The version of bfq, written into the files it makes and printed by `bfq --version`.
public enum BFQVersion {
    public static let string = "0.1.0"
}
