import AffinityKernels

/// Process-level memory settings for training.
public enum Memory {
    /// Tells glibc's allocator to keep freed memory instead of returning it to the system. Training
    /// allocates and frees many large matrices per batch (e.g. LightGCN's 70,839 × 64 activations on
    /// Gowalla); by default each such block is a fresh `mmap` and its pages fault in again on every use,
    /// which cost LightGCN 11 of 25 seconds per Gowalla epoch. The `affinity` command calls this at start;
    /// library users who train in-process may call it too. It changes the whole process's allocator, so
    /// the library never calls it by itself. No effect on other platforms.
    public static func configureForTraining() {
        affinity_keep_freed_memory()
    }
}
