//! The one mapping from service errors to gRPC statuses.
//!
//! Bad input is `INVALID_ARGUMENT` with the field named in the message and,
//! for programs, as a `google.rpc.BadRequest` field violation; a missing
//! member or purchase is `NOT_FOUND` with the request field that named it
//! the same way. A refused rules reload is `FAILED_PRECONDITION` with every
//! problem of the file as a `google.rpc.PreconditionFailure` violation
//! (type: the severity, subject: `file:line:column`, description: what is
//! wrong). A write whose outcome the store cannot confirm is `UNAVAILABLE`
//! ("retry with the same transaction_id"); other storage failures are
//! logged and answered as `INTERNAL` without internals.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{app::ProgramError, store::StoreError};

/// What a client is told when the store could not say whether a request
/// was recorded (unreachable, a failed flush, a stopped writer).
/// UNAVAILABLE is what standard gRPC retry policies retry, and the
/// transaction id makes the retry safe: it counts once, whatever happened.
pub const OUTCOME_UNKNOWN: &str = "the store could not confirm this request (unreachable, stopping, or \
     a failed flush): it may or may not be recorded; retry with the same transaction_id, which \
     counts it exactly once";

/// The status a client gets for `err`.
pub fn status_of(err: ProgramError) -> Status {
    let message = err.to_string();
    match err {
        ProgramError::InvalidArgument {
            field,
            message: why,
        } => Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_bad_request_violation(field, why),
        ),
        ProgramError::NotFound {
            field,
            message: why,
        } => Status::with_error_details(
            Code::NotFound,
            message,
            ErrorDetails::with_bad_request_violation(field, why),
        ),
        ProgramError::AlreadyExists(message) => Status::already_exists(message),
        ProgramError::FailedPrecondition { message, .. } => Status::failed_precondition(message),
        ProgramError::Unavailable(message) => Status::unavailable(message),
        ProgramError::RulesRejected { rejected, .. } => {
            let mut details = ErrorDetails::new();
            for problem in &rejected.diagnostics {
                let at = format!(
                    "{}:{}:{}",
                    problem.file.display(),
                    problem.line,
                    problem.column
                );
                details.add_precondition_failure_violation(
                    problem.severity.as_str(),
                    at,
                    problem.message.clone(),
                );
            }
            Status::with_error_details(Code::FailedPrecondition, message, details)
        }
        ProgramError::Store(
            inner @ (StoreError::Unavailable(_)
            | StoreError::Durability(_)
            | StoreError::WriterStopped),
        ) => {
            tracing::warn!(error = %inner, "a write's outcome is unknown");
            Status::unavailable(OUTCOME_UNKNOWN)
        }
        ProgramError::Store(inner) => {
            tracing::error!(error = %inner, "storage failure");
            Status::internal("storage failure; the request was not recorded")
        }
    }
}

/// The error slot of a batch event refused with `err`: the status it
/// would have had alone, and the field at fault.
pub fn event_error(err: ProgramError) -> crate::grpc::pb::EventError {
    let field = match &err {
        ProgramError::InvalidArgument { field, .. }
        | ProgramError::NotFound { field, .. }
        | ProgramError::FailedPrecondition { field, .. } => (*field).to_owned(),
        ProgramError::AlreadyExists(_) => "transaction_id".to_owned(),
        _ => String::new(),
    };
    let status = status_of(err);
    crate::grpc::pb::EventError {
        code: status.code() as i32,
        message: status.message().to_owned(),
        field,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_outcome_is_unavailable_with_the_retry_advice() {
        for unknown in [
            StoreError::Unavailable("connection reset".into()),
            StoreError::Durability("fdatasync: EIO".into()),
            StoreError::WriterStopped,
        ] {
            let status = status_of(ProgramError::Store(unknown));
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            assert!(
                status
                    .message()
                    .contains("retry with the same transaction_id"),
                "{status:?}"
            );
        }
        let corrupt = status_of(ProgramError::Store(StoreError::Corrupt {
            key: "m/x".into(),
            reason: "truncated".into(),
        }));
        assert_eq!(corrupt.code(), Code::Internal);
    }

    #[test]
    fn a_bad_field_is_named_in_the_message_and_the_details() {
        let status = status_of(ProgramError::invalid(
            "amount_minor",
            "must be greater than 0",
        ));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "amount_minor: must be greater than 0");
        let bad = status.get_details_bad_request().expect("field violations");
        assert_eq!(bad.field_violations[0].field, "amount_minor");
        assert_eq!(
            bad.field_violations[0].description,
            "must be greater than 0"
        );
    }
}
