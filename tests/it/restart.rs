//! State survives a restart on the same data directory.

use crate::harness::{TestServer, moves};
use tierd::grpc::pb;

#[tokio::test]
async fn members_history_and_idempotency_survive_a_restart() {
    let mut server = TestServer::start().await;
    server.buy("ola", "p1", 60_000).await;
    server
        .client
        .record_return(server.refund("ola", "r1", "p1", 10_000))
        .await
        .expect("return");
    server
        .client
        .redeem_points(pb::RedeemPointsRequest {
            member_id: "ola".into(),
            transaction_id: "x1".into(),
            points: 100,
            order_id: String::new(),
            reward_id: String::new(),
        })
        .await
        .expect("redeem");
    let member = server.member("ola").await;
    let history = server.history("ola").await;

    let mut server = server.restart().await;
    assert_eq!(server.member("ola").await, member);
    assert_eq!(server.history("ola").await, history);
    let retry = server.buy("ola", "p1", 60_000).await;
    assert!(retry.duplicate, "the idempotency record survived");
    // The return still knows what is left of p1, and seqs go on.
    let over = server
        .client
        .record_return(server.refund("ola", "r2", "p1", 50_001))
        .await;
    assert_eq!(
        over.expect_err("only 500.00 left").code(),
        tonic::Code::InvalidArgument
    );
    server.buy("ola", "p2", 1_000_000).await;
    let after = server.history("ola").await;
    assert_eq!(
        moves(&after).last().map(|m| m.1.clone()),
        Some("platinum".into())
    );
    assert!(
        after.last().map(|c| c.seq) > history.last().map(|c| c.seq),
        "seqs go on after a restart: {after:?}"
    );
}

/// On the machine's clock, a write's answer, a later read and the stream
/// show one instant: times are kept to the microsecond everywhere (the
/// answer used to carry nanoseconds the store dropped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_s_answer_and_a_later_read_show_the_same_times() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let served = crate::process::serve(&dir.path().join("data"));
    let mut client = served.client().await;
    let answer = client
        .record_purchase(crate::process::purchase_now("m", "t1", 1_000))
        .await
        .expect("recorded")
        .into_inner();
    let written = answer.member.expect("member");
    let read = client
        .get_member(tierd::grpc::pb::GetMemberRequest {
            member_id: "m".into(),
        })
        .await
        .expect("read")
        .into_inner();
    assert_eq!(written.tier_since, read.tier_since);
    assert_eq!(written.enrolled_at, read.enrolled_at);
    let since = written.tier_since.expect("tier_since");
    assert_eq!(since.nanos % 1_000, 0, "microseconds: {since:?}");
    drop(client);
    crate::process::terminate(served);
}
