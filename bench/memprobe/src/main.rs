//! Heap cost of cached objects: deserializes a LIST response (as the controller's reflector does)
//! under a counting allocator and reports bytes per object, in several shapes.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Live bytes as glibc malloc hands them out: size + 8-byte header, 16-byte granules, 32 minimum.
static LIVE_MALLOC: AtomicUsize = AtomicUsize::new(0);

fn chunk(size: usize) -> usize {
    ((size + 8 + 15) & !15).max(32)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Relaxed);
        LIVE_MALLOC.fetch_add(chunk(l.size()), Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        LIVE_MALLOC.fetch_sub(chunk(l.size()), Relaxed);
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn measure<T>(label: &str, items: &[Value], f: impl Fn(Value) -> T) {
    let input: Vec<Value> = items.to_vec();
    let json: usize = input.iter().map(|v| v.to_string().len()).sum();
    let before = (LIVE.load(Relaxed), LIVE_MALLOC.load(Relaxed));
    let mut kept = Vec::with_capacity(input.len());
    // the input clones are freed as we go; only the converted objects stay
    for v in input {
        kept.push(f(v));
    }
    let after = (LIVE.load(Relaxed), LIVE_MALLOC.load(Relaxed));
    let n = kept.len().max(1);
    println!(
        "| {label} | {} | {:.1} KiB | {:.1} KiB | {:.1} KiB |",
        kept.len(),
        json as f64 / n as f64 / 1024.0,
        (after.0 - before.0) as f64 / n as f64 / 1024.0,
        (after.1 - before.1) as f64 / n as f64 / 1024.0,
    );
    drop(kept);
}

fn strip_mf(mut v: Value) -> Value {
    if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.remove("managedFields");
    }
    v
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: memprobe <samples dir>");
    let load = |name: &str| -> Vec<Value> {
        let text = std::fs::read_to_string(format!("{dir}/{name}.json")).expect("read samples");
        let v: Value = serde_json::from_str(&text).expect("json");
        v["items"].as_array().cloned().unwrap_or_default()
    };
    let (pods, jobs, engines, results) = (load("pods"), load("jobs"), load("engines"), load("results"));
    println!("| object, shape | n | JSON per object | heap per object (requested) | heap per object (malloc chunks) |");
    println!("|---|---|---|---|---|");
    measure("Pod, as cached now (full)", &pods, |v| serde_json::from_value::<Pod>(v).unwrap());
    measure("Pod, without managedFields", &pods, |v| serde_json::from_value::<Pod>(strip_mf(v)).unwrap());
    measure("Pod, without managedFields and spec", &pods, |v| {
        let mut p: Pod = serde_json::from_value(strip_mf(v)).unwrap();
        p.spec = None;
        p
    });
    measure("Job, as cached now (full)", &jobs, |v| serde_json::from_value::<Job>(v).unwrap());
    measure("Job, without managedFields", &jobs, |v| serde_json::from_value::<Job>(strip_mf(v)).unwrap());
    measure("Job, metadata only, without managedFields", &jobs, |v| {
        serde_json::from_value::<ObjectMeta>(strip_mf(v)["metadata"].take()).unwrap()
    });
    measure("ChaosEngine as serde_json::Value (full)", &engines, |v| v);
    measure("ChaosEngine as serde_json::Value, without managedFields", &engines, strip_mf);
    measure("ChaosResult as serde_json::Value (full)", &results, |v| v);
    measure("ChaosResult as serde_json::Value, without managedFields", &results, strip_mf);
}
