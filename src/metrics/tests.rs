//! The in-flight guard (end, cancel, panic).
use super::*;

#[test]
fn the_in_flight_gauge_falls_when_a_pass_ends_is_cancelled_or_panics()
-> Result<(), prometheus::Error> {
    let m = Arc::new(Metrics::new()?);
    {
        let _a = m.in_flight_guard();
        let _b = m.in_flight_guard();
        assert_eq!(m.in_flight.get(), 2);
    }
    assert_eq!(m.in_flight.get(), 0, "ended normally");

    // A pass cancelled mid-await (kube-runtime drops the future on shutdown or when the
    // object's pass is superseded): the future is dropped with its guard.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| prometheus::Error::Msg(e.to_string()))?;
    let m2 = m.clone();
    let timed_out = rt.block_on(async move {
        let pass = async move {
            let _g = m2.in_flight_guard();
            std::future::pending::<()>().await;
        };
        tokio::time::timeout(std::time::Duration::from_millis(20), pass)
            .await
            .is_err()
    });
    assert!(timed_out);
    assert_eq!(m.in_flight.get(), 0, "cancelled");

    let m3 = m.clone();
    let panicked = std::thread::spawn(move || {
        let _g = m3.in_flight_guard();
        panic!("reconcile panicked");
    })
    .join()
    .is_err();
    assert!(panicked);
    assert_eq!(m.in_flight.get(), 0, "panicked");
    Ok(())
}
