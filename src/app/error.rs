//! Why the service refused a request: one variant per answer a client can
//! act on, mapped to a gRPC status in one place (`crate::grpc::status`).

use crate::{domain::earn::Overearned, report::ReportError, rules::Rejected, store::StoreError};

/// Why a command was refused. A refused command changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// The request is malformed; `field` names what is wrong.
    #[error("{field}: {message}")]
    InvalidArgument {
        /// The request field at fault, as named in the proto.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A member or original transaction that does not exist.
    #[error("{field}: {message}")]
    NotFound {
        /// The request field that named it.
        field: &'static str,
        /// What was not found.
        message: String,
    },
    /// A transaction id reused with a different payload.
    #[error("{0}")]
    AlreadyExists(String),
    /// Well-formed, but the member's state (or the rules) does not allow
    /// it; `field` names the request field it is about, empty when it is
    /// about none (a reload with no rules file).
    #[error("{message}")]
    FailedPrecondition {
        /// The request field it is about, as named in the proto.
        field: &'static str,
        /// Why, starting with the field when there is one.
        message: String,
    },
    /// A rules reload was refused: the running rules stay.
    #[error("{rejected}; the running rules stay version {running}")]
    RulesRejected {
        /// Every problem of the file.
        rejected: Rejected,
        /// The version still in force.
        running: String,
    },
    /// The service is stopping or cannot serve this now; try again.
    #[error("{0}")]
    Unavailable(String),
    /// A storage failure: the request was not recorded.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ProgramError {
    /// A malformed field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ProgramError::InvalidArgument {
            field,
            message: message.into(),
        }
    }

    /// Refused in the member's state, about `field`.
    pub fn precondition(field: &'static str, message: impl Into<String>) -> Self {
        ProgramError::FailedPrecondition {
            field,
            message: message.into(),
        }
    }

    /// The member named by `member_id` does not exist.
    pub fn unknown_member(member_id: &str) -> Self {
        ProgramError::NotFound {
            field: "member_id",
            message: format!("no member {member_id:?}"),
        }
    }
}

impl From<ReportError> for ProgramError {
    fn from(err: ReportError) -> Self {
        match (err.field(), err) {
            (_, ReportError::Store(store)) => ProgramError::Store(store),
            (Some(field), other) => ProgramError::invalid(field, other.to_string()),
            (None, other) => ProgramError::invalid("report", other.to_string()),
        }
    }
}

/// The rules in force would pay an event more than their ceiling: the
/// request is well-formed, the rules refuse it (FAILED_PRECONDITION,
/// naming the rule).
impl From<Overearned> for ProgramError {
    fn from(err: Overearned) -> Self {
        ProgramError::precondition("points", format!("points: {err}"))
    }
}
