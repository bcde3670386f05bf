//! Rule-less detection: the template miner that fills `template_id`.
//!
//! - [`mask`] tokenises a message and masks its variable parts in one pass;
//! - [`miner`] groups masked lines into templates with stable ids.

pub mod mask;
pub mod miner;

pub use miner::{Change, Miner, MinerConfig, Template, template_id};
