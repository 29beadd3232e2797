//! The kill switch's pure parts: switch parsing, holding, releasing, aborting through the abort
//! path.
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use prometheus::Registry;

use super::gate::has_held_status;
use super::*;
use crate::api::{ChaosEngine, ChaosEngineStatus, engine_status};
use crate::engine::fixtures::{gate_engine, owed_reasons as reasons};
use crate::engine::{Effect, EnginePhase, Observed, PlanConfig};

fn state(engaged: Option<&str>) -> HaltState {
    let s = HaltState::new(&Registry::new(), true, false).expect("metrics");
    let cm = engaged.map(|reason| ConfigMap {
        data: Some(
            [
                (HALTED_KEY.to_string(), "true".to_string()),
                (REASON_KEY.to_string(), reason.to_string()),
            ]
            .into(),
        ),
        ..Default::default()
    });
    let switch = SwitchRef {
        namespace: "cc".into(),
        name: "cc-halt".into(),
    };
    s.set_cluster(from_config_map(&switch, cm.as_ref()));
    s
}

fn engine(status: Option<ChaosEngineStatus>) -> ChaosEngine {
    let mut e = gate_engine();
    e.status = status;
    e
}

#[test]
fn switch_parsing() {
    assert!(from_config_map(&"a/b".parse().unwrap(), None).is_none());
    assert!("nons".parse::<SwitchRef>().is_err());
    assert!("a/b/c".parse::<SwitchRef>().is_err());
    let mut meta = kube::api::ObjectMeta {
        name: Some("ns".into()),
        ..Default::default()
    };
    assert!(from_namespace(&meta).is_none());
    meta.annotations = Some([(NAMESPACE_ANNOTATION.to_string(), "false".to_string())].into());
    assert!(from_namespace(&meta).is_none());
    meta.annotations = Some([(NAMESPACE_ANNOTATION.to_string(), "true".to_string())].into());
    assert_eq!(
        from_namespace(&meta).map(|e| e.switch),
        Some("Namespace ns annotation chaos-conductor.io/halt".into())
    );
}

#[test]
fn a_new_engine_is_held_while_engaged_and_starts_when_released() {
    let now = Timestamp::now();
    let cfg = PlanConfig::default();
    let on = state(Some("drill"));
    let e = engine(None);
    let d = plan_gated(&on, &e, &Observed::default(), now, &cfg);
    assert!(!d.effects().any(|x| matches!(x, Effect::CreateJob(_))));
    assert!(has_held_status(&d), "{:?}", d.status);
    assert_eq!(
        d.status.message,
        "held: kill switch ConfigMap cc/cc-halt engaged (drill); starts when released"
    );
    assert_eq!(reasons(&d), vec![HELD_REASON.to_string()]);
    assert_eq!(on.held_gauge.get(), 1);
    // Held again: no second Event.
    let held = engine(Some(d.status.clone()));
    let again = plan_gated(&on, &held, &Observed::default(), now, &cfg);
    assert_eq!(
        reasons(&again),
        vec![HELD_REASON.to_string()],
        "no new event owed"
    );
    // Released: the plain plan's start, minus the Held condition, plus a Normal Event.
    let off = state(None);
    let d = plan_gated(&off, &held, &Observed::default(), now, &cfg);
    assert!(!has_held_status(&d));
    assert!(
        reasons(&d).contains(&RELEASED_REASON.to_string()),
        "{:?}",
        reasons(&d)
    );
    assert_eq!(off.held_gauge.get(), 0);
}

#[test]
fn a_running_engine_is_aborted_through_the_abort_path() {
    let now = Timestamp::now();
    let cfg = PlanConfig::default();
    let running = engine(Some(ChaosEngineStatus {
        engine_status: engine_status::INITIALIZED.into(),
        run_id: Some(1),
        phase: EnginePhase::Running,
        ..Default::default()
    }));
    let on = state(Some("drill"));
    // A chaos pod still there: the abort starts (deletes) and waits for it.
    let pod = k8s_openapi::api::core::v1::Pod {
        metadata: kube::api::ObjectMeta {
            name: Some("pod-delete-abc123-x".into()),
            namespace: Some("ns".into()),
            labels: Some([("chaosUID".to_string(), "uid-1".to_string())].into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let observed = Observed {
        pods: vec![pod],
        ..Default::default()
    };
    let d = plan_gated(&on, &running, &observed, now, &cfg);
    assert_eq!(d.status.phase, EnginePhase::Aborting.as_str());
    assert!(
        d.status
            .message
            .contains("kill switch ConfigMap cc/cc-halt engaged (drill)")
    );
    assert!(
        d.effects()
            .any(|x| matches!(x, Effect::DeleteChaosResources { .. })),
        "{d:?}"
    );
    assert!(reasons(&d).contains(&HALT_ABORT_REASON.to_string()));
    assert!(!d.effects().any(|x| matches!(x, Effect::CreateJob(_))));
    // Not engaged: the same engine just goes on (no abort).
    let d = plan_gated(&state(None), &running, &Observed::default(), now, &cfg);
    assert_ne!(d.status.phase, EnginePhase::Aborting.as_str());
}
