//! Rule-less detection: the template miner that fills `template_id`, and the anomaly
//! detector that writes the `anomalies` table.
//!
//! - [`mask`] tokenises a message and masks its variable parts in one pass;
//! - [`miner`] groups masked lines into templates with stable ids;
//! - [`state`] keeps the miner's templates in the state directory across restarts;
//! - [`errors`] tells error lines (severity, error words);
//! - [`baseline`] is one series' rate baseline and its guarded rules;
//! - [`detector`] keeps the series of every host and raises [`anomaly::Anomaly`]s;
//! - [`persist`] keeps the detector's state across restarts;
//! - [`table`] and [`anomaly_table`] write the `templates` and `anomalies` tables;
//! - [`stage`] runs the miner and the detector on the ingest path, between the sources
//!   and the spool.

pub mod anomaly;
pub mod anomaly_table;
pub mod baseline;
pub mod detector;
pub mod errors;
pub mod mask;
pub mod mine;
pub mod miner;
pub mod persist;
pub mod stage;
pub mod state;
pub mod table;

pub use anomaly::{Anomaly, Severity};
pub use detector::{Detector, DetectorConfig};
pub use miner::{Change, Miner, MinerConfig, Template, Version, template_id};
pub use stage::{DetectOptions, MinerOptions, MinerStage};
