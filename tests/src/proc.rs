//! Long-running child processes (`quorumctl follow`, `quorumctl wait`) and reading their output
//! line by line with a deadline: the workspace's test kit's guard and reader.

pub use testkit::{ChildGuard, Lines};
