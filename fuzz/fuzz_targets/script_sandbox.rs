//! Any text as a rhai condition or bonus script: compiling and running it
//! under the sandbox limits must end with a value or an error, never a
//! panic, a hang or unbounded memory.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use tierd::script::{Inputs, PurchaseInputs, Script, ScriptKind};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let attributes = BTreeMap::from([("region".to_owned(), "north".to_owned())]);
    let tags = vec!["promo".to_owned()];
    let inputs = Inputs {
        qualifying_points: 1_234,
        purchase_volume: 56_789,
        purchase_count: 3,
        lifetime_value: 99_999,
        points_balance: 100,
        activity_count: 4,
        attributes: Some(&attributes),
        purchase: Some(PurchaseInputs {
            amount_minor: 12_345,
            channel: "pos",
            store_id: "s1",
            tags: &tags,
        }),
        activity: None,
    };
    if let Ok(script) = Script::compile(source, ScriptKind::Condition) {
        let _ = script.eval_condition(&Inputs { purchase: None, ..inputs.clone() });
    }
    if let Ok(script) = Script::compile(source, ScriptKind::Bonus) {
        let _ = script.eval_points(&inputs);
    }
});
