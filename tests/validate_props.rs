//! The validate entry point never panics or hangs, whatever the bytes.
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chaos_conductor::validate::{Source, Validator};
use proptest::prelude::*;

fn validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| Validator::new().expect("CRD schemas compile"))
}

fn run(bytes: &[u8]) {
    let start = Instant::now();
    let problems = validator().validate(&[Source {
        name: "fuzz.yaml",
        bytes,
    }]);
    assert!(start.elapsed() < Duration::from_secs(5), "too slow");
    for p in problems {
        // Every problem names its input.
        assert_eq!(p.file, "fuzz.yaml");
        let _ = p.to_string();
    }
}

/// YAML-ish text: the characters YAML cares about, keys of our kinds, nesting.
fn yamlish() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("apiVersion: litmuschaos.io/v1alpha1\n".to_string()),
        Just("kind: ChaosEngine\n".to_string()),
        Just("kind: ChaosExperiment\n".to_string()),
        Just("kind: ChaosResult\n".to_string()),
        Just("kind: ChaosSchedule\n".to_string()),
        Just("  schedule: {repeat: {properties: {minChaosInterval: {minute: {everyNthMinute: 0}}}, workHours: {includedHours: '*/0'}, workDays: {includedDays: Sun-Mon}}}\n".to_string()),
        Just("  schedule: {repeat: {properties: {minChaosInterval: {hour: {everyNthHour: -3, minuteOfTheHour: 99}}}, timeRange: {endTime: x}}}\n".to_string()),
        Just("  engineTemplateSpec: {experiments: [{name: a}]}\n".to_string()),
        Just("metadata:\n  name: x\n".to_string()),
        Just("spec:\n".to_string()),
        Just("  experiments:\n  - name: a\n".to_string()),
        Just("  definition: {command: [], args: [x], labels: {}}\n".to_string()),
        Just("  selectors: {pods: [], workloads: [{kind: 1}]}\n".to_string()),
        Just("  appinfo: {appkind: deployment}\n".to_string()),
        Just("---\n".to_string()),
        Just("&a [*a]\n".to_string()),
        Just("- ".to_string()),
        Just("? ".to_string()),
        Just(": ".to_string()),
        Just("!!binary ".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("|\n".to_string()),
        Just("  ".to_string()),
        Just("\n".to_string()),
        Just(".nan".to_string()),
        Just("1e999".to_string()),
        Just("~".to_string()),
        "[a-zA-Z0-9_./-]{0,8}",
    ];
    prop::collection::vec(atom, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        run(&bytes);
    }

    #[test]
    fn yamlish_text_never_panics(text in yamlish()) {
        run(text.as_bytes());
    }

    #[test]
    fn deep_nesting_never_panics(depth in 0usize..3000, open in "[\\[{]", key in prop::bool::ANY) {
        let close = if open == "[" { "]" } else { "}" };
        let inner = if key { "a: " } else { "" };
        let text = format!("spec: {}{}{}", open.repeat(depth), inner, close.repeat(depth));
        run(text.as_bytes());
        let indented: String = (0..depth.min(500)).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
        run(indented.as_bytes());
    }
}

#[test]
fn huge_and_odd_inputs_are_refused_quickly() {
    run(&vec![b'a'; 16 * 1024 * 1024 + 1]);
    run(&[]);
    run(b"\xef\xbb\xbf");
    run(b"\0\0\0");
    let mut many = String::new();
    for _ in 0..20_000 {
        many.push_str("---\na: 1\n");
    }
    run(many.as_bytes());
    // Billion laughs.
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    run(bomb.as_bytes());
}
