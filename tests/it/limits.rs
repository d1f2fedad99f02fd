//! Limits: an oversized request is refused with OUT_OF_RANGE (tonic 0.14.5's
//! code for it), load beyond the in-flight limit with RESOURCE_EXHAUSTED,
//! while health keeps answering.

use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::harness::TestServer;
use tierd::grpc::{ServeLimits, ServeOptions, pb};

#[tokio::test]
async fn an_oversized_request_is_refused_before_it_is_read() {
    let mut server = TestServer::start().await;
    let mut request = server.purchase("m", "t1", 1_000);
    request.store_id = "s".repeat(70 * 1024);
    let status = server
        .client
        .record_purchase(request)
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");
    let missing = server
        .client
        .get_member(pb::GetMemberRequest {
            member_id: "m".into(),
        })
        .await
        .expect_err("nothing recorded");
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn beyond_the_in_flight_limit_requests_are_shed_and_health_still_answers() {
    let mut server = TestServer::with_options(ServeOptions {
        limits: ServeLimits {
            max_in_flight: 0,
            ..ServeLimits::default()
        },
        ..ServeOptions::default()
    })
    .await;
    let request = server.purchase("m", "t1", 1_000);
    let status = server
        .client
        .record_purchase(request)
        .await
        .expect_err("shed");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("retry"), "{status:?}");
    let health = HealthClient::new(server.channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health is never shed")
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);
}

#[tokio::test]
async fn a_client_deadline_is_honoured_and_a_retry_is_safe() {
    let mut server = TestServer::start().await;
    let mut request = tonic::Request::new(server.purchase("m", "t1", 1_000));
    request.set_timeout(std::time::Duration::from_nanos(1));
    // Past its deadline the call fails, whether or not the write happened...
    let status = server
        .client
        .record_purchase(request)
        .await
        .expect_err("deadline");
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    // ...and the retry settles it: recorded once.
    server.buy("m", "t1", 1_000).await;
    assert!(server.buy("m", "t1", 1_000).await.duplicate);
    assert_eq!(server.member("m").await.purchase_count, 1);
}
