//! Rule-less detection: the template miner that fills `template_id`.
//!
//! - [`mask`] tokenises a message and masks its variable parts in one pass;
//! - [`miner`] groups masked lines into templates with stable ids;
//! - [`state`] keeps the miner's templates in the state directory across restarts;
//! - [`stage`] runs the miner on the ingest path, between the sources and the spool.

pub mod mask;
pub mod mine;
pub mod miner;
pub mod stage;
pub mod state;
pub mod table;

pub use miner::{Change, Miner, MinerConfig, Template, Version, template_id};
pub use stage::{MinerOptions, MinerStage};
