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

/// Parses every JSON text into `T` (as a reflector does with a watch event) and reports the heap
/// the kept objects hold; the texts are allocated before and freed after the window.
fn measure<T>(label: &str, texts: &[String], f: impl Fn(&str) -> T) {
    let json: usize = texts.iter().map(String::len).sum();
    let before = (LIVE.load(Relaxed), LIVE_MALLOC.load(Relaxed));
    let kept: Vec<T> = texts.iter().map(|t| f(t)).collect();
    let after = (LIVE.load(Relaxed), LIVE_MALLOC.load(Relaxed));
    let n = kept.len().max(1) as f64;
    println!(
        "| {label} | {} | {:.1} KiB | {:.1} KiB | {:.1} KiB |",
        kept.len(),
        json as f64 / n / 1024.0,
        after.0.wrapping_sub(before.0) as f64 / n / 1024.0,
        after.1.wrapping_sub(before.1) as f64 / n / 1024.0,
    );
    drop(kept);
}

fn texts(items: &[Value], strip: bool) -> Vec<String> {
    items
        .iter()
        .map(|v| if strip { strip_mf(v.clone()) } else { v.clone() }.to_string())
        .collect()
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
    println!("| object, shape | n | JSON per object (as measured) | heap per object (requested) | heap per object (malloc chunks) |");
    println!("|---|---|---|---|---|");
    let (p, pm) = (texts(&pods, false), texts(&pods, true));
    measure("Pod, as cached now (full)", &p, |t| serde_json::from_str::<Pod>(t).unwrap());
    measure("Pod, without managedFields", &pm, |t| serde_json::from_str::<Pod>(t).unwrap());
    measure("Pod, without managedFields and spec", &pm, |t| {
        let mut p: Pod = serde_json::from_str(t).unwrap();
        p.spec = None;
        p
    });
    let (j, jm) = (texts(&jobs, false), texts(&jobs, true));
    measure("Job, as cached now (full)", &j, |t| serde_json::from_str::<Job>(t).unwrap());
    measure("Job, without managedFields", &jm, |t| serde_json::from_str::<Job>(t).unwrap());
    measure("Job, metadata only, without managedFields", &jm, |t| {
        let mut v: Value = serde_json::from_str(t).unwrap();
        serde_json::from_value::<ObjectMeta>(v["metadata"].take()).unwrap()
    });
    let (e, em) = (texts(&engines, false), texts(&engines, true));
    measure("ChaosEngine as serde_json::Value (full)", &e, |t| serde_json::from_str::<Value>(t).unwrap());
    measure("ChaosEngine as serde_json::Value, without managedFields", &em, |t| serde_json::from_str::<Value>(t).unwrap());
    let (r, rm) = (texts(&results, false), texts(&results, true));
    measure("ChaosResult as serde_json::Value (full)", &r, |t| serde_json::from_str::<Value>(t).unwrap());
    measure("ChaosResult as serde_json::Value, without managedFields", &rm, |t| serde_json::from_str::<Value>(t).unwrap());
}
