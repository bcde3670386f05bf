//! Benchmark support: the synthetic syslog corpus and its PRNG, shared by the corpus
//! generator (`gen-corpus`), the end-to-end harness (`e2e`) and the criterion benches.

pub mod corpus;
pub mod loghub;
pub mod replay;
pub mod rng;
