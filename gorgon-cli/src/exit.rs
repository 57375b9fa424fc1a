//! Exit codes, the part of gorgon's interface that CI scripts read.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | the run finished and every threshold held |
//! | 1 | a threshold failed |
//! | 2 | bad usage or input: a flag, the plugin, the config |
//! | 3 | the run itself failed: a worker crashed, a node was lost |
//! | 130 | interrupted (Ctrl-C / SIGTERM); the partial report was printed |

use std::process::ExitCode;

/// The run finished and every threshold held.
pub const OK: u8 = 0;
/// The run finished but a threshold failed.
pub const THRESHOLD_FAILED: u8 = 1;
/// Bad usage or input.
pub const USAGE: u8 = 2;
/// The run itself failed.
pub const RUN_FAILED: u8 = 3;

/// Why gorgon stops early, which decides its exit code. The message is one
/// sentence for a person; the variant is the contract for scripts.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad usage or input: exit 2.
    #[error("{0:#}")]
    Usage(anyhow::Error),
    /// The run could not be carried out: exit 3.
    #[error("{0:#}")]
    Run(anyhow::Error),
}

impl Failure {
    pub fn usage(message: impl std::fmt::Display) -> Self {
        Failure::Usage(anyhow::anyhow!("{message}"))
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => USAGE,
            Failure::Run(_) => RUN_FAILED,
        }
    }
}

/// The exit code of a command that ran to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code(pub u8);

impl From<Code> for ExitCode {
    fn from(code: Code) -> Self {
        ExitCode::from(code.0)
    }
}
