//! Table tests of `plan`, one file per phase (the map in ../mod.rs); builders in
//! src/engine/fixtures.rs.
mod abort;
mod assess;
mod batch;
mod finish;
mod gate;
mod launch;
mod monitor;
mod rules;
mod start;
