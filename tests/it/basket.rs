//! Baskets through the server: the peers' figures (Open Loyalty's earning
//! rule suites) reproduced with rules written for them, and a basket whose
//! lines do not add up refused naming the field.

use tonic::Code;

use crate::harness::{TestServer, assert_refused};
use tierd::grpc::pb;

/// Rules with the given `earning:` block (indented two spaces).
fn rules(earning: &str) -> String {
    format!(
        "program: baskets\nversion: b1\ncurrency: EUR\nwindow: rolling 12 months\n\
         earning:\n{earning}tiers:\n  - id: member\n"
    )
}

fn line(
    sku: &str,
    category: &str,
    quantity: i64,
    amount_minor: i64,
    labels: &[&str],
) -> pb::PurchaseLine {
    pb::PurchaseLine {
        sku: sku.into(),
        category: category.into(),
        quantity,
        amount_minor,
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
    }
}

/// The peers' basket: 12.00 labelled red, 100.00 labelled blue (and xxl),
/// 40.00 of delivery.
fn basket() -> Vec<pb::PurchaseLine> {
    vec![
        line("123", "shirts", 1, 1_200, &["red"]),
        line("456", "shirts", 2, 10_000, &["blue", "xxl"]),
        line("ship", "delivery", 1, 4_000, &[]),
    ]
}

/// A server under `earning` where ann bought the basket as `b1`, and the
/// points the basket earned.
async fn bought_basket(earning: &str) -> (TestServer, i64) {
    bought_basket_under(&rules(earning)).await
}

/// A server under the rules `text` where ann bought the basket as `b1`,
/// and the points the basket earned.
async fn bought_basket_under(text: &str) -> (TestServer, i64) {
    let mut server = TestServer::with_rules(text).await;
    let mut request = server.purchase("ann", "b1", 15_200);
    request.lines = basket();
    let points = server
        .client
        .record_purchase(request)
        .await
        .expect("purchase accepted")
        .into_inner()
        .points_earned;
    (server, points)
}

/// Points the basket earns under `earning`.
async fn earned(earning: &str) -> i64 {
    bought_basket(earning).await.1
}

#[tokio::test]
async fn baskets_earn_the_peers_figures() {
    let cases = [
        (
            "4 points per unit on every line",
            "  points_per_unit: 1\n  line_rules:\n    - { name: all, points_per_unit: 4 }\n",
            608,
        ),
        (
            "delivery and label red excluded",
            "  points_per_unit: 1\n  line_rules:\n    - name: goods\n      points_per_unit: 4\n      exclude: { categories: [delivery], labels: [red] }\n",
            400,
        ),
        (
            "label multipliers red x3, blue x6",
            "  points_per_unit: 1\n  line_rules:\n    - name: labels\n      points_per_unit: 4\n      multipliers: { labels: { red: 3, blue: 6 } }\n",
            2_704,
        ),
        (
            "red x0 excludes, blue x2 and xxl x2: the largest, not both",
            "  points_per_unit: 1\n  line_rules:\n    - name: labels\n      points_per_unit: 4\n      multipliers: { labels: { red: 0, blue: 2, xxl: 2 } }\n",
            960,
        ),
        (
            "only red earns (Open Loyalty's figure)",
            "  points_per_unit: 1\n  line_rules:\n    - { name: red, points_per_unit: 4, only: { labels: [red] } }\n",
            48,
        ),
        (
            "only blue earns",
            "  points_per_unit: 1\n  line_rules:\n    - { name: blue, points_per_unit: 4, only: { label: blue } }\n",
            400,
        ),
        (
            "only shirts, red excluded: only and exclude together",
            "  points_per_unit: 1\n  line_rules:\n    - name: shirts\n      points_per_unit: 4\n      only: { categories: [shirts] }\n      exclude: { labels: [red] }\n",
            400,
        ),
        (
            "red x0 excludes, blue x2 and xxl x2 multiplied: x4",
            "  points_per_unit: 1\n  line_rules:\n    - name: labels\n      points_per_unit: 4\n      multipliers: { labels: { red: 0, blue: 2, xxl: 2 } }\n      combine: multiply\n",
            1_760,
        ),
        (
            "combine: largest says what the default does",
            "  points_per_unit: 1\n  line_rules:\n    - name: labels\n      points_per_unit: 4\n      multipliers: { labels: { red: 0, blue: 2, xxl: 2 } }\n      combine: largest\n",
            960,
        ),
        (
            "a minimum of 3 shirts, met by the basket's 3",
            "  points_per_unit: 1\n  line_rules:\n    - { name: shirts, points_per_unit: 4, only: { categories: [shirts] }, minimum: { quantity: 3 } }\n",
            448,
        ),
        (
            "a minimum of 4 shirts is missed: the rule pays nothing",
            "  points_per_unit: 1\n  line_rules:\n    - { name: shirts, points_per_unit: 4, only: { categories: [shirts] }, minimum: { quantity: 4 } }\n",
            0,
        ),
        (
            "a minimum of 112.00 on shirts, met to the cent",
            "  points_per_unit: 1\n  line_rules:\n    - { name: shirts, points_per_unit: 4, only: { categories: [shirts] }, minimum: { amount: \"112.00\" } }\n",
            448,
        ),
        (
            "a minimum of 112.01 on shirts is missed",
            "  points_per_unit: 1\n  line_rules:\n    - { name: shirts, points_per_unit: 4, only: { categories: [shirts] }, minimum: { amount: \"112.01\" } }\n",
            0,
        ),
        (
            "a missed minimum does not stop the rules after a final rule",
            "  points_per_unit: 1\n  line_rules:\n    - { name: big, points_per_unit: 10, minimum: { amount: \"200.00\" }, final: true }\n    - { name: all, points_per_unit: 4 }\n",
            608,
        ),
        (
            "two earning rules add up",
            "  points_per_unit: 1\n  line_rules:\n    - { name: ten, points_per_unit: 10 }\n    - { name: four, points_per_unit: 4 }\n",
            2_128,
        ),
        (
            "buy SKU 123: +100 on top of 4 per unit",
            "  points_per_unit: 1\n  line_rules:\n    - { name: all, points_per_unit: 4 }\n    - { name: new blend, buy: { sku: \"123\" }, points: 100 }\n",
            708,
        ),
        (
            "per unit bought: 2 units of SKU 456",
            "  points_per_unit: 1\n  line_rules:\n    - { name: shirts, buy: { sku: \"456\" }, points: 50, per: unit }\n",
            100,
        ),
        (
            "a final rule stops the ones after it",
            "  points_per_unit: 1\n  line_rules:\n    - { name: four, points_per_unit: 4, final: true }\n    - { name: ten, points_per_unit: 10 }\n",
            608,
        ),
        (
            "the bonus script reads the lines: 7 per unit labelled xxl",
            "  points_per_unit: 0\n  bonus: |\n    let n = 0; for l in lines { if \"xxl\" in l.labels { n += l.quantity * 7 } } n\n",
            14,
        ),
        (
            "below the minimum order nothing is earned",
            "  points_per_unit: 4\n  minimum_order: \"200.00\"\n",
            0,
        ),
    ];
    for (what, earning, points) in cases {
        assert_eq!(earned(earning).await, points, "{what}");
    }
}

#[tokio::test]
async fn a_purchase_without_lines_earns_as_before() {
    let earning = "  points_per_unit: 1\n  line_rules:\n    - { name: all, points_per_unit: 4 }\n";
    let mut server = TestServer::with_rules(&rules(earning)).await;
    let reply = server.buy("ann", "p1", 15_200).await;
    assert_eq!(reply.points_earned, 152, "points_per_unit on the amount");
}

#[tokio::test]
async fn lines_that_do_not_add_up_are_refused_and_nothing_is_counted() {
    let mut server = TestServer::start().await;
    let mut request = server.purchase("ann", "b1", 15_000);
    request.lines = basket();
    let status = server
        .client
        .record_purchase(request)
        .await
        .expect_err("15,200 in lines for a 15,000 purchase");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("lines:"), "{status:?}");
    assert!(status.message().contains("15200"), "{status:?}");
    let mut request = server.purchase("ann", "b2", 15_200);
    request.lines = basket();
    request.lines[1].quantity = 0;
    let status = server
        .client
        .record_purchase(request)
        .await
        .expect_err("no units");
    assert!(status.message().contains("lines[1].quantity"), "{status:?}");
    let status = server
        .client
        .get_member(pb::GetMemberRequest {
            member_id: "ann".into(),
        })
        .await
        .expect_err("nothing was recorded");
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn a_retry_with_other_lines_is_a_conflict() {
    let mut server = TestServer::start().await;
    let mut request = server.purchase("ann", "b1", 15_200);
    request.lines = basket();
    server
        .client
        .record_purchase(request.clone())
        .await
        .expect("first");
    let again = server
        .client
        .record_purchase(request.clone())
        .await
        .expect("a retry")
        .into_inner();
    assert!(again.duplicate);
    request.lines[0].labels.push("sale".into());
    let status = server
        .client
        .record_purchase(request)
        .await
        .expect_err("same id, other basket");
    assert_eq!(status.code(), Code::AlreadyExists);
}

/// A two-tier ladder where gold earns 1.5 times, the multiplier of the
/// tier before or after the purchase as `applies` says.
fn tiered(applies: &str) -> String {
    format!(
        "program: tiered\nversion: t1\ncurrency: EUR\nwindow: rolling 12 months\n\
         earning:\n  points_per_unit: 1\n  tier_multipliers: {{ gold: 1.5 }}\n  tier_rate_applies: {applies}\n\
         tiers:\n  - id: silver\n  - id: gold\n    qualify: {{ purchase_volume: \"500.00\" }}\n"
    )
}

/// Points of: a silver member's 100.00, the 500.00 that makes another
/// member gold, and that gold member's next 100.00.
async fn tier_rate_figures(applies: &str) -> [i64; 3] {
    let mut server = TestServer::with_rules(&tiered(applies)).await;
    let silver = server.buy("sam", "s1", 10_000).await;
    assert_eq!(
        silver.member.as_ref().map(|m| m.tier_id.as_str()),
        Some("silver")
    );
    let promoting = server.buy("gil", "g1", 50_000).await;
    assert!(promoting.tier_change.is_some(), "500.00 makes gold");
    let gold = server.buy("gil", "g2", 10_000).await;
    [
        silver.points_earned,
        promoting.points_earned,
        gold.points_earned,
    ]
}

#[tokio::test]
async fn the_tier_multiplies_points_before_or_after_the_purchase_promotes() {
    assert_eq!(tier_rate_figures("before").await, [100, 500, 150]);
    assert_eq!(tier_rate_figures("after").await, [100, 750, 150]);
}

#[tokio::test]
async fn members_and_rules_show_what_each_tier_gives() {
    let mut server = TestServer::start().await;
    // 450.00 makes a bronze member silver (example rules).
    let reply = server.buy("ann", "p1", 45_000).await;
    let member = reply.member.expect("member");
    assert_eq!(member.tier_id, "silver");
    let texts = |list: &[pb::Benefit]| list.iter().map(|b| b.text.clone()).collect::<Vec<_>>();
    assert_eq!(texts(&member.benefits), ["member prices", "free shipping"]);
    let next = member.next_tier.expect("gold is next");
    assert_eq!(texts(&next.benefits), ["free shipping", "lounge access"]);
    assert_eq!(
        next.benefits[1]
            .details
            .get("visits_per_year")
            .map(String::as_str),
        Some("4")
    );
    // One point is worth one cent in the example rules.
    assert_eq!(member.points_value_minor, member.points_balance);
    assert!(member.points_balance > 0);
    let rules = server
        .client
        .get_rules(pb::GetRulesRequest {})
        .await
        .expect("rules")
        .into_inner();
    let ladder: Vec<(String, usize)> = rules
        .tiers
        .iter()
        .map(|t| (t.id.clone(), t.benefits.len()))
        .collect();
    assert_eq!(
        ladder,
        [
            ("bronze".to_owned(), 1),
            ("silver".to_owned(), 2),
            ("gold".to_owned(), 2),
            ("platinum".to_owned(), 3)
        ]
    );
}

#[tokio::test]
async fn a_backdated_adjustment_counts_and_expires_as_if_earned_then() {
    let expiring = "program: e\nversion: e1\ncurrency: EUR\nwindow: rolling 12 months\n\
                    earning:\n  points_per_unit: 1\npoints_expiry:\n  months: 1\ntiers:\n  - id: member\n";
    let mut server = TestServer::with_rules(expiring).await;
    server
        .client
        .upsert_member(pb::UpsertMemberRequest {
            member_id: "ann".into(),
            ..Default::default()
        })
        .await
        .expect("enrolled");
    let now = server.clock.now();
    let adjust = |txn: &str, points: i64, days_ago: i64| pb::AdjustPointsRequest {
        member_id: "ann".into(),
        transaction_id: txn.into(),
        points,
        reason: "migrated from the old system".into(),
        occurred_at: Some(tierd::grpc::convert::timestamp(
            now - chrono::TimeDelta::days(days_ago),
        )),
    };
    for (txn, points, days_ago) in [("a", 100, 40), ("b", 50, 400), ("c", 30, 10)] {
        server
            .client
            .adjust_points(adjust(txn, points, days_ago))
            .await
            .expect("adjusted");
    }
    let member = server.member("ann").await;
    // 100 earned 40 days ago and 50 earned 400 days ago have lapsed
    // (1 month); the 50 is outside the 12-month window too.
    assert_eq!((member.points_balance, member.qualifying_points), (30, 130));
    let status = server
        .client
        .adjust_points(adjust("d", 5, -1))
        .await
        .expect_err("tomorrow");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("occurred_at:"), "{status:?}");
    server.clock.advance(chrono::TimeDelta::days(25));
    assert_eq!(server.member("ann").await.points_balance, 0, "c lapsed too");
}

/// A return of `lines` of ann's purchase `b1`, the amount left to them.
fn give_back(
    server: &TestServer,
    txn: &str,
    lines: Vec<pb::ReturnLine>,
) -> pb::RecordReturnRequest {
    pb::RecordReturnRequest {
        lines,
        ..server.refund("ann", txn, "b1", 0)
    }
}

/// The answer to `request`, which must be accepted.
async fn return_accepted(
    server: &mut TestServer,
    request: pb::RecordReturnRequest,
) -> pb::RecordReturnResponse {
    server
        .client
        .record_return(request)
        .await
        .expect("return accepted")
        .into_inner()
}

fn returned(sku: &str, quantity: i64, amount_minor: i64) -> pb::ReturnLine {
    pb::ReturnLine {
        sku: sku.into(),
        quantity,
        amount_minor,
    }
}

/// 4 points per unit, delivery excluded, +100 for SKU 123: the basket
/// earns 148 on its first line, 400 on its second, 0 on delivery.
const LINE_EARNING: &str = "  points_per_unit: 1\n  line_rules:\n    - name: goods\n      points_per_unit: 4\n      exclude: { categories: [delivery] }\n    - { name: new blend, buy: { sku: \"123\" }, points: 100 }\n";

#[tokio::test]
async fn a_return_naming_lines_takes_back_exactly_what_they_earned() {
    let (mut server, points) = bought_basket(LINE_EARNING).await;
    assert_eq!(points, 548);
    let cases = [
        ("r1", vec![returned("ship", 1, 0)], 4_000, 0),
        ("r2", vec![returned("456", 1, 0)], 5_000, 200),
        ("r3", vec![returned("123", 0, 1_200)], 1_200, 148),
    ];
    let mut sent = Vec::new();
    for (txn, lines, amount, points) in cases {
        let request = give_back(&server, txn, lines);
        sent.push(request.clone());
        let answer = return_accepted(&mut server, request).await;
        assert_eq!(
            (answer.amount_returned_minor, answer.points_reversed),
            (amount, points),
            "{txn}"
        );
    }
    let ann = server.member("ann").await;
    assert_eq!(
        (
            ann.points_balance,
            ann.qualifying_points,
            ann.lifetime_value_minor
        ),
        (200, 200, 5_000)
    );
    let retry = server
        .client
        .record_return(sent[1].clone())
        .await
        .expect("a retry")
        .into_inner();
    assert!(retry.duplicate);
    assert_eq!(
        (retry.amount_returned_minor, retry.points_reversed),
        (5_000, 200)
    );
    assert_eq!(server.member("ann").await.points_balance, 200, "once");

    // What is left of the basket: one unit of 456.
    let refused = [
        (
            vec![returned("tea", 1, 0)],
            0,
            Code::InvalidArgument,
            "lines",
        ),
        (
            vec![returned("456", 2, 0)],
            0,
            Code::InvalidArgument,
            "lines",
        ),
        (
            vec![returned("456", 1, 50)],
            0,
            Code::InvalidArgument,
            "lines",
        ),
        (vec![returned("", 1, 0)], 0, Code::InvalidArgument, "lines"),
        (
            vec![returned("456", 1, 0)],
            4_999,
            Code::InvalidArgument,
            "amount_minor",
        ),
    ];
    for (i, (lines, amount, code, field)) in refused.into_iter().enumerate() {
        let mut request = give_back(&server, &format!("bad{i}"), lines);
        request.amount_minor = amount;
        assert_refused(server.client.record_return(request).await, code, field);
    }
    let rest = give_back(&server, "r4", vec![returned("456", 1, 0)]);
    let answer = server
        .client
        .record_return(rest)
        .await
        .expect("the last unit")
        .into_inner();
    assert_eq!(
        (answer.amount_returned_minor, answer.points_reversed),
        (5_000, 200)
    );
    let ann = server.member("ann").await;
    assert_eq!((ann.points_balance, ann.purchase_count), (0, 0));

    server.buy("ann", "sum", 1_000).await;
    let mut by_line = server.refund("ann", "r5", "sum", 0);
    by_line.lines = vec![returned("123", 1, 0)];
    assert_refused(
        server.client.record_return(by_line).await,
        Code::FailedPrecondition,
        "lines",
    );
}

fn redeem(member: &str, txn: &str, points: i64, order_id: &str) -> pb::RedeemPointsRequest {
    pb::RedeemPointsRequest {
        member_id: member.into(),
        transaction_id: txn.into(),
        points,
        order_id: order_id.into(),
        reward_id: String::new(),
    }
}

#[tokio::test]
async fn points_redeemed_for_an_order_come_back_when_it_is_refunded() {
    let mut server = TestServer::with_rules(&rules("  points_per_unit: 1\n")).await;
    server.buy("ann", "p0", 50_000).await;
    // The points pay for order p1 before the till records it.
    let paid = redeem("ann", "x1", 300, "p1");
    server
        .client
        .redeem_points(paid.clone())
        .await
        .expect("redeemed");
    server.buy("ann", "p1", 10_000).await;
    let ann = server.member("ann").await;
    assert_eq!((ann.points_balance, ann.qualifying_points), (300, 600));

    let half = server.refund("ann", "r1", "p1", 5_000);
    let answer = server
        .client
        .record_return(half.clone())
        .await
        .expect("return")
        .into_inner();
    assert_eq!(
        (answer.points_reversed, answer.points_recredited),
        (50, 150)
    );
    let ann = server.member("ann").await;
    assert_eq!(
        (ann.points_balance, ann.qualifying_points),
        (400, 550),
        "the redeemed points are back, not as qualifying points"
    );
    let retry = server
        .client
        .record_return(half)
        .await
        .expect("a retry")
        .into_inner();
    assert!(retry.duplicate);
    assert_eq!(retry.points_recredited, 150);
    assert_eq!(server.member("ann").await.points_balance, 400, "once");

    let rest = server
        .client
        .record_return(server.refund("ann", "r2", "p1", 5_000))
        .await
        .expect("return of the rest")
        .into_inner();
    assert_eq!(rest.points_recredited, 150, "all 300 are back");
    let ann = server.member("ann").await;
    assert_eq!((ann.points_balance, ann.qualifying_points), (500, 500));

    let mut other_order = paid;
    other_order.order_id = "p0".into();
    let status = server
        .client
        .redeem_points(other_order)
        .await
        .expect_err("same id, another order");
    assert_eq!(status.code(), Code::AlreadyExists);
    server.buy("bob", "b1", 10_000).await;
    assert_refused(
        server
            .client
            .redeem_points(redeem("ann", "x2", 10, "b1"))
            .await,
        Code::InvalidArgument,
        "order_id",
    );
    assert_eq!(
        server.member("ann").await.points_balance,
        500,
        "nothing redeemed"
    );
}

/// The points the basket earns under `earning`, and what returning one
/// unit of each SKU in `skus`, in turn, takes back.
async fn taken_back(earning: &str, skus: &[&str]) -> (i64, Vec<i64>) {
    let (mut server, points) = bought_basket(earning).await;
    let mut taken = Vec::new();
    for (n, sku) in skus.iter().enumerate() {
        let request = give_back(&server, &format!("r{n}"), vec![returned(sku, 1, 0)]);
        taken.push(return_accepted(&mut server, request).await.points_reversed);
    }
    (points, taken)
}

/// A per-unit rule limited with `only` gives each line exactly what it
/// earned, so a return takes back exactly that: the bonus script that had
/// to say "4 per unit on red" shared its 48 points over every line by
/// amount, and returning the delivery took back points it never earned.
#[tokio::test]
async fn a_return_takes_back_only_what_an_only_rule_paid_the_line() {
    let only_red = "  points_per_unit: 1\n  line_rules:\n    - { name: red, points_per_unit: 4, only: { labels: [red] } }\n";
    let by_script = "  points_per_unit: 0\n  bonus: |\n    let n = 0; for l in lines { if \"red\" in l.labels { n += l.amount * 4 / 100 } } n\nscript_time_limit: 100ms\n";
    // The script's 48 shared by amount (12.00, 100.00, 40.00): 4, 31, 13.
    assert_eq!(
        taken_back(only_red, &["ship", "123"]).await,
        (48, vec![0, 48])
    );
    assert_eq!(
        taken_back(by_script, &["ship", "123"]).await,
        (48, vec![13, 4])
    );
}

/// A bonus script may give its points line by line (a list, or a map by
/// line index), and each line's return takes back its own: 7 per unit
/// labelled xxl, as one number, was shared by amount (1, 9 and 4 of 14),
/// and half the shirts took back 4 of their 9.
#[tokio::test]
async fn a_bonus_given_per_line_is_taken_back_with_its_line() {
    // A budget a loaded debug build cannot overrun: these scripts are about
    // what they answer, not how fast.
    let bonus = |script: &str| {
        format!("  points_per_unit: 0\n  bonus: |\n    {script}\nscript_time_limit: 100ms\n")
    };
    let per_line = bonus(r#"lines.map(|l| if "xxl" in l.labels { l.quantity * 7 } else { 0 })"#);
    let by_index = bonus(r##"#{ "1": 14 }"##);
    let one_number =
        bonus(r#"let n = 0; for l in lines { if "xxl" in l.labels { n += l.quantity * 7 } } n"#);
    for earning in [per_line, by_index] {
        assert_eq!(
            taken_back(&earning, &["ship", "456", "456"]).await,
            (14, vec![0, 7, 7]),
            "{earning}"
        );
    }
    assert_eq!(
        taken_back(&one_number, &["ship", "456", "456"]).await,
        (14, vec![4, 4, 5])
    );
    let wrong_length = bonus("[1, 2]");
    assert_eq!(
        taken_back(&wrong_length, &[]).await,
        (0, vec![]),
        "a list that does not fit the basket gives no bonus, as a failing script"
    );
}

/// A rule with a minimum pays while its lines meet it; a return that takes
/// them below it takes back what the rule paid, from every line it paid,
/// returned or not.
#[tokio::test]
async fn a_return_below_a_rule_s_minimum_takes_back_what_the_rule_paid() {
    let spend = "  points_per_unit: 1\n  line_rules:\n    - { name: shirts, points_per_unit: 4, only: { categories: [shirts] }, minimum: { amount: \"100.00\" } }\n";
    // 100.00 of shirts left after the red one: it takes its own 48; then
    // 50.00 left, below the minimum: the rest of the 448 goes back.
    assert_eq!(
        taken_back(spend, &["123", "456", "456"]).await,
        (448, vec![48, 400, 0])
    );
    let three = "  points_per_unit: 1\n  line_rules:\n    - { name: three shirts, buy: { category: shirts }, points: 50, minimum: { quantity: 3 } }\n";
    // The 50 went to the first shirt line (red); returning a blue shirt
    // leaves 2 of the 3, and takes the 50 back.
    assert_eq!(taken_back(three, &["456", "123"]).await, (50, vec![50, 0]));
}

/// The peers' basket's rules with silver at 150.00 of spend, 4 points per
/// 1.00 on every line, and `qualifying` (indented as a top-level key).
fn basis_rules(qualifying: &str) -> String {
    format!(
        "program: baskets\nversion: b1\ncurrency: EUR\nwindow: rolling 12 months\n\
         earning:\n  points_per_unit: 4\n{qualifying}tiers:\n  - id: member\n\
         \x20 - id: silver\n    qualify: {{ purchase_volume: \"150.00\" }}\n"
    )
}

/// (tier, spend in the window, qualifying points, lifetime value, balance,
/// purchases) of ann.
async fn figures(server: &mut TestServer) -> (String, i64, i64, i64, i64, i64) {
    let ann = server.member("ann").await;
    (
        ann.tier_id,
        ann.purchase_volume_minor,
        ann.qualifying_points,
        ann.lifetime_value_minor,
        ann.points_balance,
        ann.purchase_count,
    )
}

/// Delivery excluded from the qualifying basis: the 40.00 and its 160
/// points earn redeemable points but no tier, as returns take them back.
#[tokio::test]
async fn lines_outside_the_qualifying_basis_earn_points_but_no_tier() {
    let (mut everything, points) = bought_basket_under(&basis_rules("")).await;
    assert_eq!(points, 608);
    assert_eq!(
        figures(&mut everything).await,
        ("silver".into(), 15_200, 608, 15_200, 608, 1),
        "without a basis, delivery makes silver"
    );
    assert_eq!(everything.member("ann").await.qualifying_basis, "");

    let basis = "qualifying:\n  exclude: { categories: [delivery] }\n";
    let (mut server, points) = bought_basket_under(&basis_rules(basis)).await;
    assert_eq!(points, 608);
    assert_eq!(
        figures(&mut server).await,
        ("member".into(), 11_200, 448, 11_200, 608, 1)
    );
    assert_eq!(
        server.member("ann").await.qualifying_basis,
        "lines of category delivery do not count toward the tier (spend, lifetime value, qualifying points)"
    );
    let back = give_back(&server, "r0", vec![returned("ship", 1, 0)]);
    assert_eq!(
        return_accepted(&mut server, back).await.points_reversed,
        160
    );
    assert_eq!(
        figures(&mut server).await,
        ("member".into(), 11_200, 448, 11_200, 448, 1),
        "returning delivery takes back its points, not tier figures it never gave"
    );
    let back = give_back(&server, "r1", vec![returned("123", 1, 0)]);
    assert_eq!(return_accepted(&mut server, back).await.points_reversed, 48);
    assert_eq!(
        figures(&mut server).await,
        ("member".into(), 10_000, 400, 10_000, 400, 1)
    );

    // A purchase of delivery alone is no purchase for the tier, and its
    // return takes none away.
    let mut alone = server.purchase("ann", "g1", 4_000);
    alone.lines = vec![line("ship", "delivery", 1, 4_000, &[])];
    server
        .client
        .record_purchase(alone)
        .await
        .expect("purchase");
    assert_eq!(
        figures(&mut server).await,
        ("member".into(), 10_000, 400, 10_000, 560, 1)
    );
    let back = pb::RecordReturnRequest {
        lines: vec![returned("ship", 1, 0)],
        ..server.refund("ann", "r2", "g1", 0)
    };
    assert_eq!(
        return_accepted(&mut server, back).await.points_reversed,
        160
    );
    assert_eq!(
        figures(&mut server).await,
        ("member".into(), 10_000, 400, 10_000, 400, 1)
    );
}
